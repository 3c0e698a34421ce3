"""Wind-down: the programmed curve, brightness reaching zero, holding, no allocation.

Plain functions and bare asserts: these also run on the MicroPython unix and WebAssembly ports.
"""

from portable import assert_raises, no_alloc
from vagal.pacer import Pacer
from vagal.ticks import ticks_add
from vagal.winddown import WindDown


class _Meter:
    def __init__(self, entrained):
        self.entrained = entrained


def test_curve_and_brightness_reach_the_end():
    w = WindDown(end_mbpm=6000, minutes=8)
    t = 5
    w.start(t)
    assert w.rate_mbpm == 10500 and w.brightness_pct == 100
    t = ticks_add(t, 4 * 60 * 1000000)
    w.update(t)
    assert abs(w.rate_mbpm - 8250) <= 1, w.rate_mbpm
    assert w.brightness_pct == 50
    assert not w.done
    t = ticks_add(t, 4 * 60 * 1000000)
    assert w.update(t) is True
    assert w.done and w.rate_mbpm == 6000 and w.brightness_pct == 0 and w.haptic_pct == 0
    assert w.update(ticks_add(t, 1000000)) is False  # stays done


def test_haptic_only_keeps_the_light_off():
    w = WindDown(minutes=8, haptic_only=True, haptic_pct=60)
    w.start(0)
    w.update(60000000)
    assert w.brightness_pct == 0 and w.haptic_pct > 30


def test_20_minute_ramp_drives_the_pacer_within_0_1_bpm():
    p = Pacer(rate_mbpm=10500)
    w = WindDown(end_mbpm=5500, minutes=20)
    t = 1 << 29
    p.start(t)
    w.start(t)
    worst = 0
    for _ in range(20 * 60 + 3):
        t = ticks_add(t, 1000000)
        no_alloc(w.update, t)
        p.set_rate(w.rate_mbpm)
        p.set_brightness(w.brightness_pct)
        p.update(t)
        d = abs(p.rate_mbpm - w.curve_mbpm(w.ramp_ms))
        if not w.done and d > worst:
            worst = d
    assert worst <= 100, worst
    assert w.done and p.rate_mbpm == 5500 and p.led == 0


def test_not_following_holds_the_ramp_for_a_bounded_time():
    m = _Meter(0)
    w = WindDown(minutes=10, meter=m, max_hold_pct=20)
    w.start(0)
    t = 0
    for _ in range(60):
        t = ticks_add(t, 1000000)
        w.update(t)
    assert w.holding and w.ramp_ms == 0 and w.rate_mbpm == 10500
    m.entrained = -1  # pulse lost: a plain timed ramp
    for _ in range(60):
        t = ticks_add(t, 1000000)
        w.update(t)
    assert not w.holding and w.ramp_ms == 60000
    m.entrained = 0
    for _ in range(200):
        t = ticks_add(t, 1000000)
        w.update(t)
    assert w.held_ms == 120000  # 20 % of 10 min, then the ramp goes on
    assert w.ramp_ms == 60000 + 200000 - 60000


def test_bad_settings_are_rejected():
    assert_raises(ValueError, WindDown, 6000, 0)
    assert_raises(ValueError, WindDown, 20000, 8)
    assert_raises(ValueError, WindDown, 6000, 8, 10500, 101)
