"""vagal.ticks on every runtime: arithmetic that wraps at 2**30 and a TickClock that never drifts.

The board's ticks_us wraps every 17.9 minutes; a session lasts hours, so every wrap case below
happens in real use. The reference results are computed with plain (big-int) Python arithmetic.
"""

import sys

from portable import assert_raises, no_alloc
from vagal.ticks import TICKS_MAX, TICKS_PERIOD, TickClock, ticks_add, ticks_diff

HALF = TICKS_PERIOD // 2
RATES = (125, 250, 300, 1000)
# The wasm port runs ~10x slower than the unix port: there a quarter of the steps (each run
# still crosses the wrap) keeps a test under 2 s; CPython and the unix port run the full million.
LONG_RUN_STEPS = 250000 if sys.platform == "webassembly" else 1000000


def _ref_diff(a, b):
    d = (a - b) % TICKS_PERIOD
    if d >= HALF:
        d -= TICKS_PERIOD
    return d


def test_the_period_is_2_pow_30_as_on_the_board():
    assert TICKS_PERIOD == 1 << 30
    assert TICKS_MAX == (1 << 30) - 1


def test_ticks_add_wraps_forward():
    assert ticks_add(TICKS_MAX, 1) == 0
    assert ticks_add(TICKS_MAX - 5, 10) == 4
    assert ticks_add(TICKS_MAX, HALF - 1) == HALF - 2
    assert ticks_add(HALF + 1, HALF - 1) == 0


def test_ticks_add_wraps_backward():
    assert ticks_add(0, -1) == TICKS_MAX
    assert ticks_add(3, -10) == TICKS_MAX - 6
    assert ticks_add(0, -HALF + 1) == HALF + 1
    assert ticks_add(HALF - 2, -HALF + 1) == TICKS_MAX


def test_ticks_add_refuses_half_a_period_or_more():
    # MicroPython's C ticks_add raises here (the result could not be told apart by ticks_diff);
    # the CPython fallback must refuse the same deltas, or a replay passes where the board fails.
    for delta in (HALF, -HALF, HALF + 1, -HALF - 1, TICKS_MAX):
        e = assert_raises(OverflowError, ticks_add, 12345, delta)
        assert "overflow" in str(e), delta


def test_ticks_diff_across_the_wrap_both_directions():
    assert ticks_diff(0, TICKS_MAX) == 1
    assert ticks_diff(TICKS_MAX, 0) == -1
    assert ticks_diff(4, TICKS_MAX - 5) == 10
    assert ticks_diff(TICKS_MAX - 5, 4) == -10


def test_ticks_diff_near_the_half_period():
    # Differences up to 2**29 - 1 either way survive any base, including bases at the wrap;
    # exactly half a period is ambiguous and reads as -2**29 (MicroPython's C ticks_diff).
    for base in (0, 1, 12345, HALF - 1, HALF, HALF + 1, TICKS_MAX - 1, TICKS_MAX):
        for d in (HALF - 1, HALF - 2, -HALF + 1, -HALF + 2, 1, -1, 0):
            assert ticks_diff(ticks_add(base, d), base) == d, (base, d)
        half_later = ticks_add(ticks_add(base, HALF - 1), 1)
        assert ticks_diff(half_later, base) == -HALF, base
        assert ticks_diff(base, half_later) == -HALF, base
        assert ticks_diff(ticks_add(half_later, 1), base) == -HALF + 1, base


def test_ticks_match_big_int_arithmetic_on_scattered_values():
    x = 12345
    for _ in range(2000):
        x = (x * 1103515245 + 12345) % TICKS_PERIOD
        a = x
        x = (x * 1103515245 + 12345) % TICKS_PERIOD
        b = x
        d = _ref_diff(a, b)
        assert ticks_diff(a, b) == d, (a, b)
        if d != -HALF:
            assert ticks_add(b, d) == a, (a, b)
        delta = b - HALF if b else 1 - HALF  # any delta in (-2**29, 2**29)
        assert ticks_add(a, delta) == (a + delta) % TICKS_PERIOD, (a, delta)


def _arith_at_the_wrap(a, b):
    d = ticks_diff(a, b)
    back = ticks_add(a, -d)
    return ticks_diff(back, b) + ticks_diff(b, a) + d


def test_ticks_arithmetic_allocates_nothing():
    assert no_alloc(_arith_at_the_wrap, 4, TICKS_MAX - 5) == 0
    assert no_alloc(_arith_at_the_wrap, TICKS_MAX, HALF) == 0
    assert no_alloc(ticks_add, TICKS_MAX, HALF - 1) == HALF - 2
    assert no_alloc(ticks_diff, HALF - 1, TICKS_MAX) == -HALF
    assert no_alloc(ticks_diff, HALF - 2, TICKS_MAX) == HALF - 1


def _check_one_second(fs, start):
    clock = TickClock(fs, start=start)
    step = 1000000 // fs
    prev = clock.now
    assert prev == start
    k = 0
    while k < fs:
        now = clock.tick()
        k += 1
        inc = ticks_diff(now, prev)
        assert inc == step or inc == step + 1, (fs, k, inc)
        # After k steps exactly floor(k * 1e6 / fs) us have passed: no rounding drift.
        assert ticks_diff(now, start) == k * 1000000 // fs, (fs, start, k)
        prev = now
    assert ticks_diff(clock.now, start) == 1000000
    assert clock.now == (start + 1000000) % TICKS_PERIOD


def test_tick_clock_advances_exactly_one_second_per_fs_steps():
    for fs in RATES:
        _check_one_second(fs, 0)


def test_tick_clock_one_second_across_the_wrap():
    for fs in RATES:
        for start in (TICKS_MAX - 500000, TICKS_MAX - 1, TICKS_MAX):
            _check_one_second(fs, start)


def test_tick_clock_rational_rate_is_exact():
    clock = TickClock(501, 2, TICKS_MAX - 1000)  # 250.5 Hz: 501 steps take exactly 2 s
    start = clock.now
    for _ in range(501):
        clock.tick()
    assert ticks_diff(clock.now, start) == 2000000


def _long_run(fs):
    """LONG_RUN_STEPS ticks from just before the wrap; check every second and the end point."""
    start = TICKS_MAX - 777
    clock = TickClock(fs, start=start)
    tick = clock.tick
    seconds = LONG_RUN_STEPS // fs
    prev = start
    s = 0
    while s < seconds:
        k = 0
        while k < fs:
            tick()
            k += 1
        assert ticks_diff(clock.now, prev) == 1000000, (fs, s)
        prev = clock.now
        s += 1
    k = seconds * fs
    while k < LONG_RUN_STEPS:
        tick()
        k += 1
    assert clock.now == (start + LONG_RUN_STEPS * 1000000 // fs) % TICKS_PERIOD, fs


def test_tick_clock_exact_over_a_million_steps_at_125_hz():
    _long_run(125)


def test_tick_clock_exact_over_a_million_steps_at_250_hz():
    _long_run(250)


def test_tick_clock_exact_over_a_million_steps_at_300_hz():
    _long_run(300)


def test_tick_clock_exact_over_a_million_steps_at_1000_hz():
    _long_run(1000)


def _tick_n(clock, n):
    i = 0
    while i < n:
        clock.tick()
        i += 1
    return clock.now


def test_tick_clock_tick_allocates_nothing():
    # 300 Hz carries a remainder; starting 0.5 s before the wrap crosses it inside the lock.
    clock = TickClock(300, start=TICKS_MAX - 500000)
    no_alloc(clock.tick)
    no_alloc(_tick_n, clock, 600)
    assert clock.now == (TICKS_MAX - 500000 + 601 * 1000000 // 300) % TICKS_PERIOD
