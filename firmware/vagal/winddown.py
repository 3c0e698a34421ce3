"""Wind-down ramp for the bedside: a comfortable rate slowing to the resonance rate, the light fading out.

The programmed curve is linear in rate over the ramp's own clock: rate = start + (end - start) * p,
p = ramp time / duration, brightness = brightness0 * (1 - p) (on the pacer's perceptual scale), and
haptic strength fades to half. At p = 1 the ramp is done: brightness 0, haptics 0, and the app stops
the pacer (darkness and stillness). haptic_only keeps the light at 0 throughout.

With a pulse, the ramp clock pauses while the meter says the person is not following the pacer
(meter.entrained == 0: the heart-rate oscillation is not phase-locked to the paced breaths), for at
most max_hold_pct of the duration in total, so the ramp always ends. With no pulse, or with hold off,
it is a plain timed ramp. Per update: integer arithmetic on ms, no allocation.
"""

from vagal.ticks import ticks_diff

DEFAULT_START_MBPM = 10500
PRESETS_MIN = (8, 20)


class WindDown:
    """start(now_us), then update(now_us) each pacer update; read rate_mbpm, brightness_pct,
    haptic_pct, holding, done."""

    def __init__(self, end_mbpm=6000, minutes=8, start_mbpm=DEFAULT_START_MBPM, brightness_pct=100,
                 haptic_pct=40, haptic_only=False, meter=None, hold=True, max_hold_pct=50):
        if type(minutes) is not int or not 1 <= minutes <= 60:
            raise ValueError("wind-down length %r outside 1..60 min" % (minutes,))
        for r in (start_mbpm, end_mbpm):
            if type(r) is not int or not 3000 <= r <= 12000:
                raise ValueError("wind-down rate %r outside 3000..12000 mbpm" % (r,))
        if type(brightness_pct) is not int or not 0 <= brightness_pct <= 100:
            raise ValueError("brightness %r outside 0..100" % (brightness_pct,))
        if type(haptic_pct) is not int or not 0 <= haptic_pct <= 100:
            raise ValueError("haptic strength %r outside 0..100" % (haptic_pct,))
        self.start_mbpm = start_mbpm
        self.end_mbpm = end_mbpm
        self.duration_ms = minutes * 60000
        self.brightness0 = 0 if haptic_only else brightness_pct
        self.haptic0 = haptic_pct
        self.haptic_only = haptic_only
        self.meter = meter
        self.hold = hold
        self.max_hold_ms = self.duration_ms * max_hold_pct // 100
        self.started = False
        self._reset()

    def _reset(self):
        self.ramp_ms = 0  # the ramp's own clock (paused while holding)
        self.held_ms = 0
        self.wall_ms = 0
        self._acc_us = 0
        self._last_us = 0
        self.holding = False
        self.done = False
        self.progress = 0  # x10000
        self.rate_mbpm = self.start_mbpm
        self.brightness_pct = self.brightness0
        self.haptic_pct = self.haptic0

    def start(self, now_us):
        self._reset()
        self.started = True
        self._last_us = now_us

    def curve_mbpm(self, ramp_ms):
        """The programmed rate at ramp time ramp_ms."""
        p = self._progress(ramp_ms)
        return self.start_mbpm + (self.end_mbpm - self.start_mbpm) * p // 10000

    def _progress(self, ramp_ms):
        if ramp_ms >= self.duration_ms:
            return 10000
        return (ramp_ms // 100) * 10000 // (self.duration_ms // 100)

    def update(self, now_us):
        """Advance the ramp; returns True once it has just finished."""
        if not self.started or self.done:
            return False
        dt = ticks_diff(now_us, self._last_us)
        self._last_us = now_us
        if dt < 0:
            dt = 0
        acc = self._acc_us + dt
        ms = acc // 1000
        self._acc_us = acc - ms * 1000
        self.wall_ms += ms
        m = self.meter
        hold = (self.hold and m is not None and m.entrained == 0
                and self.held_ms < self.max_hold_ms)
        self.holding = hold
        if hold:
            self.held_ms += ms
        else:
            self.ramp_ms += ms
        p = self._progress(self.ramp_ms)
        self.progress = p
        self.rate_mbpm = self.start_mbpm + (self.end_mbpm - self.start_mbpm) * p // 10000
        if p >= 10000:
            self.done = True
            self.brightness_pct = 0
            self.haptic_pct = 0
            return True
        self.brightness_pct = self.brightness0 * (10000 - p) // 10000
        self.haptic_pct = self.haptic0 - self.haptic0 * p // 20000
        return False
