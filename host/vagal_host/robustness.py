"""The core on recordings it has not seen: the shared recordings under the changes another
sensor, person or room brings, and a synthetic atrial fibrillation sweep.

Each condition is one transformation of a recording with ECG R-peaks (scored as `vagal evaluate`
scores, so F1 and IBI error compare with the recording as it is):
  weak pulse        12-bit counts, a pulse 32 counts high, half a count of ADC noise (a quiet ADC
                    and a poor contact)
  rail spikes       a one-sample spike to the rail every 10 s on average (electrical glitches)
  breathing swing   the baseline swinging with breathing: one 5-95 % range each way at 15/min, two
                    at 6/min (the paced rate)
  noise             white noise of 15 % of the 5-95 % range
  gain step         the pulse a third as tall from 60 s on (the finger moved)
  mains             50 Hz at 30 % of the range (recordings above 100 Hz)
Atrial fibrillation has no recording here: `af_sweep` makes one per setting (intervals uniform
within +-spread of the mean, each pulse as tall as its filling time allows, an optional dicrotic
wave) and counts beats missed and invented within 100 ms.

`python -m vagal_host.robustness [--data DIR]` prints the tables; `make bench` puts them in
docs/benchmarks.md.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from vagal.pulse import BeatDetector, QUALITY_NAMES
from vagal.ticks import TickClock
from vagal_host import scoring
from vagal_host.errors import VagalError
from vagal_host.evaluate import discover, replay_beats
from vagal_host.recording import read_column, to_adc

DATA = Path("../shared/data")


def conditions(raw, fs, seed=2):
    """name -> the recording's values (floats) under that condition; None where it does not apply."""
    rng = np.random.default_rng(seed)
    t = np.arange(len(raw)) / fs
    lo, hi = np.percentile(raw, [5, 95])
    a = hi - lo
    mid = np.median(raw)
    p_lo, p_hi = np.percentile(raw, [0.5, 99.5])
    weak = 2048 + (raw - (p_lo + p_hi) / 2) / (p_hi - p_lo) * 32 + 0.5 * rng.standard_normal(len(raw))
    spikes = raw + np.where(rng.random(len(raw)) < 0.1 / fs, 4 * a, 0.0)
    return {
        "as recorded": raw,
        "weak pulse (32 counts, 0.5 count noise)": np.clip(np.round(weak), 0, 4095),
        "rail spikes, 1 per 10 s": spikes,
        "breathing swing, 1x range at 15/min": raw + a * np.sin(2 * np.pi * 0.25 * t),
        "breathing swing, 2x range at 6/min": raw + 2 * a * np.sin(2 * np.pi * 0.1 * t),
        "noise, 15 % of range": raw + 0.15 * a * rng.standard_normal(len(raw)),
        "gain x0.3 from 60 s": np.where(t < 60, raw, mid + (raw - mid) * 0.3),
        "mains 50 Hz, 30 % of range": raw + 0.3 * a * np.sin(2 * np.pi * 50 * t) if fs > 100 else None,
    }


def score_values(case, values, adc_bits=None):
    """Replay the core on values and score them against the case's R-peaks: (Score, share of
    time in each quality state)."""
    samples, _, _ = to_adc([float(v) for v in values], adc_bits)
    det, r = replay_beats(samples, case.fs)
    ref = scoring.read_times(case.rpeaks, case.fs)
    sc = scoring.score(case.name, ref, det, len(samples) / case.fs, scoring.read_exclusions(case.exclude))
    n = len(samples)
    return sc, {QUALITY_NAMES[i]: v / n for i, v in enumerate(r.state_samples) if v}


def recording_rows(cases):
    """[(recording, condition, Score, states)] for every case and condition."""
    rows = []
    for case in cases:
        raw = np.asarray(read_column(case.signal, case.column)[0], dtype=float)
        for name, values in conditions(raw, case.fs).items():
            if values is None:
                continue
            sc, states = score_values(case, values, 12 if name.startswith("weak") else None)
            rows.append((case.name, name, sc, states))
    return rows


def af_ppg(fs, duration_s, mean_ibi_s, spread, seed, dicrotic=0.35):
    """Samples (read_u16 scale) and true peak times of an irregularly irregular rhythm."""
    rng = np.random.default_rng(seed)
    times, heights = [], []
    t, prev = 0.5, mean_ibi_s
    while t < duration_s:
        times.append(t)
        heights.append(min(1.0, max(0.15, 1.0 - (mean_ibi_s - prev) / mean_ibi_s)))
        prev = mean_ibi_s * (1.0 + spread * (2.0 * rng.random() - 1.0))
        t += prev
    tt = np.arange(int(duration_s * fs)) / fs
    out = np.zeros(len(tt))
    for tb, h in zip(times, heights):
        m = (tt > tb - 0.4) & (tt < tb + 0.8)
        d = tt[m] - tb
        v = np.where(d < 0, np.exp(-d * d / (2 * 0.06 ** 2)), np.exp(-d * d / (2 * 0.12 ** 2)))
        out[m] += h * (v + dicrotic * np.exp(-(d - 0.32) ** 2 / (2 * 0.06 ** 2)))
    x = 32768 + 8000 * out + 1500 * np.sin(2 * np.pi * 0.1 * tt) + 60 * rng.standard_normal(len(tt))
    return np.clip(x, 0, 65535).astype(int), np.array(times)


AF_MEANS = (0.45, 0.6, 0.8, 1.0)
AF_SPREADS = (0.15, 0.3, 0.45)
AF_SEEDS = (101, 202)
AF_PER_ROW = len(AF_MEANS) * len(AF_SPREADS) * len(AF_SEEDS)


def af_sweep(fs=250, duration_s=90, means=AF_MEANS, spreads=AF_SPREADS, dicrotics=(0.0, 0.35, 0.6),
             seeds=AF_SEEDS):
    """[(dicrotic, beats, missed, invented)] over every mean, spread and seed."""
    rows = []
    for dic in dicrotics:
        n = missed = extra = 0
        for mean in means:
            for spread in spreads:
                for seed in seeds:
                    x, truth = af_ppg(fs, duration_s, mean, spread,
                                      seed + int(mean * 100) + int(spread * 100), dic)
                    det = BeatDetector(fs)
                    clock = TickClock(fs, 1, 0)
                    found = []
                    for v in x.tolist():
                        if det.push(v, clock.tick()):
                            found.append(det.beat_t_us / 1e6)
                    found = np.array(found)
                    tr = truth[truth > 3]
                    n += len(tr)
                    missed += sum(1 for t in tr if not len(found) or np.min(np.abs(found - t)) > 0.1)
                    extra += sum(1 for f in found[found > 3] if np.min(np.abs(truth - f)) > 0.1)
        rows.append((dic, n, missed, extra))
    return rows


def render(rows, af):
    L = ["| recording | condition | F1 % | FP | FN | IBI err ms | time not ok |",
         "|---|---|---|---|---|---|---|"]
    for name, cond, sc, states in rows:
        bad = ", ".join("%s %.0f %%" % (k, 100 * v) for k, v in states.items() if k != "ok" and v >= 0.005)
        L.append("| %s | %s | %.2f | %d | %d | %.2f | %s |" % (
            name, cond, 100 * sc.f1, sc.fp, sc.fn, sc.ibi_err_ms, bad or "-"))
    if af:
        L += ["", "| atrial fibrillation, dicrotic wave | beats | missed | invented |", "|---|---|---|---|"]
        for dic, n, m, e in af:
            L.append("| %s | %d | %d (%.1f %%) | %d |" % (
                "none" if dic == 0 else "%.2f of the pulse" % dic, n, m, 100.0 * m / n if n else 0, e))
    return "\n".join(L)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m vagal_host.robustness", description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA,
                    help="recordings with R-peaks (default ../shared/data)")
    ap.add_argument("--no-af", action="store_true", help="skip the atrial fibrillation sweep")
    args = ap.parse_args(argv)
    try:
        if not args.data.is_dir():
            raise VagalError("%s is absent: no recordings to transform" % args.data)
        rows = recording_rows(discover(args.data))
    except VagalError as e:
        print("robustness: %s" % e, file=sys.stderr)
        return 2
    print(render(rows, None if args.no_af else af_sweep()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
