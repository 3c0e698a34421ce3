// The app's live heap on the 32-bit MicroPython WebAssembly port (4-byte pointers, as on the
// RP2040), in node: tests/heap_probe.py driven in short calls from here.
//
//   node tests/wasm/heap.mjs [--mpy DIR]
//       DIR holds vagal's modules compiled by mpy-cross (NAME.mpy, as deployed to the Pico);
//       without it the .py sources are compiled on the port (which keeps docstrings: ~13 KB
//       more than deployed). Prints heap_probe's report line.
//
// Why short calls: this port's gc.collect() only marks a collection pending (it cannot scan the
// wasm/JS stack for roots); the collection runs when a call from JavaScript returns to the top
// level (ports/webassembly/main.c: gc_collect, external_call_depth_dec -> gc_collect_top_level).
// So each chunk of the session is one call ending in gc.collect(), and the next call reads
// gc.mem_alloc() before allocating anything. Functions are fetched once from __main__: a proxy
// per lookup would itself take heap.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..");
const USAGE = "usage: node tests/wasm/heap.mjs [--mpy DIR]";

function fail(text, status) {
  process.stderr.write(text + "\n");
  process.exit(status);
}

let mpyDir = null;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--mpy" && argv[i + 1] !== undefined) mpyDir = argv[++i];
  else fail(`heap.mjs: unexpected argument ${argv[i]}\n${USAGE}`, 2);
}
if (mpyDir !== null && !fs.existsSync(path.join(mpyDir, "app.mpy"))) fail(`heap.mjs: no app.mpy in ${mpyDir}`, 2);

let printed = "";
const mp = await loadMicroPython({
  heapsize: 1 << 20,
  linebuffer: true,
  stdout: (line) => {
    printed += line + "\n";
  },
  stderr: (line) => process.stderr.write(line + "\n"),
});
mp.FS.mkdirTree("/lib/vagal");
const src = mpyDir === null ? path.join(ROOT, "firmware", "vagal") : mpyDir;
const ext = mpyDir === null ? ".py" : ".mpy";
for (const name of fs.readdirSync(src)) {
  if (name.endsWith(ext)) mp.FS.writeFile("/lib/vagal/" + name, fs.readFileSync(path.join(src, name)));
}
mp.FS.writeFile("/lib/person.py", fs.readFileSync(path.join(ROOT, "host", "virtual_board", "person.py")));
mp.FS.writeFile("/lib/heap_probe.py", fs.readFileSync(path.join(ROOT, "tests", "heap_probe.py")));

try {
  mp.runPython(
    "import gc, sys\n" +
      "sys.path[:] = ['/lib', '.frozen']\n" +
      "import heap_probe\n" +
      "_probe = heap_probe.Probe(heap_probe.settings_path())\n" +
      "def _set_base():\n    _probe.set_base()\n" +
      "def _load():\n    _probe.load()\n    gc.collect()\n" +
      "def _measure_made():\n    _probe.measure_made()\n" +
      "def _begin():\n    _probe.begin()\n    gc.collect()\n" +
      "def _advance():\n    more = _probe.advance()\n    gc.collect()\n    return more\n" +
      "def _measure():\n    _probe.measure()\n" +
      "def _report():\n    print(_probe.report())\n" +
      "gc.collect()\n",
  );
  const fn = {};
  for (const name of ["_set_base", "_load", "_measure_made", "_begin", "_advance", "_measure", "_report"]) {
    fn[name] = mp.globals.get(name);
  }
  fn._set_base(); // after the collection that ended the call above: the baseline is live objects only
  fn._load();
  fn._measure_made();
  fn._begin();
  while (fn._advance()) fn._measure();
  fn._report();
} catch (e) {
  fail(e && e.name === "PythonError" ? e.message : String(e && e.stack ? e.stack : e), 1);
}
process.stdout.write(printed);
