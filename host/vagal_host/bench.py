"""`make bench`: accuracy against offline detectors, per-sample cost, replay speed -> docs/benchmarks.md.

Everything is measured in one run on the recordings in ../shared/data:
- F1 and IBI error of the core (causal, fixed point) beside NeuroKit2 (Elgendi, MSPTD) and HeartPy
  (offline, zero-phase filtered), all scored by vagal_host.scoring;
- microseconds per sample of BeatDetector.push on the MicroPython unix port, and the same as a
  multiple of an empty `for` iteration measured in the same process; the RP2040 estimate multiplies
  that ratio by the empty-loop time on the RP2040 (RP2040_EMPTY_LOOP_US, see docs/benchmarks.md);
- replay throughput on CPython as a multiple of real time.
"""

import io
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vagal.replay import Replay
from vagal_host import scoring
from vagal_host.evaluate import discover, run_case
from vagal_host.recording import load_recording
from vagal_host.replay_engines import FIRMWARE, micropython_binary, rate_fraction

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "docs" / "benchmarks.md"
# Time of one empty `for i in range(n): pass` iteration of MicroPython on an RP2040 at 125 MHz.
# An estimate (about 110 CPU cycles per iteration of the bytecode loop), to be replaced by a
# measurement on a board: `vagal bench` prints the ratio it is multiplied by.
RP2040_EMPTY_LOOP_US = 0.9
BUDGET_US = 400.0   # 10 % of the CPU at 250 Hz


def offline_detectors(signal, fs):
    """Peak times (s) from NeuroKit2 Elgendi, NeuroKit2 MSPTD and HeartPy, where installed."""
    out = {}
    try:
        import neurokit2 as nk

        clean = nk.ppg_clean(signal, sampling_rate=fs)
        peaks = nk.ppg_findpeaks(clean, sampling_rate=fs, method="elgendi")["PPG_Peaks"]
        out["NeuroKit2 Elgendi"] = np.asarray(peaks) / fs
        # MSPTD's scalogram grows with the square of its input: run it on 30 s windows overlapping
        # by 5 s and keep each window's peaks from its own middle part
        win, hop = int(30 * fs), int(25 * fs)
        found = []
        for start in range(0, len(clean), hop):
            seg = clean[start:start + win]
            if len(seg) < 5 * fs:
                break
            pk = np.asarray(nk.ppg_findpeaks(seg, sampling_rate=fs, method="bishop")["PPG_Peaks"]) + start
            lo = start + (int(2.5 * fs) if start else 0)
            hi = start + hop + int(2.5 * fs)
            found.extend(int(v) for v in pk if lo <= v < hi)
        out["NeuroKit2 MSPTD (30 s windows)"] = np.unique(found) / fs
    except ImportError:
        pass
    try:
        import heartpy as hp

        wd, _ = hp.process(np.asarray(signal, dtype=float), sample_rate=fs)
        out["HeartPy"] = np.asarray(wd["peaklist"]) / fs
    except ImportError:
        pass
    except Exception as e:  # HeartPy gives up on some signals; report, don't crash
        print("HeartPy failed: %s" % e, file=sys.stderr)
    return out


def accuracy(cases):
    rows = []
    for case in cases:
        rec = load_recording(case.signal, case.column, case.fs)
        ref = scoring.read_times(case.rpeaks, case.fs)
        ex = scoring.read_exclusions(case.exclude)
        s = run_case(case)
        rows.append((case.name, "vagal (causal, fixed point)", s))
        raw = np.asarray(rec.samples, dtype=float)
        for label, det in offline_detectors(raw, rec.fs).items():
            rows.append((case.name, label, scoring.score(case.name, ref, det, rec.duration_s, ex)))
    return rows


def per_sample_cost(rec):
    fs = int(round(rec.fs))
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.txt"
        p.write_text("".join("%d\n" % x for x in rec.samples))
        env = dict(os.environ, MICROPYPATH="%s:.frozen" % FIRMWARE)
        script = Path(__file__).with_name("bench_mpy") / "per_sample.py"
        best = None
        for _ in range(3):
            outp = subprocess.run([micropython_binary(), str(script), str(p), str(fs)], env=env,
                                  capture_output=True, text=True, check=True).stdout.split()
            n, t_core, t_empty = (int(v) for v in outp)
            if best is None or t_core < best[1]:
                best = (n, t_core, t_empty)
    n, t_core, t_empty = best
    return t_core / n, t_empty / n


def replay_speed(rec):
    num, den = rate_fraction(rec.fs)
    best = 1e9
    for _ in range(3):
        r = Replay(num, den, io.StringIO())
        t = time.perf_counter()
        for x in rec.samples:
            r.feed(x)
        best = min(best, time.perf_counter() - t)
    return rec.duration_s / best


def main():
    if not DATA.is_dir():
        print("bench: %s is absent; nothing to measure" % DATA, file=sys.stderr)
        return 1
    cases = discover(DATA)
    rows = accuracy(cases)
    nk = next(c for c in cases if "bio_resting" in c.name)
    rec = load_recording(nk.signal, nk.column, nk.fs)
    us_core, us_empty = per_sample_cost(rec)
    ratio = us_core / us_empty
    rp_us = ratio * RP2040_EMPTY_LOOP_US
    speed = replay_speed(rec)
    lines = [
        "# Benchmarks",
        "",
        "Produced by `make bench` (`python -m vagal_host.bench`) on %s, %s, Python %s." % (
            time.strftime("%Y-%m-%d"), platform.machine(), platform.python_version()),
        "",
        "## Beat detection against ECG R-peaks (../shared/data)",
        "",
        "Scored the PPG-beats way (`vagal_host/scoring.py`): detections shifted by their median lag,",
        "a beat found within +-150 ms, exclusion windows honoured. The offline detectors filter forwards",
        "and backwards over the whole record; vagal runs causally, sample by sample, in integers.",
        "",
        "| recording | detector | F1 % | Se % | PPV % | FP | FN | IBI error ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, label, s in rows:
        lines.append("| %s | %s | %.2f | %.2f | %.2f | %d | %d | %.2f |" % (
            name, label, 100 * s.f1, 100 * s.sensitivity, 100 * s.precision, s.fp, s.fn, s.ibi_err_ms))
    lines += [
        "",
        "## Per-sample cost",
        "",
        "BeatDetector.push on the MicroPython unix port (%s), best of 3 over %s (%d samples):" % (
            platform.machine(), nk.name, len(rec.samples)),
        "",
        "| measure | value |",
        "|---|---|",
        "| push() per sample, unix port | %.3f us |" % us_core,
        "| empty `for` iteration, same run | %.4f us |" % us_empty,
        "| ratio (push / empty iteration) | %.0f |" % ratio,
        "| RP2040 estimate at 125 MHz (ratio x %.1f us) | %.0f us |" % (RP2040_EMPTY_LOOP_US, rp_us),
        "| share of the CPU at 250 Hz (budget 10 %%) | %.1f %% |" % (rp_us * 250 / 1e4),
        "",
        "The estimate assumes an empty `for` iteration costs %.1f us on the RP2040 at 125 MHz (about" % RP2040_EMPTY_LOOP_US,
        "110 cycles of MicroPython's bytecode loop) and that push() scales like it, both being plain",
        "bytecode on small ints. It is an estimate until measured on a board.",
        "",
        "## Replay throughput on CPython",
        "",
        "| recording | real-time factor |",
        "|---|---|",
        "| %s (%.0f s at %g Hz) | %.0fx |" % (nk.name, rec.duration_s, rec.fs, speed),
        "",
    ]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
