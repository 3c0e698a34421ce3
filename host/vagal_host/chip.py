"""The firmware measured on the emulated RP2040: ../shared/rp2emu (MicroPython v1.28.0's rp2 port in
rp2040js) run from here, and its output read into the figures `make bench` reports.

The instrument is not part of the project: ../shared/rp2emu/setup.sh builds it once per machine
into ~/.cache/vagal-rp2emu (RP2EMU_HOME), and run.sh deploys the firmware of this checkout as
`vagal deploy` would, plays a recording into ADC0 in emulated time and logs the serial lines and
the cycles the core executed each emulated second. available() says whether it is there (and how
to build it when not); measure() runs it; parse() reads an output folder.
"""

import json
import os
import re
import subprocess
from pathlib import Path

from vagal_host.errors import VagalError

ROOT = Path(__file__).resolve().parents[2]
RP2EMU = ROOT.parent / "shared" / "rp2emu"
CPU_HZ = 125e6
BUILD_HINT = ("build it once (about 10 minutes): MIRRORS=<folder of bare git mirrors> %s/setup.sh "
              "(see its README)" % RP2EMU)


def home():
    return Path(os.environ.get("RP2EMU_HOME", os.path.expanduser("~/.cache/vagal-rp2emu")))


def available():
    """(True, "") if run.sh can run here, else (False, why and how to build it)."""
    if not (RP2EMU / "run.sh").is_file():
        return False, "%s/run.sh is absent" % RP2EMU
    fw = home() / "micropython" / "ports" / "rp2" / "build-RPI_PICO" / "firmware.bin"
    if not fw.is_file():
        return False, "the emulated RP2040 is not built (no %s): %s" % (fw, BUILD_HINT)
    return True, ""


def measure(out, app_s=180, stop_at=None, timeout_s=3600):
    """Run the firmware app_s emulated seconds (a `stop` at stop_at: the session off, sampling and
    detection on); parse() of the output folder out."""
    ok, why = available()
    if not ok:
        raise VagalError(why)
    env = dict(os.environ, OUT=str(out), APP_S=str(app_s))
    if stop_at:
        env["EMU_ARGS"] = "--stop-at %d" % stop_at
    r = subprocess.run(["bash", str(RP2EMU / "run.sh")], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=timeout_s)
    if r.returncode != 0:
        raise VagalError("rp2emu run.sh failed: %s" % (r.stderr.strip().splitlines() or ["?"])[-1])
    return parse(out, stop_at)


_BENCH = re.compile(r"^\[[\d.]+\] BENCH (\S+) (.*)$")
_STATS = re.compile(r"^\[([\d.]+)\] stats \d+ (-?\d+) (-?\d+) (-?\d+) (-?\d+) (-?\d+) (-?\d+)(?: -?\d+)*\*")


def _mean(a):
    return sum(a) / len(a) if a else None


def parse(out, stop_at=None):
    """The figures of one run.sh output folder: CPU share (whole app phase, and with the session on
    and off when stop_at is given), the REPL benchmarks, task steps, free heap, allocation rate and
    the beats against `vagal replay`."""
    out = Path(out)
    summ = json.loads((out / "summary.json").read_text())
    app_s = summ["app_s"]
    per_s = []
    for line in (out / "cycles.csv").read_text().splitlines()[1:]:
        f = line.split(",")
        per_s.append((int(f[0]), int(f[1])))
    on_end = stop_at if stop_at else app_s
    on = [c for t, c in per_s if 20 < t <= on_end]
    off = [c for t, c in per_s if stop_at and stop_at + 5 < t <= app_s]
    r = {"app_s": app_s, "stop_at": stop_at, "wall_s": summ.get("wall_s"),
         "cpu_pct": _mean(on) / CPU_HZ * 100 if on else None,
         "cpu_pct_max_s": max(on) / CPU_HZ * 100 if on else None,
         "cpu_pct_stopped": _mean(off) / CPU_HZ * 100 if off else None,
         "idle_pct": summ.get("idle_cpu_pct_of_125MHz"), "watchdog_triggers": summ.get("watchdog_triggers")}
    stats = []
    for line in (out / "serial.log").read_text(errors="replace").splitlines():
        m = _BENCH.match(line)
        if m:
            key, rest = m.group(1), m.group(2).split()
            if key == "empty_iter_us":
                r["empty_iter_us"] = float(rest[0])
            elif key == "detector_push_us":
                r["push_us"] = float(rest[0])
                r["push_loop_us"] = float(rest[2])
            elif key == "mem_free_after":
                r["mem_free_after"] = int(rest[0])
            elif key == "timer_mode":
                i = rest.index("jitter_us")
                r["timer_jitter_us"] = (int(rest[i + 1]), int(rest[i + 2]))
            continue
        m = _STATS.match(line)
        if m:
            stats.append((float(m.group(1)) / 1000.0,) + tuple(int(v) for v in m.group(2, 3, 4, 5, 6, 7)))
    # stats: (emulated s, t_ms, lost, jitter_us, loop_us, heap_free, rx_bad); the first is at boot
    steady = [s for s in stats if s[0] > 10]
    if steady:
        r["loop_us_max"] = max(s[4] for s in steady)
        r["heap_free_min"] = min(s[5] for s in steady)
        r["lost"] = steady[-1][2]
        # allocation: heap_free's fall between stats lines with no collection in between
        fell = [(a[5] - b[5], b[0] - a[0]) for a, b in zip(steady, steady[1:]) if b[5] <= a[5]]
        if fell:
            r["alloc_b_per_s"] = sum(d for d, _ in fell) / sum(t for _, t in fell)
        r["collections"] = len([1 for a, b in zip(steady, steady[1:]) if b[5] > a[5]])
    cmp_path = out / "compare.txt"
    if cmp_path.exists():
        text = cmp_path.read_text()
        m = re.search(r"matched within 150 ms: (\d+) of (\d+) host beats; unmatched device beats: (\d+)", text)
        if m:
            r["beats_matched"], r["beats_host"], r["beats_extra"] = (int(v) for v in m.groups())
        m = re.search(r"IBI difference device-host \(ms\): min (\S+) median \S+ max (\S+)", text)
        if m:
            r["ibi_diff_ms"] = (float(m.group(1)), float(m.group(2)))
        m = re.search(r"amplitude identical: (\d+)/(\d+); confidence identical: (\d+)/(\d+)", text)
        if m:
            r["amp_same"], _, r["conf_same"], _ = (int(v) for v in m.groups())
    return r


def beats_identical(r):
    """Every host beat matched, none extra, intervals, amplitudes and confidences the same."""
    return (r.get("beats_host", 0) > 0 and r.get("beats_matched") == r.get("beats_host")
            and r.get("beats_extra") == 0 and r.get("ibi_diff_ms") == (0.0, 0.0)
            and r.get("amp_same") == r["beats_host"] and r.get("conf_same") == r["beats_host"])
