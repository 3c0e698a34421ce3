"""Resonance meter (vagal.resonance) on synthetic beats; fixed-point helpers; no allocation.

Plain functions and bare asserts: these also run on the MicroPython unix and WebAssembly ports.
"""

import math

from portable import assert_raises, no_alloc
from vagal import resonance as R
from vagal.pacer import PHASE_ONE, Pacer
from vagal.resonance import ResonanceMeter
from vagal.ticks import ticks_add, ticks_diff


def test_atan2_deg_matches_math_within_1_degree():
    for y in range(-50, 51, 7):
        for x in range(-50, 51, 9):
            if x == 0 and y == 0:
                continue
            want = math.degrees(math.atan2(y * 997, x * 1013))
            got = R.atan2_deg(y * 997, x * 1013)
            d = (got - want + 180) % 360 - 180
            assert abs(d) <= 1, (x, y, got, want)


def _breathe(rate_mbpm, seconds, hr0, swing_bpm, lag_deg, reject_at=-1, meter=None, delay_us=0):
    """Beats whose HR = hr0 + swing/2 * cos(pacer angle - end of inhale - lag); the real Pacer.
    Each beat reaches the meter delay_us after its peak, as the detector reports it."""
    late = []
    p = Pacer(rate_mbpm=rate_mbpm)
    m = meter if meter is not None else ResonanceMeter()
    t = 1000
    p.start(t)
    cardiac = 0.0
    last_beat = None
    elapsed = 0
    results = []
    beats = 0
    while elapsed < seconds * 1000000:
        t = ticks_add(t, 20000)
        elapsed += 20000
        p.update(t)
        while late and elapsed >= late[0][0]:
            _, tb, ibi, ok = late.pop(0)
            m.beat(tb, ibi, ok)
        m.pace(t, p)
        if m.seq != len(results):
            results.append((m.valid, m.swing_x10, m.fit_x10, m.phase_deg))
        a = 2 * math.pi * (p.phase - p.split) / PHASE_ONE - math.radians(lag_deg)
        hr = hr0 + swing_bpm * 0.5 * math.cos(a)
        cardiac += hr / 60.0 * 0.02
        if cardiac >= 1.0:
            cardiac -= 1.0
            if last_beat is not None:
                ibi = ticks_diff(t, last_beat)
                beats += 1
                late.append((elapsed + delay_us, t, ibi, beats != reject_at))
            last_beat = t
    return results


def test_swing_and_phase_of_a_known_sinusoidal_heart_rate():
    res = _breathe(6000, 75, 70.0, 10.0, 30)
    good = [r for r in res[1:] if r[0]]
    assert len(good) >= 5, res
    for valid, swing, fit, phase in good:
        assert 85 <= swing <= 105, swing  # beats sample the peak and trough closely: 10 bpm
        assert 85 <= fit <= 110, fit
        assert abs(phase - 30) <= 12, phase


def test_beats_reported_late_at_a_slow_heart_rate_still_count():
    # at 44 bpm a beat whose interval midpoint is inside a breath can peak 0.68 s after the breath
    # ends, and the detector may report it 0.5 s after that: the breath must wait for it
    on_time = _breathe(6000, 130, 44.0, 8.0, 0)
    late = _breathe(6000, 130, 44.0, 8.0, 0, delay_us=500000)
    assert len(on_time) >= 10 and len(late) == len(on_time), (on_time, late)
    assert late == on_time, (on_time, late)


def test_breath_with_a_rejected_beat_is_ignored():
    res = _breathe(6000, 45, 65.0, 8.0, 0, reject_at=25)  # beat 25 (~24 s) is in the third breath
    assert res[0][0] and res[1][0] and not res[2][0] and res[3][0], res


def test_no_heart_rate_oscillation_is_not_entrained():
    m = ResonanceMeter()
    _breathe(5500, 80, 60.0, 0.0, 0, meter=m)
    assert m.entrained == 0 and m.fit_x10 < R.FIT_MIN_X10
    m2 = ResonanceMeter()
    _breathe(5500, 80, 60.0, 12.0, -20, meter=m2)
    assert m2.entrained == 1 and m2.plv_x100 > 90


def test_beat_and_pace_do_not_allocate():
    m = ResonanceMeter()
    p = Pacer(rate_mbpm=6000)
    t = 5000
    p.start(t)
    for i in range(4000):  # 80 s: breaths judged, coherence windows computed
        t = ticks_add(t, 20000)
        no_alloc(p.update, t)
        no_alloc(m.pace, t, p)
        if i % 43 == 0:
            no_alloc(m.beat, t, 860000, True)
    assert m.seq >= 6
    no_alloc(m.signal, False)
    no_alloc(m.beat, t, 0, False)
