"""Per-breath heart-rate swing from PPG beats against the same from ECG R-peaks, on real recordings.

Why: the device only has the pulse (PPG); the acceptance check of issue #4 asks that the per-breath
swing it measures agrees with the one from the ECG within 1 bpm on average. The recordings have no
pacer, so the breathing reference comes from their respiration channel: each breath runs from one
trough of the (smoothed, detrended) respiration signal to the next, its inhale ends at the peak in
between. A PacerView driven by those boundaries plays the pacer for vagal.resonance.ResonanceMeter.

PPG beats come from the core detector (vagal.replay.Replay, the code every replay engine runs), with
the detector's own signal quality fed to the meter; ECG beats are the reference R-peak files. Both go
through vagal.hrv.HRV (the same interval cleaner) into one ResonanceMeter each, fed identical pacer
calls, so the meters judge the same breaths. The PPG beats are moved earlier by the median pulse
arrival time (found as in vagal_host.scoring), since a breath's window should hold the same heart
beats for both; the unshifted numbers are reported too. Only breaths valid in both are compared.

    .venv/bin/python -m vagal_host.swing_check [DATA_DIR]

(docs/resonance.md, "Re-analysis and real recordings").
"""

import csv
import io
import os
import sys
from pathlib import Path

import numpy as np

from vagal.pacer import PHASE_ONE
from vagal.pulse import OK
from vagal.replay import Replay
from vagal.pipeline import Pipeline
from vagal.resonance import BEAT_DELAY_US
from vagal.ticks import TICKS_MAX

from vagal_host.analysis import PacerView
from vagal_host.errors import VagalError
from vagal_host.recording import load_recording, read_column
from vagal_host.replay_engines import rate_fraction
from vagal_host import scoring
from vagal_host.scoring import read_exclusions, read_times, score

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
GRID_S = 0.02  # pace() period, as the app's pacer update
BREATH_MIN_S = 1.5  # respiration cycles outside these are artefacts, not breaths
BREATH_MAX_S = 15.0

# name, signals file, fs, PPG column, respiration column, ECG column, R-peaks file, exclusions file
RECORDINGS = (
    ("neurokit2 bio_resting_5min", "neurokit2/bio_resting_5min_100hz.csv", 100.0, "PPG", "RSP", "ECG",
     "neurokit2/bio_resting_5min_100hz_rpeaks.csv", "neurokit2/bio_resting_5min_100hz_exclude.csv"),
    ("bidmc 01", "bidmc/bidmc_01_Signals.csv", 125.0, "PLETH", "RESP", "II",
     "bidmc/bidmc_01_rpeaks.csv", "bidmc/bidmc_01_exclude.csv"),
)


class Result:
    """One recording's comparison (bpm): mean |PPG - ECG| of the swing and of the fitted swing."""

    def __init__(self, name, breaths, compared, swing_err, fit_err, swing_ecg, swing_err_unshifted,
                 lag_s):
        self.name = name
        self.breaths = breaths
        self.compared = compared
        self.swing_err = swing_err
        self.fit_err = fit_err
        self.swing_ecg = swing_ecg
        self.swing_err_unshifted = swing_err_unshifted
        self.lag_s = lag_s

    def line(self):
        return ("%-27s breaths %3d, valid in both %3d: mean ECG swing %.2f bpm; mean |PPG - ECG| "
                "swing %.2f bpm, fitted swing %.2f bpm (unshifted swing %.2f); pulse arrival %.2f s"
                % (self.name, self.breaths, self.compared, self.swing_ecg, self.swing_err,
                   self.fit_err, self.swing_err_unshifted, self.lag_s))


def _moving_mean(x, n):
    n = max(1, int(n))
    k = np.ones(n) / n
    pad = np.pad(x, (n // 2, n - 1 - n // 2), mode="edge")
    return np.convolve(pad, k, mode="valid")


def breaths_from_respiration(x, fs):
    """[(onset_s, inhale_end_s, next_onset_s)]: trough to trough, peak in between.

    The signal is smoothed (0.5 s) and detrended (minus its 10 s moving mean); a cycle is a swing
    below -h and back above +h, h = 15 % of the detrended signal's 5-95 % range, so noise around
    the mean does not split a breath. Rising signal = inhale (chest expands).
    """
    x = np.asarray(x, dtype=float)
    s = _moving_mean(x, 0.5 * fs)
    d = s - _moving_mean(s, 10 * fs)
    lo, hi = np.percentile(d, [5, 95])
    h = 0.15 * (hi - lo)
    troughs = []
    peaks = []
    state = 0  # 1 above +h, -1 below -h
    ext = 0
    for i in range(len(d)):
        v = d[i]
        if state <= 0 and v > h:
            if state == -1:
                troughs.append(ext)
            state = 1
            ext = i
        elif state >= 0 and v < -h:
            if state == 1:
                peaks.append(ext)
            state = -1
            ext = i
        elif state == 1 and v > d[ext]:
            ext = i
        elif state == -1 and v < d[ext]:
            ext = i
    out = []
    peaks = np.array(peaks)
    for a, b in zip(troughs, troughs[1:]):
        inside = peaks[(peaks > a) & (peaks < b)]
        if len(inside) != 1:
            continue
        period = (b - a) / fs
        if BREATH_MIN_S <= period <= BREATH_MAX_S:
            out.append((a / fs, inside[0] / fs, b / fs))
    return out


def ppg_beats(samples, fs):
    """(beats [(t_s, ibi_us, accepted)], quality changes [(t_s, ok)]) from the core detector."""
    num, den = rate_fraction(fs)
    buf = io.StringIO()
    r = Replay(num, den, buf)
    changes = []
    q = r.det.quality
    for i, x in enumerate(samples):
        r.feed(x)
        if r.det.quality != q:
            q = r.det.quality
            changes.append((i / fs, q == OK))
    beats = []
    for row in csv.DictReader(io.StringIO(buf.getvalue())):
        beats.append((float(row["time_s"]), int(round(float(row["ibi_ms"]) * 1000)),
                      row["accepted"] == "1"))
    return beats, changes


def ecg_beats(times):
    """R-peak times -> [(t_s, ibi_us)] (ibi 0 for the first): the pipeline cleans them as the device
    does its own beats."""
    out = []
    prev = None
    for t in times:
        out.append((float(t), 0 if prev is None else int(round((t - prev) * 1e6))))
        prev = t
    return out


def _tick(t_s):
    return int(round(t_s * 1e6)) & TICKS_MAX


def meter_breaths(beats, signal, breaths):
    """Run the core's Pipeline (HRV and the ResonanceMeter) with a PacerView for a pacer: beats
    [(t_s, ibi_us, ...)], signal [(t_s, ok)], breaths from breaths_from_respiration; -> one
    (breath start tick, valid, swing_x10, fit_x10) per judged breath, in order."""
    pacer = PacerView()
    pipe = Pipeline(pacer=pacer)
    meter = pipe.meter
    events = [(b[0], 0, "beat", b[1]) for b in beats]
    events += [(t, 0, "signal", ok) for t, ok in signal]
    for i, (on, ie, nxt) in enumerate(breaths):
        if i and breaths[i - 1][2] != on:
            continue  # a gap in the breath sequence (an artefact cycle was dropped)
        n = int((nxt - on) / GRID_S)
        for k in range(n):
            events.append((on + k * GRID_S, 1, "pace", (i, on, ie, nxt)))
    # one last breath's worth of calls so the final breath gets judged
    if breaths:
        on, ie, nxt = breaths[-1]
        for k in range(1, int((BEAT_DELAY_US / 1e6 + 0.5) / GRID_S)):  # past the judging delay
            events.append((nxt + k * GRID_S, 1, "pace", (len(breaths), nxt, nxt + 1e3, nxt + 2e3)))
    events.sort(key=lambda e: (e[0], e[1]))
    out = []
    seq = meter.seq
    for t, _, kind, v in events:
        if kind == "beat":
            pipe.beat(_tick(t), v)
        elif kind == "signal":
            pipe.signal(v)
        else:
            i, on, ie, nxt = v
            period = nxt - on
            total = i * PHASE_ONE + int((t - on) / period * PHASE_ONE)
            pacer.set_total(total, int(round(60000.0 / period)),
                            int((ie - on) / period * PHASE_ONE))
            pipe.pace(_tick(t))
            if meter.seq != seq:
                seq = meter.seq
                out.append((meter.breath_start_us, meter.valid, meter.swing_x10, meter.fit_x10))
    return out


def _compare(a, b):
    """Mean |a - b| of swing and fit over breaths valid in both (matched by start tick)."""
    bmap = {s: (v, sw, fi) for s, v, sw, fi in b}
    ds, df, ref = [], [], []
    for s, v, sw, fi in a:
        if s in bmap and v and bmap[s][0]:
            ds.append(abs(sw - bmap[s][1]) / 10.0)
            df.append(abs(fi - bmap[s][2]) / 10.0)
            ref.append(bmap[s][1] / 10.0)
    if not ds:
        return 0, float("nan"), float("nan"), float("nan")
    return len(ds), float(np.mean(ds)), float(np.mean(df)), float(np.mean(ref))


def check_recording(data_dir, name, signals, fs, ppg_col, resp_col, ecg_col, rpeaks, exclude,
                    refine=True):
    """Result for one recording."""
    path = os.path.join(data_dir, signals)
    ppg = load_recording(path, ppg_col, fs)
    resp = load_recording(path, resp_col, fs)
    rp = os.path.join(data_dir, rpeaks)
    r_times = read_times(rp, fs)
    if refine:
        # whole samples are 8-10 ms steps, 1.1-1.4 bpm at 90 bpm: as large as the swing checked
        r_times = scoring.subsample_rpeaks(r_times, read_column(path, ecg_col)[0], fs)
    excl = read_exclusions(os.path.join(data_dir, exclude)) if exclude else []
    breaths = breaths_from_respiration(resp.samples, fs)
    pb, pq = ppg_beats(ppg.samples, fs)
    lag = score(name, r_times, [t for t, _, _ in pb], len(ppg.samples) / fs, excl).lag_s
    eb = ecg_beats(r_times)
    # the ECG reference is unreadable in `reference` windows: its meter sees bad signal there
    ecg_sig = []
    for s, e, kind in excl:
        if kind == "reference":
            ecg_sig += [(s, False), (e, True)]
    ecg = meter_breaths(eb, sorted(ecg_sig), breaths)
    shifted = meter_breaths([(t - lag, i, a) for t, i, a in pb], [(t - lag, ok) for t, ok in pq],
                            breaths)
    unshifted = meter_breaths(pb, pq, breaths)
    n, swing_err, fit_err, swing_ecg = _compare(shifted, ecg)
    swing_err_raw = _compare(unshifted, ecg)[1]
    return Result(name, len(ecg), n, swing_err, fit_err, swing_ecg, swing_err_raw, lag)


def breath_annotation_check(data_dir=DATA):
    """BIDMC 01's annotators mark each breath's end of inhale: (breaths found, marks, fraction of
    found inhale ends within 0.5 s of a mark, median |offset| s). Checks breaths_from_respiration."""
    path = os.path.join(data_dir, "bidmc", "bidmc_01_Signals.csv")
    resp = load_recording(path, "RESP", 125.0)
    found = np.array([ie for _, ie, _ in breaths_from_respiration(resp.samples, 125.0)])
    with open(os.path.join(data_dir, "bidmc", "bidmc_01_Breaths.csv"), newline="") as f:
        rows = list(csv.reader(f))[1:]
    marks = np.array([float(r[0]) for r in rows if r and r[0].strip()]) / 125.0
    off = np.array([np.min(np.abs(marks - t)) for t in found])
    return len(found), len(marks), float(np.mean(off <= 0.5)), float(np.median(off))


def check_all(data_dir=DATA):
    if not os.path.isdir(data_dir):
        raise VagalError("recordings folder %s is absent" % data_dir)
    return [check_recording(data_dir, *rec) for rec in RECORDINGS]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        data = argv[0] if argv else DATA
        results = check_all(data)
    except VagalError as e:
        print("swing_check: error: %s" % e, file=sys.stderr)
        return 2
    for r in results:
        print(r.line())
    print("bidmc 01 breaths: %d found, %d annotated; %.0f %% of inhale ends within 0.5 s of a mark "
          "(median %.3f s)" % tuple(v * 100 if i == 2 else v
                                    for i, v in enumerate(breath_annotation_check(data))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
