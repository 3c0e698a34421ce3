"""PPG-beats scoring (vagal_host.scoring) on synthetic beat lists with known answers."""

import numpy as np

from vagal_host import scoring


def _beats(n=200, hr=60.0, seed=3):
    rng = np.random.default_rng(seed)
    ibi = 60.0 / hr + rng.normal(0, 0.04, n)
    return np.cumsum(ibi) + 0.5


def test_finds_the_lag_and_counts_hits_misses_and_extras():
    ref = _beats()
    det = ref + 0.43
    det = np.delete(det, [10, 50])                      # two missed pulses
    det = np.sort(np.append(det, [ref[30] + 0.43 + 0.5]))  # one invented between beats
    sc = scoring.score("x", ref, det, duration_s=ref[-1] + 2)
    assert abs(sc.lag_s - 0.43) < 1e-9
    assert (sc.tp, sc.fn, sc.fp) == (len(ref) - 2, 2, 1)
    assert len(sc.missed) == 2 and len(sc.false) == 1
    assert sc.ibi_err_ms < 1e-6                         # matched intervals are exact


def test_ibi_error_is_the_mean_interval_difference():
    ref = _beats()
    rng = np.random.default_rng(9)
    jitter = rng.uniform(-0.004, 0.004, len(ref))
    sc = scoring.score("x", ref, ref + 0.3 + jitter, duration_s=ref[-1] + 2)
    want = 1000 * np.mean(np.abs(np.diff(jitter)))
    assert abs(sc.ibi_err_ms - want) < 1e-6


def test_exclusions_remove_references_and_pulses():
    ref = _beats()
    det = ref + 0.2
    det = det[(det < 50) | (det > 70)]                  # no pulse for 20 s
    ex = [(50.0, 70.0, "nopulse")]
    sc = scoring.score("x", ref, det, ref[-1] + 2, ex)
    assert sc.fn == 0 and sc.fp == 0
    assert scoring.score("x", ref, det, ref[-1] + 2).fn > 10


def test_subsample_rpeaks_finds_the_true_peak_between_samples():
    fs = 100.0
    true = _beats(60) + 0.0037                          # peaks between samples
    t = np.arange(int((true[-1] + 2) * fs)) / fs
    ecg = np.zeros_like(t)
    for p in true:
        ecg += np.exp(-0.5 * ((t - p) / 0.012) ** 2)    # R waves ~30 ms wide
    given = np.round(true * fs) / fs                    # references as whole samples
    fine = scoring.subsample_rpeaks(given, ecg, fs)
    assert np.max(np.abs(given - true)) > 0.003
    assert np.max(np.abs(fine - true)) < 0.0015


def test_whole_sample_detections_can_share_the_reference_rounding():
    """Why evaluate also scores against sub-sample R-peaks: with a pulse arrival time of a whole
    number of samples, a detector rounding to the same grid cancels the rounding of the reference."""
    fs = 100.0
    true = _beats(300)
    rng = np.random.default_rng(1)
    pulse = true + 0.43 + rng.normal(0, 0.003, len(true))    # 43 samples + physiological jitter
    given = np.round(true * fs) / fs
    on_grid = scoring.score("grid", given, np.round(pulse * fs) / fs, true[-1] + 2).ibi_err_ms
    exact = scoring.score("exact", given, pulse, true[-1] + 2).ibi_err_ms
    assert on_grid < exact                              # the artefact: rounding looks better
    fair_grid = scoring.score("grid", true, np.round(pulse * fs) / fs, true[-1] + 2).ibi_err_ms
    fair_exact = scoring.score("exact", true, pulse, true[-1] + 2).ibi_err_ms
    assert fair_exact < fair_grid                       # against exact R-peaks it is worse
