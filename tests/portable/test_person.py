"""The simulated person (host/virtual_board/person.py): ground truth the detector is scored against."""

import gc
import sys


def _import_person():
    try:
        import person
        return person
    except ImportError:
        pass
    here = __file__.replace("\\", "/").rsplit("/", 1)[0] if "/" in __file__ else "."
    sys.path.append(here + "/../../host/virtual_board")
    import person
    return person


person = _import_person()
import baroreflex  # noqa: E402  (beside person.py)


def _run(p, seconds, fs=50, pacer_hz=None):
    gc.collect()  # small heaps (96K on the unix port): start each run unfragmented
    n = int(seconds * fs)
    for i in range(n):
        t = i / fs
        phase = None
        if pacer_hz is not None:
            x = t * pacer_hz
            phase = x - int(x)
        p.sample(t, phase)


def _hr_swing(beats, t_from):
    """Peak-to-peak instantaneous heart rate (bpm) over beats after t_from."""
    hrs = []
    for i in range(1, len(beats)):
        if beats[i - 1] >= t_from:
            hrs.append(60.0 / (beats[i] - beats[i - 1]))
    return max(hrs) - min(hrs)


def _quiet(**kw):
    args = {"noise": 0.0, "artefact_rate": 0.0, "ectopic_rate": 0.0}
    for k in kw:
        args[k] = kw[k]
    return person.Person(**args)


def test_true_beats_match_heart_rate():
    for hr in (55.0, 72.0, 90.0):
        p = _quiet(seed=3, hr_bpm=hr)
        _run(p, 60)
        beats = [b for b in p.beats if b <= 60.0]
        mean_hr = 60.0 * (len(beats) - 1) / (beats[-1] - beats[0])
        assert abs(mean_hr - hr) < 2.0, (hr, mean_hr)


def test_rsa_swing_peaks_at_resonance():
    swings = []
    for f in (0.06, 0.09, 0.15, 0.25):
        p = _quiet(seed=5, resonance_hz=0.09, adherence=1.0, keep_beats=80)
        _run(p, 100, pacer_hz=f)
        swings.append(_hr_swing(p.beats, 40.0))
        p = None
    at_res = swings[1]
    assert at_res > swings[0] and at_res > swings[2] and at_res > swings[3], swings
    assert at_res > 2 * swings[3], swings
    # moving the resonance moves the peak
    p = _quiet(seed=5, resonance_hz=0.075, adherence=1.0, keep_beats=80)
    _run(p, 100, pacer_hz=0.06)
    assert _hr_swing(p.beats, 40.0) > swings[0], swings


def test_adherence_sets_how_often_the_pacer_is_followed():
    full = _quiet(seed=2, adherence=1.0, spont_breath_hz=0.25)
    _run(full, 90, pacer_hz=0.1)
    assert full.following and abs(full.breath_hz - 0.1) < 0.005, full.breath_hz
    assert full.lapsed_breaths == 0 and full.paced_breaths >= 7
    x = 90 * 0.1  # at adherence 1 (no phase wander) the breathing phase is the pacer's
    assert abs(full.breath_phase - (x - int(x))) < 0.02 or abs(full.breath_phase - (x - int(x))) > 0.98
    none = _quiet(seed=2, adherence=0.0, spont_breath_hz=0.25)
    _run(none, 90, pacer_hz=0.1)
    assert not none.following and none.breath_hz == 0.25 and none.paced_breaths == 0
    half = _quiet(seed=2, adherence=0.5, spont_breath_hz=0.25)
    _run(half, 600, fs=20, pacer_hz=0.1)  # 60 breaths; lapse share (1 - 0.5)**2 = 25 %
    share = half.lapsed_breaths / (half.lapsed_breaths + half.paced_breaths)
    assert 0.1 < share < 0.4, share


def test_a_lapse_leaves_the_paced_response_alone():
    # a one-breath lapse to the own rate (15/min, lag ~1.3 rad) used to drag the settled lag along,
    # so the next paced breaths' HR peak came tens of degrees late (a bias toward slower rates)
    p = _quiet(seed=2, adherence=0.5, spont_breath_hz=0.25, resonance_hz=0.09, q=2.0)
    want_amp, want_lag = p.response(0.075)
    worst = 0.0
    lapse_amp = 0.0
    fs = 20
    for i in range(300 * fs):
        t = i / fs
        x = t * 0.075
        p.sample(t, x - int(x))
        if t > 30:
            d = abs(p._lag - want_lag)
            if d > worst:
                worst = d
            if not p.following and abs(p.breath_hz - 0.25) < 1e-9:
                lapse_amp = p.hr_now() - p.hr_bpm  # the lapse breathes with the own-rate response
    assert p.lapsed_breaths >= 3, p.lapsed_breaths
    assert worst < 0.1, (worst, want_lag)  # was 1.9 rad
    assert abs(lapse_amp) <= 0.5 * p.response(0.25)[0] + 1e-9, lapse_amp


def _hr_peak_after_inhale_end(p, pacer_hz, split, seconds):
    """Where in the breath (cycles after the end of inhale, -0.5..0.5) the modelled HR peaks."""
    best = -1e9
    at = 0.0
    fs = 20
    for i in range(int(seconds * fs)):
        t = i / fs
        x = t * pacer_hz
        p.sample(t, x - int(x), split)
        if t > seconds - 1.0 / pacer_hz:  # the last breath, settled
            hr = p.hr_now()
            if hr > best:
                best = hr
                at = p.breath_phase
    d = at - split
    return d - int(d + 0.5) if d >= 0 else d - int(d - 0.5)


def test_hr_peak_lags_the_end_of_inhale_as_the_resonance_model_says():
    import math
    f0 = 0.09
    for f in (0.075, 0.09, 0.11):
        p = _quiet(seed=4, resonance_hz=f0, adherence=1.0, q=2.5)
        lag = _hr_peak_after_inhale_end(p, f, 0.4, 60)
        want = math.atan(2.5 * (f / f0 - f0 / f)) / (2 * math.pi)
        assert abs(lag - want) < 0.03, (f, lag, want)


def test_swing_settles_over_seconds_after_a_rate_change():
    p = _quiet(seed=6, resonance_hz=0.09, adherence=1.0, rsa_bpm=20.0)
    _run(p, 60, fs=20, pacer_hz=0.15)
    off = p._amp
    t0 = p.t
    ph = t0 * 0.15
    for i in range(1, 8 * 20 + 1):  # 8 s at the resonance rate (the pacer's phase runs on): part of
        ph += 0.09 / 20.0           # the way to the resonance swing, not all of it
        p.sample(t0 + i / 20.0, ph - int(ph))
    mid = p._amp
    assert off < mid < 20.0, (off, mid)
    assert 0.35 < (mid - off) / (20.0 - off) < 0.8, (off, mid)


def test_deterministic_with_seed():
    gc.collect()
    a = person.Person(seed=7)
    b = person.Person(seed=7)
    c = person.Person(seed=8)
    same = True
    differ = False
    lo = 1.0
    hi = 0.0
    for i in range(1500):
        va = a.sample(i / 100.0)
        vb = b.sample(i / 100.0)
        vc = c.sample(i / 100.0)
        same = same and va == vb
        differ = differ or va != vc
        lo = va if va < lo else lo
        hi = va if va > hi else hi
    assert same and a.beats == b.beats
    assert differ
    assert 0.0 <= lo < hi <= 1.0


def test_ectopic_beats_come_early_and_pause():
    p = _quiet(seed=11, ectopic_rate=0.2)
    _run(p, 120)
    ibis = [p.beats[i] - p.beats[i - 1] for i in range(1, len(p.beats))]
    mean = sum(ibis) / len(ibis)
    early = [i for i in range(len(ibis) - 1) if ibis[i] < 0.75 * mean]
    assert len(early) >= 5, len(early)
    for i in early:
        assert ibis[i + 1] > 1.15 * mean, (ibis[i], ibis[i + 1], mean)


# -- issue 15: the physiology that varies between people, and the baroreflex loop

def _sum_samples(p, seconds, pacer_hz=None):
    acc = 0.0
    for i in range(int(seconds * 100)):
        t = i / 100.0
        ph = None
        if pacer_hz is not None:
            x = t * pacer_hz
            ph = x - int(x)
        acc += p.sample(t, ph, 0.4)
    return acc


def test_the_own_person_is_unchanged_by_the_new_parameters():
    # sums of 30 s of samples from person.py before issue 15 (CPython and the unix port alike):
    # the new parameters at their defaults leave today's person bit for bit
    gc.collect()
    p = person.Person(seed=5)
    assert abs(_sum_samples(p, 30) - 1289.0451279965876) < 1e-9
    assert len(p.beats) == 33 and abs(p.beats[-1] - 30.016080373055534) < 1e-12
    p = person.Person(seed=6, resonance_hz=0.08, hr_noise_bpm=1.0, jitter_s=0.005, phase_wander=0.05,
                      drift_bpm=2.0)
    assert abs(_sum_samples(p, 30, 0.1) - 1296.6989212369083) < 1e-9
    assert len(p.beats) == 32 and abs(p.beats[-1] - 29.399515578935606) < 1e-12
    assert p.r_beats == p.beats  # no pulse transit: the pulse peak is the beat


def test_transit_delays_the_pulse_peak_after_the_beat():
    p = _quiet(seed=3, transit_s=0.25, transit_slope_s=0.0, keep_beats=40)
    _run(p, 40)
    d = [b - r for b, r in zip(p.beats, p.r_beats)]
    assert len(d) >= 30 and max(abs(x - 0.25) for x in d) < 1e-9, d
    # shorter at a faster heart rate (the RSA's beats): transit_slope_s per bpm above hr_bpm
    p = _quiet(seed=3, transit_s=0.25, transit_slope_s=0.002, rsa_bpm=20.0, adherence=1.0, keep_beats=80)
    _run(p, 80, pacer_hz=0.09)
    pairs = []
    for i in range(1, len(p.r_beats)):
        pairs.append((60.0 / (p.r_beats[i] - p.r_beats[i - 1]), p.beats[i] - p.r_beats[i]))
    fast = [d for hr, d in pairs if hr > p.hr_bpm + 5]
    slow = [d for hr, d in pairs if hr < p.hr_bpm - 5]
    assert fast and slow and max(fast) < 0.245 < 0.255 < min(slow), (fast, slow)


def test_breathing_lags_the_pacer_by_breath_lag():
    f = 0.1
    p = _quiet(seed=2, adherence=1.0, breath_lag_s=0.8)
    _run(p, 60, pacer_hz=f)
    x = 60 * f - 1.0 / 50 * f  # the pacer's phase at the last sample
    d = (x - int(x)) - p.breath_phase
    d = d - int(d + 0.5) if d >= 0 else d - int(d - 0.5)
    assert abs(d - 0.8 * f) < 0.01, d


def test_phase_offset_moves_the_hr_peak_at_resonance():
    for deg in (-50.0, 0.0, 40.0):
        p = _quiet(seed=4, resonance_hz=0.09, adherence=1.0, q=2.5, phase_deg=deg)
        lag = _hr_peak_after_inhale_end(p, 0.09, 0.4, 60)
        assert abs(lag - deg / 360.0) < 0.02, (deg, lag)


def test_a_floor_of_non_resonant_rsa_flattens_the_curve():
    sharp = _quiet(seed=1, resonance_hz=0.09, q=1.0, rsa_bpm=10.0)
    flat = _quiet(seed=1, resonance_hz=0.09, q=1.0, rsa_bpm=10.0, floor_bpm=2.0, floor_deg=0.0)
    r_sharp = sharp.response(0.06)[0] / sharp.response(0.09)[0]
    r_flat = flat.response(0.06)[0] / flat.response(0.09)[0]
    assert r_sharp < r_flat < 1.0, (r_sharp, r_flat)
    assert abs(flat.response(0.09)[0] - 12.0) < 1e-9  # in phase at resonance: the swings add


# 30 s of the baroreflex person below on CPython (the unix port gives the same bits)
BARO_SUM = 1295.0325450678292
BARO_BEATS = 34
BARO_LAST = 29.967215444362775


def _baro(**kw):
    args = {"noise": 0.0, "artefact_rate": 0.0, "ectopic_rate": 0.0, "adherence": 1.0, "keep_beats": 400}
    for k in kw:
        args[k] = kw[k]
    return baroreflex.BaroreflexPerson(**args)


def _swing_at(p, pacer_hz, seconds):
    _run(p, seconds, fs=20, pacer_hz=pacer_hz)
    return _hr_swing(p.r_beats, seconds - 3.0 / pacer_hz)


def test_the_baroreflex_loop_resonates_where_its_delay_puts_it():
    # no resonance parameter: a longer delay of the vascular limb, a slower resonance
    rates = (0.07, 0.09, 0.12)
    best = []
    for delay in (3.0, 5.5):
        sw = []
        for f in rates:
            gc.collect()
            sw.append(_swing_at(_baro(seed=3, delay_s=delay, effector_s=1.0, loop_gain=1.9), f, 75))
        best.append(rates[sw.index(max(sw))])
        assert max(sw) > 1.3 * min(sw), (delay, sw)
    assert best[0] > best[1], best


def test_baroreflex_person_is_deterministic_per_seed_across_runtimes():
    gc.collect()
    a = _baro(seed=9, delay_s=4.0, hr_noise_bpm=1.0, bp_noise_mmhg=1.0, jitter_s=0.004, transit_s=0.2,
              noise=0.01, artefact_rate=0.2, ectopic_rate=0.01)
    acc = _sum_samples(a, 30, 0.09)
    b = _baro(seed=9, delay_s=4.0, hr_noise_bpm=1.0, bp_noise_mmhg=1.0, jitter_s=0.004, transit_s=0.2,
              noise=0.01, artefact_rate=0.2, ectopic_rate=0.01)
    assert _sum_samples(b, 30, 0.09) == acc and a.beats == b.beats
    # the value CPython gives: the unix port and wasm must give it too
    assert abs(acc - BARO_SUM) < 1e-6, repr(acc)
    assert len(a.beats) == BARO_BEATS and abs(a.beats[-1] - BARO_LAST) < 1e-9, (len(a.beats), repr(a.beats[-1]))


def test_person_spec_picks_the_model_and_refuses_unknown_keys():
    p = person.from_spec({"seed": 2.0, "model": 1.0, "delay": 4.0, "hr": 60.0})
    assert isinstance(p, baroreflex.BaroreflexPerson) and p.delay_s == 4.0 and p.hr_bpm == 60.0
    p = person.from_spec({"seed": 2.0, "resonance": 0.08, "phase": -30.0, "transit": 0.2})
    assert type(p) is person.Person and p.transit_s == 0.2 and abs(p.phase_rad + 0.5235987756) < 1e-9
    for bad in ({"model": 7.0}, {"delay": 4.0}, {"nosuch": 1.0}):
        try:
            person.from_spec(bad)
        except ValueError as e:
            assert "VAGAL_VIRTUAL_PERSON" in str(e), e
        else:
            assert False, bad
