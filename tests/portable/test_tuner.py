"""Closed-loop tuner (vagal.tuner): relative to the person's own phase, by the swing alone, speed limit, lead-in, noise.

Plain functions and bare asserts: these also run on the MicroPython unix and WebAssembly ports.
"""

import math

from portable import assert_raises, no_alloc
from fake_meter import FakeMeter as _Meter
from vagal.ticks import ticks_add
from vagal.tuner import Tuner


class _Lcg:
    """Deterministic noise, the same on every port."""

    def __init__(self, seed):
        self.s = seed

    def deg(self, sd):
        """Roughly normal, sd degrees (sum of 3 uniforms)."""
        t = 0
        for _ in range(3):
            self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
            t += self.s % 2001 - 1000
        return t * sd // 1000


def _phase(rate_mbpm, fr, q, phase0=0):
    x = q * (rate_mbpm / fr - fr / rate_mbpm)
    return int(math.degrees(math.atan(x))) + phase0


def _swing(rate_mbpm, fr, q):
    x = q * (rate_mbpm / fr - fr / rate_mbpm)
    return int(150 / math.sqrt(1 + x * x))


def _run(tuner, m, minutes, fr, q=1.6, noise_deg=0, seed=1, lead_phase=None, phase0=0):
    """Breaths at the tuner's rate for `minutes`; -> (largest single move of the rate, rates).
    lead_phase: the phase of the breaths that begin in the first 30 s (a person not yet following);
    phase0: the person's HR phase at resonance (the swing peaks at fr whatever it is)."""
    rng = _Lcg(seed)
    t = 0
    elapsed_us = 0
    tuner.start(t)
    worst = 0
    last = tuner.rate_mbpm
    rates = []
    while elapsed_us < minutes * 60000000:
        period = 60000000000 // tuner.rate_mbpm
        early = elapsed_us < 30000000
        elapsed_us += period
        start = t
        t = ticks_add(t, period)
        ph = _phase(tuner.rate_mbpm, fr, q, phase0) + rng.deg(noise_deg)
        m.breath(start, _swing(tuner.rate_mbpm, fr, q), lead_phase if early and lead_phase is not None else ph)
        no_alloc(tuner.update, t)
        d = tuner.rate_mbpm - last
        if d < 0:
            d = -d
        if d > worst:
            worst = d
        last = tuner.rate_mbpm
        rates.append(tuner.rate_mbpm)
    return worst, rates


def _breaths_until_within(rates, fr, tol=250):
    for i in range(len(rates)):
        if -tol <= rates[i] - fr <= tol:
            return i
    return len(rates)


def test_the_person_s_own_phase_is_the_target_not_zero():
    # HR peak 50 deg before the end of inhale at resonance (the band-pass model: -54).
    # The old tuner steered to phase 0: 0.5-1 breaths/min too fast, parked on its range end.
    for phase0 in (-50, 40):
        m = _Meter()
        tu = Tuner(m, 4800, resonance_phase_deg=phase0)
        _run(tu, m, 10, 5800, q=2.0, phase0=phase0)
        assert abs(tu.center_mbpm - 5800) <= 60, (phase0, tu.center_mbpm)
        assert tu.lo < tu.center_mbpm < tu.hi


def test_without_a_reference_the_swing_alone_is_followed():
    # no stored phase (never assessed): perturb-and-fit on the swing; the phase (here +60 deg at
    # resonance, which the old rule read as "far above resonance") plays no part
    for fr, start in ((5800, 4800), (5000, 6000)):
        m = _Meter()
        tu = Tuner(m, start)
        _run(tu, m, 15, fr, q=2.0, phase0=60)
        assert abs(tu.center_mbpm - fr) <= 150, (fr, tu.center_mbpm)
    m = _Meter()
    tu = Tuner(m, 5000, resonance_phase_deg=-999)  # the settings' "not measured"
    assert tu.phase_ref == -999


def test_the_range_is_wide_enough_that_its_end_cannot_look_right():
    # +-1.5 breaths/min (within 4.0-7.0): a test that starts 1 breath/min away never has the
    # resonance on the range end
    tu = Tuner(_Meter(), 5500)
    assert (tu.lo, tu.hi) == (4000, 7000)
    tu = Tuner(_Meter(), 5000)
    assert (tu.lo, tu.hi) == (4000, 6500)


def test_low_sensitivity_person_below_resonance_is_reached():
    # Q 1.5 at 6.4 breaths/min: 27 deg of phase per breath/min, the slowest case of the population.
    # Noiseless (a guard, not an improvement: the Kesten gain took 19 breaths and ended 31 short):
    # the line takes 18 breaths, the speed limit's pace after the lead-in, and ends 40 mbpm short
    # (the sin/cos table's 1.4 deg steps and the prior slope near a flat phase)
    m = _Meter()
    tu = Tuner(m, 5400, resonance_phase_deg=0)
    worst, rates = _run(tu, m, 10, 6400, q=1.5)
    assert abs(tu.center_mbpm - 6400) <= 50, tu.center_mbpm
    assert _breaths_until_within(rates, 6400) <= 20, rates


def test_speed_limit_binds_far_from_resonance():
    m = _Meter()
    tu = Tuner(m, 4500, speed_mbpm_min=250, resonance_phase_deg=0)
    worst, rates = _run(tu, m, 4, 5500, q=3.0)
    # 250 mbpm per minute of elapsed time: at most 1000 in 4 minutes; the lead-in (30 s) and 4
    # breaths of 12-13 s pass before the first move; the steep phase keeps every move at the limit
    assert 750 <= tu.center_mbpm - 4500 <= 1000, tu.center_mbpm
    # one move covers at most the time since the previous one, and at most one minute
    assert worst <= 250, worst


def test_breaths_of_the_lead_in_are_not_used():
    # The first 30 s: the person only starts to follow the light and the HR response of their own
    # fast breathing lingers (a lag of ~75 deg: "above resonance"). Resonance is 1/min above the
    # start: the first move must go up, not down on those breaths.
    m = _Meter()
    tu = Tuner(m, 5000, resonance_phase_deg=0)
    worst, rates = _run(tu, m, 2, 6000, q=2.0, lead_phase=75)
    first = [r for r in rates if r != 5000]
    assert first and first[0] > 5000, rates
    m2 = _Meter()
    no_lead = Tuner(m2, 5000, lead_in_s=0, resonance_phase_deg=0)
    worst, rates = _run(no_lead, m2, 2, 6000, q=2.0, lead_phase=75)
    first = [r for r in rates if r != 5000]
    assert first and first[0] < 5000, rates  # what the lead-in prevents


def test_the_line_target_keeps_its_stride_through_noise():
    # 15 deg of noise on each breath near resonance: a gain that shrank on every reversal
    # (Kesten) stalled 0.3-0.5 short when early blocks reversed; the line's target keeps averaging
    m = _Meter()
    tu = Tuner(m, 5000, resonance_phase_deg=-30)
    _run(tu, m, 10, 5900, q=1.6, noise_deg=15, seed=3, phase0=-30)
    assert abs(tu.center_mbpm - 5900) <= 150, tu.center_mbpm
    assert tu._bn >= 8  # blocks of 4 breaths over 10 minutes (older ones fade after 16)


def test_noisy_low_sensitivity_people_are_reached():
    # per-breath phase noise of 30 deg (a 4-breath mean: ~15 deg, as on the virtual population)
    # around the least sensitive resonance (Q 1.5 at 6.3/min, HR phase +20 deg there), started
    # 1 breath/min below: 24 runs. Within +-1 breath/min of the start (the old range, whose end sat
    # on the resonance): 22 of 24 within 0.25, mean error 72 mbpm; within +-1.5, where the range
    # end no longer helps: 20, 137 mbpm (a guard: the noise floor of the phase line)
    out = []
    for seed in range(1, 25):
        m = _Meter()
        tu = Tuner(m, 5300, resonance_phase_deg=20)
        _run(tu, m, 10, 6300, q=1.5, noise_deg=30, seed=seed, phase0=20)
        out.append(abs(tu.center_mbpm - 6300))
    within = len([e for e in out if e <= 250])
    assert within >= 20 and sum(out) // len(out) <= 150, out


def test_breaths_after_ten_minutes_without_a_valid_one_are_used():
    # the block's start tick was kept until a block was complete: after 2**29 us (9 min) without
    # valid breaths (a finger off at the bedside) ticks_diff made every new breath look older than
    # the block, so tuning stood still for up to 9 more minutes
    m = _Meter()
    tuner = Tuner(m, 6000, resonance_phase_deg=0)
    t = 0
    tuner.start(t)
    for _ in range(60):  # 10 min of breaths with poor signal
        start = t
        t = ticks_add(t, 10000000)
        m.breath(start, 100, 40, valid=False)
        no_alloc(tuner.update, t)
    for _ in range(12):  # 2 min of valid breaths, lagging: above resonance
        start = t
        t = ticks_add(t, 10000000)
        m.breath(start, 100, 40)
        no_alloc(tuner.update, t)
    assert tuner.steps >= 1 and tuner.rate_mbpm < 6000, (tuner.steps, tuner.rate_mbpm)


def test_tuner_stays_in_bounds_and_can_be_switched_off():
    m = _Meter()
    tu = Tuner(m, 6800, resonance_phase_deg=0)
    _run(tu, m, 20, 4200, q=2.0)  # resonance beyond the allowed span
    assert tu.center_mbpm == 5300, tu.center_mbpm
    m2 = _Meter()
    off = Tuner(m2, 6000)
    off.start(0)
    off.set_enabled(False, 0)
    for i in range(30):
        m2.breath(i * 10000000, 100, 60)
        off.update(ticks_add(i * 10000000, 10000000))
    assert off.rate_mbpm == 6000 and off.center_mbpm == 6000
    assert_raises(ValueError, Tuner, m2, 8000)


def test_poor_signal_holds_the_rate_still():
    for ref in (0, -999):
        m = _Meter()
        tu = Tuner(m, 5500, resonance_phase_deg=ref)
        t = 0
        tu.start(t)
        first = tu.rate_mbpm
        for _ in range(60):
            start = t
            t = ticks_add(t, 10000000)
            m.breath(start, 100, 50, valid=False)
            no_alloc(tu.update, t)
        assert tu.steps == 0 and tu.rate_mbpm == first and tu.center_mbpm == 5500
