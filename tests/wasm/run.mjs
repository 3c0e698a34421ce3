// Runs vagal's portable core on the 32-bit MicroPython WebAssembly port (small ints overflow at
// 2**30, as on the RP2040), in node.
//
//   node tests/wasm/run.mjs [DIR] [-k SUBSTRING] [-v]
//       the portable tests (tests/portable/run.py); DIR defaults to tests/portable
//   node tests/wasm/run.mjs --exec SCRIPT.py [--file MEMFS=HOST ...] [--out MEMFS=HOST ...] [-- ARGS...]
//       one script as __main__ with the firmware importable; --file copies a host file in before
//       the run, --out copies a MEMFS file out after a successful run (written atomically; its
//       MEMFS directory is made beforehand); ARGS become sys.argv[1:]
//
// The port has no host filesystem: firmware/vagal/ is copied into MEMFS /lib/vagal/ and
// tests/portable/ into /tests/. The package's own CLI exits 0 on a Python exception; this one
// exits with the runner's status, the script's sys.exit code, or 1 on an uncaught exception.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..");
const FIRMWARE_DIR = path.join(ROOT, "firmware", "vagal");
const PORTABLE_DIR = path.join(ROOT, "tests", "portable");
// The simulated people are the portable tests' ground truth too: they go onto /lib beside vagal.
const PERSON_FILES = ["person.py", "baroreflex.py"].map((f) => path.join(ROOT, "host", "virtual_board", f));
const USAGE =
  "usage: node tests/wasm/run.mjs [DIR] [-k SUBSTRING] [-v]\n" +
  "       node tests/wasm/run.mjs --exec SCRIPT.py [--file MEMFS=HOST ...] [--out MEMFS=HOST ...] [-- ARGS...]";

class UsageError extends Error {}

// MicroPython hands over one byte at a time; pass bytes through unchanged, flushing at newlines.
function byteSink(fd) {
  let pending = [];
  const flush = () => {
    if (pending.length) {
      writeAll(fd, Buffer.from(pending));
      pending = [];
    }
  };
  const write = (bytes) => {
    for (const b of bytes) {
      pending.push(b);
      if (b === 10 || pending.length >= 4096) flush();
    }
  };
  return { write, flush };
}

function writeAll(fd, buf) {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      if (e.code !== "EAGAIN") throw e;
    }
  }
}

const out = byteSink(1);
const err = byteSink(2);

function say(fd, text) {
  (fd === 1 ? out : err).flush();
  writeAll(fd, Buffer.from(text.endsWith("\n") ? text : text + "\n"));
}

function copyTree(mp, hostDir, memfsDir, onlyPy) {
  mp.FS.mkdirTree(memfsDir);
  for (const entry of fs.readdirSync(hostDir, { withFileTypes: true })) {
    if (entry.name === "__pycache__" || entry.name === "node_modules" || entry.name.startsWith(".")) continue;
    const host = path.join(hostDir, entry.name);
    const memfs = memfsDir + "/" + entry.name;
    if (entry.isDirectory()) copyTree(mp, host, memfs, onlyPy);
    else if (entry.isFile() && (!onlyPy || entry.name.endsWith(".py"))) mp.FS.writeFile(memfs, fs.readFileSync(host));
  }
}

function pyStr(s) {
  // A Python string literal for any JS string (JSON escapes are valid Python escapes).
  return JSON.stringify(s);
}

function pyList(items) {
  return "[" + items.map(pyStr).join(", ") + "]";
}

function parsePair(flag, value) {
  const eq = value === undefined ? -1 : value.indexOf("=");
  if (eq <= 0 || eq === value.length - 1) throw new UsageError(`${flag} needs MEMFS_PATH=HOST_PATH, got ${value}`);
  let memfs = value.slice(0, eq);
  if (!memfs.startsWith("/")) memfs = "/" + memfs;
  return { memfs, host: value.slice(eq + 1) };
}

function parseArgs(argv) {
  const opts = { mode: "tests", dir: null, runnerArgs: [], script: null, files: [], outs: [], scriptArgs: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--exec") {
      opts.mode = "exec";
      opts.script = argv[++i];
      if (!opts.script) throw new UsageError("--exec needs a script path");
    } else if (a === "--file") {
      opts.files.push(parsePair(a, argv[++i]));
    } else if (a === "--out") {
      opts.outs.push(parsePair(a, argv[++i]));
    } else if (a === "--") {
      opts.scriptArgs = argv.slice(i + 1);
      break;
    } else if (a === "-k") {
      if (argv[i + 1] === undefined) throw new UsageError("-k needs a substring");
      opts.runnerArgs.push(a, argv[++i]);
    } else if (a === "-v") {
      opts.runnerArgs.push(a);
    } else if (a === "-h" || a === "--help") {
      opts.mode = "help";
    } else if (a.startsWith("-")) {
      throw new UsageError(`unknown option ${a}`);
    } else if (opts.dir === null) {
      opts.dir = a;
    } else {
      throw new UsageError(`unexpected argument ${a}`);
    }
  }
  if (opts.mode === "tests" && (opts.files.length || opts.outs.length || opts.scriptArgs.length))
    throw new UsageError("--file, --out and -- ARGS go with --exec");
  if (opts.mode === "exec" && (opts.dir !== null || opts.runnerArgs.length))
    throw new UsageError("--exec takes no test directory, -k or -v");
  return opts;
}

async function startMicroPython() {
  const mp = await loadMicroPython({ linebuffer: false, stdout: out.write, stderr: err.write });
  copyTree(mp, FIRMWARE_DIR, "/lib/vagal", true);
  copyTree(mp, PORTABLE_DIR, "/tests", false);
  for (const f of PERSON_FILES) mp.FS.writeFile("/lib/" + path.basename(f), fs.readFileSync(f));
  return mp;
}

async function runTests(opts) {
  const mp = await startMicroPython();
  let dir = "/tests";
  if (opts.dir !== null) {
    const host = path.resolve(opts.dir);
    if (!fs.existsSync(host) || !fs.statSync(host).isDirectory()) throw new UsageError(`no such test directory: ${opts.dir}`);
    if (host !== PORTABLE_DIR) {
      dir = "/cases";
      copyTree(mp, host, dir, false);
    }
  }
  const args = [dir, ...opts.runnerArgs];
  mp.runPython(
    "import sys\n" +
      "sys.path[:] = ['/tests', '/lib', '.frozen']\n" +
      `sys.argv[:] = ${pyList(["run.py", ...args])}\n` +
      "import run\n" +
      `_vagal_status = run.main(${pyList(args)})\n`,
  );
  const status = mp.globals.get("_vagal_status");
  return Number.isInteger(status) ? status : 1;
}

async function runScript(opts) {
  const scriptHost = path.resolve(opts.script);
  if (!fs.existsSync(scriptHost)) throw new UsageError(`no such script: ${opts.script}`);
  for (const f of opts.files) {
    if (!fs.existsSync(f.host) || !fs.statSync(f.host).isFile()) throw new UsageError(`--file: no such file: ${f.host}`);
  }
  const mp = await startMicroPython();
  const scriptMemfs = "/exec/" + path.basename(scriptHost);
  mp.FS.mkdirTree("/exec");
  mp.FS.writeFile(scriptMemfs, fs.readFileSync(scriptHost));
  for (const f of opts.files) {
    mp.FS.mkdirTree(path.posix.dirname(f.memfs));
    mp.FS.writeFile(f.memfs, fs.readFileSync(f.host));
  }
  for (const o of opts.outs) mp.FS.mkdirTree(path.posix.dirname(o.memfs)); // the script only writes the file
  // SystemExit is caught in Python so that sys.exit(n) becomes exit status n.
  mp.runPython(
    "import sys\n" +
      "sys.path[:] = ['/exec', '/lib', '/tests', '.frozen']\n" +
      `sys.argv[:] = ${pyList([scriptMemfs, ...opts.scriptArgs])}\n` +
      "_vagal_status = 0\n" +
      "try:\n" +
      `    with open(${pyStr(scriptMemfs)}) as _f:\n` +
      `        _code = compile(_f.read(), ${pyStr(scriptMemfs)}, 'exec')\n` +
      `    exec(_code, {'__name__': '__main__', '__file__': ${pyStr(scriptMemfs)}})\n` +
      "except SystemExit as _e:\n" +
      "    _c = _e.args[0] if _e.args else None\n" +
      "    if _c is None:\n" +
      "        _vagal_status = 0\n" +
      "    elif isinstance(_c, int):\n" +
      "        _vagal_status = _c\n" +
      "    else:\n" +
      "        print(_c, file=sys.stderr)\n" +
      "        _vagal_status = 1\n",
  );
  const status = mp.globals.get("_vagal_status");
  const code = Number.isInteger(status) ? status : 1;
  if (code !== 0) {
    if (opts.outs.length) say(2, "run.mjs: script failed; --out files not written");
    return code;
  }
  for (const o of opts.outs) {
    const info = mp.FS.analyzePath(o.memfs);
    if (!info.exists) {
      say(2, `run.mjs: --out: the script did not write ${o.memfs}`);
      return 1;
    }
  }
  for (const o of opts.outs) {
    const tmp = `${o.host}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, mp.FS.readFile(o.memfs));
    fs.renameSync(tmp, o.host);
  }
  return 0;
}

async function main() {
  let status;
  try {
    const opts = parseArgs(process.argv.slice(2));
    if (opts.mode === "help") {
      say(1, USAGE);
      status = 0;
    } else {
      status = opts.mode === "exec" ? await runScript(opts) : await runTests(opts);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      say(2, `run.mjs: ${e.message}\n${USAGE}`);
      status = 2;
    } else if (e && e.name === "PythonError") {
      say(2, e.message); // the Python traceback
      status = 1;
    } else {
      say(2, `run.mjs: ${e && e.stack ? e.stack.split("\n").slice(0, 3).join("\n") : e}`);
      status = 1;
    }
  }
  out.flush();
  err.flush();
  process.exit(status);
}

await main();
