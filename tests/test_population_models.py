"""Issue 15's populations: the noise-free sweep that gives each simulated person's true resonance
(vagal_host.truth), the families population.draw_person draws, and the runner's per family and
HR-phase band report (counted range-end hits, results outside the paceable range, the assessment's
stored settings reaching the tuner)."""

import pytest

from vagal_host import population as pop
from vagal_host import truth
from vagal_host.errors import VagalError


def _bandpass(**kw):
    args = dict(seed=3, hr_bpm=65.0, resonance_hz=5.5 / 60, rsa_bpm=14.0, q=2.0)
    args.update(kw)
    return truth.resonance_truth("bandpass", args, cache=False)


def test_sweep_of_the_own_person_finds_its_parameter_and_phase_zero():
    sw = _bandpass()
    assert sw["resonance_bpm"] == pytest.approx(5.5, abs=0.03)
    assert abs(sw["phase_deg"]) < 3 and sw["swing_bpm"] == pytest.approx(14.0, rel=0.05)
    assert sw["residual_bpm"] < 0.05  # noise free: the HR is the fitted periodic curve


@pytest.mark.parametrize("deg", [-55.0, -20.0, 30.0, 60.0])
def test_sweep_phase_at_resonance_is_the_phase_offset(deg):
    sw = _bandpass(phase_deg=deg)
    assert sw["phase_deg"] == pytest.approx(deg, abs=3.0)
    assert sw["resonance_bpm"] == pytest.approx(5.5, abs=0.03)  # a pure offset moves no peak


def test_breathing_lag_adds_its_share_of_the_breath_to_the_phase():
    sw = _bandpass(phase_deg=-10.0, breath_lag_s=0.6)
    assert sw["phase_deg"] == pytest.approx(-10.0 + 360 * 0.6 * 5.5 / 60, abs=3.0)


def test_a_floor_out_of_phase_moves_the_truth_away_from_the_parameter():
    # the reason the truth is the sweep's: a non-resonant RSA at another phase shifts the peak
    sw = _bandpass(q=0.8, phase_deg=-50.0, floor_bpm=2.0, floor_deg=20.0)
    assert abs(sw["resonance_bpm"] - 5.5) > 0.15
    flat, sharp = _bandpass(q=0.7), _bandpass(q=3.0)
    assert flat["sharpness"] < sharp["sharpness"]


def test_baroreflex_resonance_follows_its_delay():
    """A delayed negative feedback rings with a period of about twice its loop delay: 2 s more
    delay, about 4 s more period (2.5..6 allowed: the effector and Windkessel lags add)."""
    base = dict(seed=1, hr_bpm=65.0, effector_s=1.0, loop_gain=1.9, vagal_s_mmhg=0.012, resp_mmhg=4.0,
                resp_ms=20.0, mech_delay_s=-1.0)
    f = [truth.resonance_truth("baroreflex", dict(base, delay_s=d), cache=False)["resonance_bpm"]
         for d in (3.5, 4.5, 5.5)]
    assert f[0] > f[1] > f[2], f
    period_gain = 60.0 / f[2] - 60.0 / f[0]
    assert 2.5 < period_gain < 6.0, (f, period_gain)


def test_the_sweep_is_cached_by_the_person_s_parameters(tmp_path, monkeypatch):
    monkeypatch.setattr(truth, "CACHE", tmp_path / "truth.json")
    monkeypatch.setattr(truth, "_cache", None)
    calls = []
    real = truth.sweep
    monkeypatch.setattr(truth, "sweep", lambda make: calls.append(1) or real(make))
    kw = dict(seed=2, hr_bpm=70.0, resonance_hz=0.09)
    a = truth.resonance_truth("bandpass", kw)
    b = truth.resonance_truth("bandpass", dict(kw, hr_noise_bpm=1.5, noise=0.02))  # noise: same truth
    assert a == b and len(calls) == 1 and (tmp_path / "truth.json").exists()
    truth.resonance_truth("bandpass", dict(kw, hr_bpm=71.0))
    assert len(calls) == 2


def test_families_are_drawn_reproducibly_with_the_truth_from_the_sweep():
    own = pop.draw_person(4)
    assert own["family"] == "own" and "sweep_bpm" not in own  # today's draw, unchanged
    for fam in ("bandpass", "baroreflex"):
        a, b = pop.draw_person(4, fam), pop.draw_person(4, fam)
        assert a == b and a["family"] == fam
        assert a["resonance_bpm"] == a["sweep_bpm"] and 4.0 <= a["resonance_bpm"] <= 7.0
        assert abs(abs(a["tune_start_mbpm"] / 1000.0 - a["resonance_bpm"]) - 1.0) < 0.001
        assert 0.15 <= a["transit"] <= 0.35 and 0.1 <= a["blag"] <= 0.8
    bp = pop.draw_person(4, "bandpass")
    assert 0.7 <= bp["q"] <= 3.0 and -60 <= bp["phase_target_deg"] <= 60 and "model_resonance_bpm" in bp
    baro = pop.draw_person(4, "baroreflex")
    assert "model_resonance_bpm" not in baro and "resonance" not in pop.person_model(baro)[1]
    with pytest.raises(VagalError, match="family must be"):
        pop.draw_person(1, "martian")


def test_redraw_reasons():
    ok = {"resonance_bpm": 5.0, "residual_bpm": 0.01, "swing_bpm": 12.0}
    assert pop.redraw_reason(ok) is None
    assert pop.redraw_reason(dict(ok, resonance_bpm=3.8)) == "slow"
    assert pop.redraw_reason(dict(ok, resonance_bpm=7.2)) == "fast"
    assert pop.redraw_reason(dict(ok, residual_bpm=2.0)) == "rings"
    assert pop.redraw_reason(dict(ok, swing_bpm=80.0)) == "rings"


def test_per_band_picks_n_people_in_each_hr_phase_band():
    people = pop.pick_people(2, seed0=1, family="bandpass", per_band=True)
    bands = [pop.phase_band(p) for p in people]
    assert sorted(bands) == sorted(pop.family_bands("bandpass") * 2)
    assert [p["seed"] for p in people] == sorted(p["seed"] for p in people)
    own = pop.pick_people(3, seed0=1, family="own", per_band=True)
    assert [pop.phase_band(p) for p in own] == ["-20..+20"] * 3


def _row(fam, phase, err_a, err_t, on_end=False, outside=()):
    return {"family": fam, "sweep_phase_deg": phase, "assess_state": "done", "assess_err_bpm": err_a,
            "tune_final_mbpm": 5000, "tune_err_bpm": err_t, "tune_on_end": on_end, "outside": list(outside)}


def test_groups_report_each_family_and_band_with_range_end_hits_as_misses():
    rows = [_row("bandpass", -40, 0.1, 0.1), _row("bandpass", -30, 0.4, 0.2, on_end=True),
            _row("bandpass", 0, -0.1, 0.0), _row("baroreflex", 45, -0.3, -0.5, outside=["assess_mbpm"]),
            _row("bandpass", 75, 0.0, 0.0)]
    g = {(f, b): st for f, b, st in pop.groups(rows)}
    lead = g[("bandpass", "-60..-20")]
    assert lead["n"] == 2 and lead["assessment_within"] == 0.5 and lead["tuning_within"] == 1.0
    assert lead["tuning_within_off_end"] == 0.5 and lead["tune_on_end"] == 1
    assert g[("bandpass", "all")]["n"] == 4 and g[("bandpass", "outside")]["n"] == 1
    assert g[("baroreflex", "+20..+60")]["outside"] == 1
    assert ("own", "all") not in g
    text = pop.group_table({"groups": [{"family": f, "band": b, **st} for f, b, st in pop.groups(rows)]})
    assert "| bandpass | -60..-20 | 2 |   50 % | +0.25 |  100 % |   50 % | 1 | 0 | 0 |" in text


def test_judge_counts_the_range_end_and_the_paceable_range():
    row = {"resonance_bpm": 5.0, "assess_state": "done", "assess_mbpm": 7100, "tune_final_mbpm": 6000,
           "tune_lo_mbpm": 4000, "tune_hi_mbpm": 6000}
    pop._judge(row)
    assert row["tune_on_end"] and row["outside"] == ["assess_mbpm"]
    assert row["tune_err_bpm"] == pytest.approx(1.0) and row["assess_err_bpm"] == pytest.approx(2.1)
    row.update(tune_final_mbpm=5500, assess_mbpm=5000)
    pop._judge(row)
    assert not row["tune_on_end"] and row["outside"] == []


def test_what_the_assessment_stores_reaches_the_tuner(monkeypatch):
    """--fast: Assessment.stored_settings(), if the assessment has it, goes to Tuner by name (the
    practice's own keys left out), as the settings file carries it from board to board."""
    import vagal.assessment
    import vagal.tuner

    seen = {}

    class StoringAssessment(vagal.assessment.Assessment):
        def stored_settings(self):
            return {"resonance_mbpm": 5100, "offset_deg": 17, "mode": "assess"}

    base = vagal.tuner.Tuner

    class OffsetTuner(base):
        def __init__(self, meter, start_mbpm, offset_deg=0, **kw):
            seen["offset_deg"] = offset_deg
            base.__init__(self, meter, start_mbpm, **kw)

    monkeypatch.setattr(vagal.assessment, "Assessment", StoringAssessment)
    monkeypatch.setattr(vagal.tuner, "Tuner", OffsetTuner)
    p = pop.draw_person(5)
    row = pop.run_person_fast(p, step_s=30, practice_min=1)
    assert seen == {"offset_deg": 17} and row["tuner_settings"] == ["offset_deg"]
    lo, hi = row["tune_lo_mbpm"], row["tune_hi_mbpm"]
    assert lo < p["tune_start_mbpm"] < hi
    # a whole settings file (the board's): only what the tuner names
    settings = {"brightness": 50, "resonance_mbpm": 5000, "offset_deg": 3}
    assert pop.tuner_kwargs(settings, named_only=True) == {"offset_deg": 3}
    assert pop.tuner_range(p["tune_start_mbpm"], settings) == (lo, hi)
    lo2, hi2 = pop.tuner_range(5500, settings)
    assert 5500 - lo2 == hi2 - 5500 > 0


def test_fast_run_of_each_family_per_band_reports_every_band():
    result = pop.run_population(1, workers=1, seed0=1, step_s=30, practice_min=1, fast=True, family="all",
                                per_band=True)
    assert result["n"] == 7  # own: its one band; the others: three bands each
    got = {(g["family"], g["band"]) for g in result["groups"]}
    for fam in pop.FAMILIES:
        assert (fam, "all") in got
        for b in pop.family_bands(fam):
            assert (fam, b) in got
    text = pop.report(result)
    assert "| baroreflex | +20..+60 | 1 |" in text and "results on the tuner's range end" in text
    for r in result["rows"]:
        assert r["tune_lo_mbpm"] is not None and isinstance(r["outside"], list)
