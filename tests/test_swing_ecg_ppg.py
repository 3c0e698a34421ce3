"""Issue #4 acceptance on real recordings: per-breath HR swing from the PPG (core detector) against
the same from the ECG R-peaks, breath boundaries from each recording's respiration channel."""

import pytest

from vagal_host import scoring, swing_check

pytestmark = pytest.mark.skipif(
    not swing_check.DATA.is_dir(),
    reason="real recordings not available: %s is absent" % swing_check.DATA)


@pytest.fixture(scope="module")
def results():
    return {r.name: r for r in swing_check.check_all()}


def test_enough_breaths_are_compared(results):
    for r in results.values():
        assert r.compared >= 50 and r.compared >= 0.8 * r.breaths, r.line()


def test_fitted_swing_agrees_within_1_bpm(results):
    """The fitted swing is what the assessment and tuning rules compare."""
    for r in results.values():
        assert r.fit_err < 1.0, r.line()


def test_peak_to_trough_swing_agrees_within_1_bpm_on_bidmc(results):
    r = results["bidmc 01"]
    assert r.swing_err < 1.0, r.line()


def test_peak_to_trough_swing_agrees_within_1_bpm_on_neurokit(results):
    """A premature beat 30 % early (550 ms after 800 ms) once passed the interval cleaner and lifted
    this to 1.43 bpm; Malik's 20 % rule in vagal.hrv now rejects it."""
    r = results["neurokit2 bio_resting_5min"]
    assert r.swing_err < 1.0, r.line()


def test_aligning_the_pulse_arrival_matters(results):
    """Without moving the PPG beats back by the pulse arrival time, a breath's window holds other
    heartbeats: the comparison must see that (it is not blind to which beats are inside)."""
    for r in results.values():
        assert r.swing_err_unshifted > r.swing_err + 0.2, r.line()
        assert 0.3 < r.lag_s < 0.8


def test_breaths_from_respiration_match_the_bidmc_annotators():
    found, marks, within, median = swing_check.breath_annotation_check()
    assert abs(found - marks) <= 0.05 * marks
    assert within >= 0.95 and median < 0.15


def test_refined_rpeaks_are_sub_sample_and_near_the_reference():
    import numpy as np

    fs = 100.0
    t = np.arange(0, 10, 1 / fs)
    true = np.array([1.003, 2.017, 3.0, 4.046])
    ecg = sum(np.exp(-((t - c) / 0.025) ** 2) for c in true)  # an R wave ~50 ms wide
    got = scoring.subsample_rpeaks(np.round(true * fs) / fs, ecg, fs)
    assert np.max(np.abs(got - true)) < 0.002
    assert np.max(np.abs(np.round(true * fs) / fs - true)) > 0.0035  # the whole samples were not
