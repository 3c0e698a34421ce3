"""Coherence: resampling, a pure 0.1 Hz oscillation vs noise, fixed-point DFT vs float, no allocation.

Plain functions and bare asserts: these also run on the MicroPython unix and WebAssembly ports.
"""

import math

from portable import no_alloc
from vagal import coherence as C
from vagal.coherence import Coherence
from vagal.ticks import ticks_add


def _feed(c, hr_of_t, seconds, t0=1000, ibi=800000):
    """Points every `ibi` us (beat midpoints) with HR x10 given by hr_of_t(seconds)."""
    t = t0
    s = 0.0
    while s < seconds:
        c.point(t, int(hr_of_t(s)))
        t = ticks_add(t, ibi)
        s += ibi / 1e6
    return t


def test_resampling_interpolates_linearly_at_2_hz():
    c = Coherence()
    c.point(0, 600)
    c.point(2000000, 800)  # 2 s later: grid points at 0, 0.5, 1.0, 1.5, 2.0 s
    assert c.filled == 5
    assert list(c._hr[:5]) == [600, 650, 700, 750, 800]


def test_pure_0_1_hz_oscillation_is_coherent():
    c = Coherence()
    _feed(c, lambda s: 700 + 80 * math.sin(2 * math.pi * 0.1 * s), 70)
    coh = c.compute_now()
    assert coh >= 1000, coh  # ratio >= 10
    assert abs(c.peak_mhz - 100) <= 8, c.peak_mhz


def test_noise_is_not_coherent():
    c = Coherence()
    x = [12345]

    def noisy(s):
        x[0] = (x[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return 700 + (x[0] >> 16) % 121 - 60

    _feed(c, noisy, 70)
    coh = c.compute_now()
    assert 0 <= coh < 150, coh


def test_fixed_point_dft_matches_float_reference():
    c = Coherence()
    _feed(c, lambda s: 650 + 50 * math.sin(2 * math.pi * 0.11 * s + 0.3)
          + 20 * math.sin(2 * math.pi * 0.05 * s), 70)
    c.compute_now()
    x = c._x
    ref = []
    total_abs = 0
    for k in range(C.N):
        total_abs += abs(x[k])
    for b in range(C.NBINS):
        m = C.BIN_LO + b
        re = 0.0
        im = 0.0
        for k in range(C.N):
            a = 2 * math.pi * m * k / C.PAD
            re += x[k] * math.cos(a)
            im -= x[k] * math.sin(a)
        ref.append(re * re + im * im)
        # table rounding: each product is off by at most |x| * 0.5 / 4096
        assert abs(c._re[b] - re * 4096) <= total_abs, (b, c._re[b], re * 4096)
        assert abs(c._im[b] - im * 4096) <= total_abs, (b, c._im[b], im * 4096)
    best = 0
    for b in range(C.NBINS):
        if ref[b] > ref[best]:
            best = b
    assert C.BIN_LO + best == c.peak_bin
    lo = max(0, best - C.PEAK_HALF)
    hi = min(C.NBINS - 1, best + C.PEAK_HALF)
    peak = sum(ref[lo:hi + 1])
    want = peak * 100 / (sum(ref) - peak)
    assert abs(c.coherence_x100 - want) <= 0.03 * want + 2, (c.coherence_x100, want)


def test_gaps_make_coherence_invalid():
    c = Coherence()
    t = _feed(c, lambda s: 700 + 80 * math.sin(2 * math.pi * 0.1 * s), 30)
    c.gap()
    t = ticks_add(t, 10000000)  # 10 s without a good beat
    c.point(t, 700)
    _feed(c, lambda s: 700 + 80 * math.sin(2 * math.pi * 0.1 * s), 30, t0=t)
    assert c.compute_now() == C.INVALID


def test_update_every_5_s_in_bounded_steps_without_allocation():
    c = Coherence()
    t = _feed(c, lambda s: 700 + 80 * math.sin(2 * math.pi * 0.1 * s), 66)
    now = t
    calls = 0
    results = 0
    for i in range(600):  # 12 s of 20 ms updates
        now = ticks_add(now, 20000)
        if no_alloc(c.update, now):
            results += 1
        calls += 1
        if i % 40 == 0:
            no_alloc(c.point, ticks_add(now, -300000), 700)
    assert results == 3, results  # at 0 s, 5 s and 10 s
    assert c.coherence_x100 > 300


def test_a_pulse_gone_longer_than_the_window_keeps_the_ring_in_range_and_invalid():
    # a minute's stall of the sampling loop (or a finger off) leaves 70 s between two good beats:
    # longer than the 64 s window. The grid restarted there with the whole span as its one step, so
    # the point pushed was 700 + 20 * 70000 (an OverflowError in the int16 ring on CPython, -25092
    # on MicroPython), counted good. The window is all gap, as after a shorter one
    c = Coherence()
    t = _feed(c, lambda s: 700 + 80 * math.sin(2 * math.pi * 0.1 * s), 70)
    assert c.compute_now() != C.INVALID
    c.gap()
    t = ticks_add(t, 70000000)
    no_alloc(c.point, t, 720)
    for k in range(C.N):
        assert 600 <= c._hr[k] <= 800, (k, c._hr[k])
    _feed(c, lambda s: 720, 30, t0=ticks_add(t, 800000))
    assert c.compute_now() == C.INVALID


def test_a_finger_off_for_ten_minutes_gives_no_stale_ratio_and_then_new_points():
    # the last good beat's tick was kept until the next one: past 2**29 us (9 min) ticks_diff made the
    # new beats look older than it, so they were all ignored for up to 9 more minutes, while the
    # ratio of the window before the loss was reported every 5 s as if current
    c = Coherence()
    t = _feed(c, lambda s: 700 + 80 * math.sin(2 * math.pi * 0.1 * s), 70)
    c.gap()
    for i in range(600):  # 10 min without a good beat, the meter updating (each second here)
        t = ticks_add(t, 1000000)
        no_alloc(c.update, t)
        if i == 120:
            assert c.coherence_x100 == C.INVALID, c.coherence_x100  # a minute on: the window is gap
    _feed(c, lambda s: 720 + 40 * math.sin(2 * math.pi * 0.1 * s), 80, t0=t)
    new = 0
    for k in range(C.N):
        if c._hr[k] >= 680:
            new += 1
    assert new == C.N, new
    assert c.compute_now() != C.INVALID
