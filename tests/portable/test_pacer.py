"""Pacer: exact phase integration from ticks, continuity on rate change, waveform, gamma, haptics.

Plain functions and bare asserts: these also run on the MicroPython unix and WebAssembly ports.
"""

from vagal import pacer as PM
from vagal.pacer import PHASE_ONE, Pacer
from vagal.ticks import TICKS_MAX, ticks_add

try:
    import micropython
except ImportError:
    micropython = None

_NUM = 8192
_DEN = 29296875  # phase units per us = rate_mbpm * _NUM / _DEN (2**24 / 60e9 reduced)


def _expected_phase(elapsed_us, rate_mbpm):
    return elapsed_us * rate_mbpm * _NUM // _DEN


def _phase_per_ms(rate_mbpm):
    return rate_mbpm * _NUM * 1000 // _DEN


class _Steps:
    """Irregular update intervals (us), 1..60000, from a tiny LCG; iterates without a big list."""

    def __init__(self, n, seed):
        self.n = n
        self.x = seed

    def __iter__(self):
        return self

    def __next__(self):
        if self.n <= 0:
            raise StopIteration
        self.n -= 1
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return 1 + (self.x >> 8) % 60000


def _steps(n, seed):
    return _Steps(n, seed)


def test_phase_matches_the_integral_over_irregular_steps():
    for rate in (3000, 6000, 5500, 12000, 4737):
        p = Pacer(rate_mbpm=rate)
        t = 123456
        p.start(t)
        elapsed = 0
        for dt in _steps(3000, rate):
            t = ticks_add(t, dt)
            elapsed += dt
            p.update(t)
        want = _expected_phase(elapsed, rate)
        err = p.elapsed_phase() - want
        # exact by construction; the contract is < 1 ms of breath
        assert err == 0, (rate, err)
        assert abs(err) < _phase_per_ms(rate)
        assert p.breaths == want // PHASE_ONE


def test_eight_hours_stay_within_1_ms():
    p = Pacer(rate_mbpm=5500)
    t = TICKS_MAX - 2000000
    p.start(t)
    elapsed = 0
    steps = _steps(1 << 30, 7)
    while elapsed < 8 * 3600 * 1000000:
        dt = next(steps) * 40 + 17  # ~1.2 s average, irregular
        t = ticks_add(t, dt)
        elapsed += dt
        p.update(t)
    err = p.elapsed_phase() - _expected_phase(elapsed, 5500)
    assert abs(err) < _phase_per_ms(5500)
    assert p.breaths == _expected_phase(elapsed, 5500) // PHASE_ONE


def test_crossing_the_ticks_wrap_changes_nothing():
    a = Pacer(rate_mbpm=6500)
    b = Pacer(rate_mbpm=6500)
    ta = TICKS_MAX - 300000  # wraps after ~0.3 s
    tb = 1000
    a.start(ta)
    b.start(tb)
    for dt in _steps(500, 3):
        ta = ticks_add(ta, dt)
        tb = ticks_add(tb, dt)
        a.update(ta)
        b.update(tb)
        assert a.phase == b.phase and a.led == b.led and a.motor == b.motor
    if ticks_add(TICKS_MAX, 1) == 0:  # 64-bit unix port: native ticks wrap at 2**62, not 2**30
        assert ta < TICKS_MAX - 300000  # really wrapped
    assert a.breaths >= 1


def test_rate_change_keeps_the_light_continuous():
    for ramp in (False, True):
        p = Pacer(rate_mbpm=6000)
        t = 0
        p.start(t)
        for _ in range(137):
            t = ticks_add(t, 20000)
            p.update(t)
        phase, led = p.phase, p.led
        p.set_rate(12000, ramp)
        p.update(t)  # no time passed: nothing moves
        assert p.phase == phase and p.led == led
        worst = 0
        prev = p.led
        for _ in range(1000):
            t = ticks_add(t, 20000)
            p.update(t)
            d = abs(p.led - prev)
            worst = d if d > worst else worst
            prev = p.led
        # 20 ms of the fastest breath (5 s, 2 s inhale): a raised cosine moves < 2 % of full scale
        assert worst < 65535 * 3 // 100, (ramp, worst)


def test_ratio_change_waits_for_the_next_breath():
    p = Pacer(rate_mbpm=6000, inhale_pct=40, haptics=False)
    t = 0
    p.start(t)
    for _ in range(50):  # 1 s into the 4 s inhale
        t = ticks_add(t, 20000)
        p.update(t)
    led = p.led
    p.set_ratio(20)  # the turn would now be at 2 s
    p.update(t)
    assert p.led == led and p.inhaling
    for _ in range(100):  # 3 s: still the old 4 s inhale
        t = ticks_add(t, 20000)
        p.update(t)
    assert p.inhaling
    while p.breaths == 0:
        t = ticks_add(t, 20000)
        p.update(t)
    for _ in range(105):  # 2.1 s into the new breath: exhaling already
        t = ticks_add(t, 20000)
        p.update(t)
    assert not p.inhaling and p.split == PHASE_ONE * 20 // 100


def test_rate_ramps_at_a_fixed_speed_and_arrives():
    p = Pacer(rate_mbpm=6000)
    t = 0
    p.start(t)
    p.set_rate(4500)
    for _ in range(50):
        t = ticks_add(t, 20000)
        p.update(t)
    assert p.rate_mbpm == 6000 - 1000000 // PM.RAMP_US_PER_MBPM  # after exactly one second
    for _ in range(200):
        t = ticks_add(t, 20000)
        p.update(t)
    assert p.rate_mbpm == 4500 and p.target_mbpm == 4500


def test_out_of_range_settings_are_refused():
    p = Pacer()
    for bad in (2999, 12001, "6000", 6000.0):
        try:
            p.set_rate(bad)
            assert False, bad
        except ValueError:
            pass
    for call, bad in ((p.set_ratio, 19), (p.set_ratio, 81), (p.set_brightness, 101),
                      (p.set_brightness, -1)):
        try:
            call(bad)
            assert False, bad
        except ValueError:
            pass
    assert p.rate_mbpm == 6000


def test_gamma_and_waveform_luts():
    prev = -1
    for i in range(len(PM.GAMMA)):
        assert PM.GAMMA[i] >= prev
        prev = PM.GAMMA[i]
    assert PM.gamma(0) == 0 and PM.gamma(65535) >= 65500
    # L* 50 is about 18 % luminance: the perceptual midpoint is far below half duty
    assert 10000 < PM.gamma(32768) < 14000
    prev = -1
    for t in range(0, 4097, 7):
        assert PM.rise(t) >= prev
        prev = PM.rise(t)
        assert abs(PM.rise(t) + PM.rise(4096 - t) - 65535) <= 2
    assert PM.rise(0) == 0 and PM.rise(4096) == 65535


def test_waveform_follows_the_breath():
    p = Pacer(rate_mbpm=6000, inhale_pct=40, brightness=100, haptics=False)
    t = 0
    p.start(t)
    assert p.led == 0 and p.inhaling
    # 10 s breath: inhale 4 s (top at 4 s), exhale 6 s
    levels = []
    for _ in range(500):
        t = ticks_add(t, 20000)
        p.update(t)
        levels.append((p.level, p.inhaling))
    top = max(levels)[0]
    assert top > 65000
    i_top = [lv[0] for lv in levels].index(top)
    assert 195 <= i_top <= 201  # ~4 s
    assert levels[100][1] and not levels[300][1]
    assert levels[-1][0] < 200  # back to dark at the end of the breath
    dim = Pacer(rate_mbpm=6000, brightness=10, haptics=False)
    dim.start(0)
    dim.update(4000000)
    assert 0 < dim.led < 2000  # bedside: L* 10 is about 1 % duty


def _motor_edges(p, t, duration_us, step_us):
    """Rising edges of the motor drive and the phases where they happened."""
    edges = []
    prev = p.motor
    end = duration_us // step_us
    for _ in range(end):
        t = ticks_add(t, step_us)
        p.update(t)
        if p.motor and not prev:
            edges.append(p.phase)
        prev = p.motor
    return edges, t


def test_haptic_cues_mark_each_turn_with_distinct_patterns():
    p = Pacer(rate_mbpm=6000, inhale_pct=40, haptics=True, haptic_pct=50)
    t = 0
    p.start(t)
    assert p.motor == 65535 // 2  # a session starts with the inhale cue
    edges, t = _motor_edges(p, t, 20050000, 5000)
    split = PHASE_ONE * 40 // 100
    near_exhale = [e for e in edges if split <= e < split + PHASE_ONE // 50]
    near_inhale = [e for e in edges if e < PHASE_ONE // 50]
    assert len(near_exhale) == 4  # two breaths x two pulses
    assert len(near_inhale) == 2  # the second and third breath start with one pulse each
    assert len(edges) == 6
    off = Pacer(rate_mbpm=6000, haptics=False)
    off.start(0)
    edges, t = _motor_edges(off, 0, 20000000, 5000)
    assert edges == [] and off.motor == 0
    zero = Pacer(rate_mbpm=6000, haptics=True, haptic_pct=0)
    zero.start(0)
    edges, t = _motor_edges(zero, 0, 20000000, 5000)
    assert edges == []


def _run_updates(p, t, n):
    for i in range(n):
        t = ticks_add(t, 19000 + (i & 7) * 500)
        p.update(t)
    return t


def test_update_allocates_nothing():
    if micropython is None:
        return  # CPython has no heap lock; the check is for the MicroPython ports
    p = Pacer(rate_mbpm=7000, haptics=True)
    t = TICKS_MAX - 100000
    p.start(t)
    p.set_rate(3500)
    micropython.heap_lock()
    try:
        t = _run_updates(p, t, 2000)
    finally:
        micropython.heap_unlock()
    assert p.breaths >= 2 and p.cues >= 5


def _advance_long_stall(p, t):
    for dt in (536870911, 65535, 65536, 65537, 1, 131072, 300000000):  # up to ticks_diff's maximum
        t = ticks_add(t, dt)
        p.update(t)
    return t


def test_long_stalls_stay_exact_and_allocate_nothing():
    """A stalled update (up to ticks_diff's 2**29 - 1 us) is integrated in small-int chunks: exact,
    at most one turn of the breath per chunk, and nothing allocated on a 31-bit small-int port."""
    elapsed = 536870911 + 65535 + 65536 + 65537 + 1 + 131072 + 300000000
    for rate in (3000, 12000, 6999):
        p = Pacer(rate_mbpm=rate, haptics=False)
        t = TICKS_MAX - 5
        p.start(t)
        if micropython is not None:
            micropython.heap_lock()
        try:
            _advance_long_stall(p, t)
        finally:
            if micropython is not None:
                micropython.heap_unlock()
        assert p.elapsed_phase() == _expected_phase(elapsed, rate), rate
        assert 0 <= p.phase < PHASE_ONE and p._frac < _DEN
