"""Standard short-term heart rate variability of a session: the numbers Kubios and HRV apps show.

Why NeuroKit2 and not our own: these measures have conventions (band edges, interpolation, how a
missing interval is skipped) that a reader compares against other tools; NeuroKit2 (hrv_time,
hrv_frequency, and hrv_nonlinear's Poincare part) is a well-kept reference implementation of them.
What we add is the input: the device's own cleaned intervals (vagal.pipeline feeds vagal.hrv.HRV as
the device does), with each interval's end time, so NeuroKit2 sees a rejected beat or a lost pulse as a
missing interval instead of pairing intervals across it.
"""

import collections
import warnings

MIN_INTERVALS = 60  # about a minute of clean beats: fewer give no meaningful SDNN or spectrum
MIN_SPECTRUM_S = 120.0  # LF needs at least ~2 minutes (its slowest wave is 25 s long)

Intervals = collections.namedtuple("Intervals", "t_s ibi_ms rejected")  # rejected: [(t_s, ibi_ms)]

# name, NeuroKit2 column, unit, digits, typical range at rest or None, plain words. Ranges: healthy
# adults, 5-minute recordings, the range of the pooled studies in Nunan, Sandercock & Brodie 2010
# (PACE 33:1407); SD1 is RMSSD / sqrt(2) (Brennan 2001), so its range is RMSSD's divided by it; pNN50
# and SD2 have no range in that review and get none here.
MEASURES = (
    ("Mean interval", "HRV_MeanNN", "ms", 0, (785, 1160), "the average time between heartbeats"),
    ("SDNN", "HRV_SDNN", "ms", 1, (32, 93), "how much the intervals vary overall"),
    ("RMSSD", "HRV_RMSSD", "ms", 1, (19, 75), "beat-to-beat variation, mostly from the vagus nerve"),
    ("pNN50", "HRV_pNN50", "%", 1, None, "share of successive intervals differing by over 50 ms"),
    ("LF power", "HRV_LF", "ms²", 0, (193, 1009),
     "slow waves, 0.04-0.15 Hz: where resonance breathing puts its power"),
    ("HF power", "HRV_HF", "ms²", 0, (83, 3630), "fast waves, 0.15-0.4 Hz: ordinary breathing rates"),
    ("LF/HF", "HRV_LFHF", "", 2, (1.1, 11.6), "the balance of the two (rises with slow breathing)"),
    ("SD1", "HRV_SD1", "ms", 1, (13, 53), "Poincaré plot width: short-term variation"),
    ("SD2", "HRV_SD2", "ms", 1, None, "Poincaré plot length: longer-term variation"),
)
NORMS_SOURCE = ("Typical at rest: healthy adults, 5-minute recordings (Nunan et al. 2010). Breathing "
                "slowly on purpose raises SDNN, LF power and LF/HF well above these ranges: that is the "
                "point of the exercise, not a warning sign.")


def beat_verdicts(part):
    """HRV's verdict on each of the part's beats (part.of("beat") order), fed through
    vagal.pipeline.Pipeline with the quality lines as the device feeds them: True (its interval was
    accepted), False (rejected: a missed or extra beat) or None (no interval: the first beat, or the
    first after a gap)."""
    from vagal.pipeline import Pipeline
    from vagal.ticks import TICKS_MAX

    pipe = Pipeline()
    out = []
    for r in part.records:
        name = type(r).__name__
        if name == "Quality":
            pipe.signal(r.state == "ok")
        elif name == "Beat":
            ok = pipe.beat((r.t_ms * 1000) & TICKS_MAX, r.ibi_us)
            out.append(ok if r.ibi_us > 0 else None)
    return out


def cleaned_intervals(part):
    """-> Intervals(t_s, ibi_ms of the accepted intervals (each ending at t_s), rejected
    [(t_s, ibi_ms)]), from beat_verdicts."""
    t_s, ibi_ms, rejected = [], [], []
    for b, ok in zip(part.of("beat"), beat_verdicts(part)):
        if ok:
            t_s.append(b.t_ms / 1000.0)
            ibi_ms.append(b.ibi_us / 1000.0)
        elif ok is False:
            rejected.append((b.t_ms / 1000.0, b.ibi_us / 1000.0))
    return Intervals(t_s, ibi_ms, rejected)


def _nk_input(iv):
    import numpy as np

    return {"RRI": np.asarray(iv.ibi_ms, dtype=float), "RRI_Time": np.asarray(iv.t_s, dtype=float)}


def standard_hrv(iv):
    """{NeuroKit2 column: value} for MEASURES, or None with fewer than MIN_INTERVALS intervals.
    Frequency measures are left out (None) when the intervals span less than MIN_SPECTRUM_S."""
    if len(iv.ibi_ms) < MIN_INTERVALS:
        return None
    import neurokit2 as nk
    from neurokit2.hrv.hrv_nonlinear import _hrv_nonlinear_poincare

    d = _nk_input(iv)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NeuroKit2 warns of the missing intervals we pass on purpose
        time_domain = nk.hrv_time(d)
        for col in ("HRV_MeanNN", "HRV_SDNN", "HRV_RMSSD", "HRV_pNN50"):
            out[col] = float(time_domain[col].iloc[0])
        span = iv.t_s[-1] - iv.t_s[0] + iv.ibi_ms[0] / 1000.0
        if span >= MIN_SPECTRUM_S:
            freq = nk.hrv_frequency(d, normalize=False)  # absolute power, ms², as Kubios reports it
            for col in ("HRV_LF", "HRV_HF", "HRV_LFHF"):
                out[col] = float(freq[col].iloc[0])
        else:
            out.update(HRV_LF=None, HRV_HF=None, HRV_LFHF=None)
        # hrv_nonlinear's own Poincare step: the whole of hrv_nonlinear also computes entropies and
        # fractal indices this page does not show, 4-5 s for a 15-minute session
        rri = d["RRI"]
        poincare = _hrv_nonlinear_poincare(rri, rri_time=d["RRI_Time"], rri_missing=_has_gaps(iv), out={})
        out["HRV_SD1"] = float(poincare["SD1"])
        out["HRV_SD2"] = float(poincare["SD2"])
    return out


def _follows(iv, k):
    """True when interval k directly follows interval k - 1 (no rejected beat or lost pulse between)."""
    return abs(iv.t_s[k] - iv.t_s[k - 1] - iv.ibi_ms[k] / 1000.0) <= 0.002


def _has_gaps(iv):
    """True when some interval does not follow the one before it."""
    return not all(_follows(iv, k) for k in range(1, len(iv.t_s)))


def table_rows(values):
    """[(name, value text, unit, typical range text, in range: True/False/None, words)]."""
    rows = []
    for name, col, unit, digits, norm, words in MEASURES:
        v = values.get(col)
        typical = "%g-%g %s" % (norm[0], norm[1], unit) if norm else "-"
        if v is None or v != v:  # None or NaN
            rows.append((name, "-", unit, typical.strip(), None,
                         words + " (needs at least %d minutes of clean beats)" % (MIN_SPECTRUM_S // 60)
                         if col in ("HRV_LF", "HRV_HF", "HRV_LFHF") else words))
            continue
        inside = norm[0] <= v <= norm[1] if norm else None
        rows.append((name, "%.*f" % (digits, v), unit, typical.strip(), inside, words))
    return rows


def spectrum(iv):
    """(frequencies Hz, power ms²/Hz) of the intervals, interpolated as NeuroKit2's hrv_frequency does;
    None when they span less than MIN_SPECTRUM_S."""
    if len(iv.ibi_ms) < MIN_INTERVALS or iv.t_s[-1] - iv.t_s[0] < MIN_SPECTRUM_S:
        return None
    import neurokit2 as nk

    d = _nk_input(iv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rri, _, rate = nk.intervals_process(d["RRI"], intervals_time=d["RRI_Time"], interpolate=True,
                                            interpolation_rate=4)
        psd = nk.signal_psd(rri, sampling_rate=rate, method="welch", min_frequency=0.01,
                            max_frequency=0.5, normalize=False)
    return psd["Frequency"].to_numpy(), psd["Power"].to_numpy()


def poincare_pairs(iv):
    """[(interval n, interval n+1)] in ms, only where n+1 directly follows n."""
    return [(iv.ibi_ms[k - 1], iv.ibi_ms[k]) for k in range(1, len(iv.t_s)) if _follows(iv, k)]
