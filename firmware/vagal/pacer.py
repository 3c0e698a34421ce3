"""The breathing pacer: an integer phase integrated from ticks, a raised-cosine swell, gamma, haptics.

The phase runs 0..PHASE_ONE per breath and advances by exactly elapsed_us * rate / 60e9 breaths
(remainder carried, so it never drifts), which is why changing the rate never makes the light jump:
only the speed changes, never the position. The per-update path is integer-only and allocates
nothing, so it can run under micropython.heap_lock(). No pulse sensor is needed.
"""

import math
from array import array

from vagal.ticks import ticks_diff

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


PHASE_ONE = const(1 << 24)  # phase units per breath
RATE_MIN = const(3000)  # milli-breaths per minute
RATE_MAX = const(12000)
RATE_DEFAULT = const(6000)
INHALE_MIN = const(20)  # inhale share of a breath, percent
INHALE_MAX = const(80)
INHALE_DEFAULT = const(40)  # 4:6
RAMP_US_PER_MBPM = const(2000)  # rate changes glide at 500 milli-breaths/min per second

# Phase units per microsecond = rate_mbpm * 2**24 / 60e9 = rate_mbpm * _NUM / _DEN, exactly.
_NUM = const(8192)
_DEN = const(29296875)
# _DEN = _K * _NUM + _KR: lets m * _NUM / _DEN be split into small-int steps (see Pacer._advance)
_K = const(3576)
_KR = const(2283)
_CHUNK_US = const(65536)  # advance in chunks so that chunk * RATE_MAX (and all else) stays < 2**30

LEVEL_MAX = const(65535)
_STEPS = const(4096)  # resolution of the position within an inhale or exhale


def _build_rise():
    """Raised cosine 0..65535 over 257 points (+1 guard entry for interpolation at the top)."""
    t = array("H", bytes(2 * 258))
    for i in range(257):
        t[i] = int((1.0 - math.cos(math.pi * i / 256)) * 0.5 * LEVEL_MAX + 0.5)
    t[257] = t[256]
    return t


def _build_gamma():
    """CIE 1976 L* -> relative luminance, so equal steps of level look like equal steps of light."""
    t = array("H", bytes(2 * 258))
    for i in range(257):
        lightness = 100.0 * i / 256
        if lightness > 8.0:
            y = ((lightness + 16.0) / 116.0) ** 3
        else:
            y = lightness / 903.3
        t[i] = min(LEVEL_MAX, int(y * LEVEL_MAX + 0.5))
    t[257] = t[256]
    return t


RISE = _build_rise()
GAMMA = _build_gamma()
del _build_rise, _build_gamma  # built once: their code need not stay in memory


def rise(t):
    """Raised cosine at position t in 0.._STEPS -> 0..65535 (interpolated LUT)."""
    if t >= _STEPS:
        return LEVEL_MAX
    i = t >> 4
    a = RISE[i]
    return a + (((RISE[i + 1] - a) * (t & 15)) >> 4)


def gamma(level):
    """Perceptual level 0..65535 -> linear PWM duty 0..65535 (interpolated CIE L* LUT)."""
    i = level >> 8
    a = GAMMA[i]
    return a + (((GAMMA[i + 1] - a) * (level & 255)) >> 8)


# Haptic cue patterns: alternating on/off durations in microseconds (tuples of small ints: no
# allocation to read). Inhale start: one pulse. Exhale start: two shorter pulses.
CUE_INHALE = (90000,)
CUE_EXHALE = (50000, 70000, 50000)


class Pacer:
    """Breathing pacer. Call update(ticks_us) ~50 times a second; read led, motor, phase, inhaling."""

    def __init__(self, rate_mbpm=RATE_DEFAULT, inhale_pct=INHALE_DEFAULT, brightness=100,
                 haptics=True, haptic_pct=40):
        self.rate_mbpm = RATE_DEFAULT
        self.target_mbpm = RATE_DEFAULT
        self.split = 0  # phase where inhale turns to exhale
        self.next_split = 0
        self.set_rate(rate_mbpm, False)
        self.set_ratio(inhale_pct)
        self.brightness = 100
        self.set_brightness(brightness)
        self.haptics = True
        self.motor_level = 0
        self.set_haptics(haptics, haptic_pct)
        self.phase = 0
        self.breaths = 0  # completed breaths since start()
        self.inhaling = True
        self.level = 0  # perceptual brightness 0..65535 after the master brightness
        self.led = 0  # PWM duty 0..65535 for board.set_led
        self.motor = 0  # PWM duty 0..65535 for board.set_motor
        self._frac = 0
        self._ramp_acc = 0
        self._last_us = 0
        self._cue = None
        self._cue_us = 0
        self.cues = 0  # haptic cues started (inhale and exhale)

    # --- settings (may allocate; not on the per-update path) ---
    def set_rate(self, rate_mbpm, ramp=True):
        """New breathing rate in milli-breaths/min; glides there when ramp, phase stays continuous."""
        if type(rate_mbpm) is not int or not RATE_MIN <= rate_mbpm <= RATE_MAX:
            raise ValueError("rate %r mbpm outside %d..%d" % (rate_mbpm, RATE_MIN, RATE_MAX))
        self.target_mbpm = rate_mbpm
        if not ramp:
            self.rate_mbpm = rate_mbpm
            self._ramp_acc = 0

    def set_ratio(self, inhale_pct):
        """Inhale share of each breath in percent (40 means inhale:exhale = 4:6)."""
        if type(inhale_pct) is not int or not INHALE_MIN <= inhale_pct <= INHALE_MAX:
            raise ValueError("inhale %r%% outside %d..%d" % (inhale_pct, INHALE_MIN, INHALE_MAX))
        # takes effect at the start of the next breath: moving the turn mid-breath would jump the light
        self.next_split = PHASE_ONE * inhale_pct // 100
        if self.split == 0:
            self.split = self.next_split

    def set_brightness(self, pct):
        """Master brightness 0..100 %, applied on the perceptual scale before gamma."""
        if type(pct) is not int or not 0 <= pct <= 100:
            raise ValueError("brightness %r outside 0..100" % (pct,))
        self.brightness = pct

    def set_haptics(self, on, pct=None):
        """Haptic cues on/off and strength 0..100 % of full motor drive."""
        if pct is not None:
            if type(pct) is not int or not 0 <= pct <= 100:
                raise ValueError("haptic strength %r outside 0..100" % (pct,))
            self.motor_level = LEVEL_MAX * pct // 100
        self.haptics = bool(on)
        if not self.haptics:
            self._cue = None
            self.motor = 0

    def start(self, now_us):
        """Begin a session at the start of an inhale (light off, rising)."""
        self.phase = 0
        self._frac = 0
        self.breaths = 0
        self.split = self.next_split
        self._last_us = now_us
        self._cue = None
        self.motor = 0
        self._output()
        if self.haptics:
            self._start_cue(CUE_INHALE)
            self.motor = self.motor_level

    # --- the per-update path: integers only, no allocation ---
    def _advance(self, dt):
        # phase += dt * rate * _NUM / _DEN exactly, remainder carried in _frac. With m = d * rate and
        # m = mq * _K + mr: m * _NUM = mq * _DEN + x, x = mr * _NUM - mq * _KR, |x| < 2**29.
        rate = self.rate_mbpm
        phase = self.phase
        frac = self._frac
        breaths = self.breaths
        while dt > 0:
            d = dt if dt < _CHUNK_US else _CHUNK_US
            dt -= d
            m = d * rate  # < 65536 * 12000 < 2**30
            mq = m // _K
            x = (m - mq * _K) * _NUM - mq * _KR
            q = x // _DEN  # floor: x may be negative, then q is too and the remainder is >= 0
            phase += mq + q
            frac += x - q * _DEN
            if frac >= _DEN:
                frac -= _DEN
                phase += 1
            if phase >= PHASE_ONE:  # a chunk is far less than a breath: at most one turn
                phase -= PHASE_ONE
                breaths += 1
        self.phase = phase
        self._frac = frac
        self.breaths = breaths

    def _ramp(self, dt):
        target = self.target_mbpm
        rate = self.rate_mbpm
        if rate == target:
            self._ramp_acc = 0
            return
        acc = self._ramp_acc + dt
        steps = acc // RAMP_US_PER_MBPM
        self._ramp_acc = acc - steps * RAMP_US_PER_MBPM
        if rate < target:
            rate = rate + steps if target - rate > steps else target
        else:
            rate = rate - steps if rate - target > steps else target
        self.rate_mbpm = rate

    def _output(self):
        phase = self.phase
        split = self.split
        if phase < split:
            self.inhaling = True
            w = rise(((phase >> 8) * _STEPS) // (split >> 8))
        else:
            self.inhaling = False
            w = rise(_STEPS - (((phase - split) >> 8) * _STEPS) // ((PHASE_ONE - split) >> 8))
        level = w * self.brightness // 100
        self.level = level
        self.led = gamma(level)

    def _start_cue(self, pattern):
        self._cue = pattern
        self._cue_us = 0
        self.cues += 1

    def _run_cue(self, dt):
        pattern = self._cue
        if pattern is None:
            self.motor = 0
            return
        t = self._cue_us + dt
        self._cue_us = t
        on = True
        for d in pattern:
            if t < d:
                self.motor = self.motor_level if on else 0
                return
            t -= d
            on = not on
        self._cue = None
        self.motor = 0

    def update(self, now_us):
        """Advance to tick now_us (microseconds) and recompute led, motor, phase and inhaling."""
        dt = ticks_diff(now_us, self._last_us)
        self._last_us = now_us
        if dt < 0:
            dt = 0  # a tick from before the last update: hold still rather than run backwards
        old = self.phase
        old_breaths = self.breaths
        self._advance(dt)
        self._ramp(dt)
        if self.breaths != old_breaths:
            self.split = self.next_split
        if self.haptics:
            self._run_cue(dt)  # the running cue first, so a new cue starts from its beginning
            split = self.split
            if self.breaths != old_breaths:
                self._start_cue(CUE_EXHALE if self.phase >= split else CUE_INHALE)
            elif old < split <= self.phase:
                self._start_cue(CUE_EXHALE)
            if self._cue is not None and self._cue_us == 0:
                self.motor = self.motor_level
        self._output()

    def elapsed_phase(self):
        """Total phase since start(): breaths * PHASE_ONE + phase (may be a big int; for checks only)."""
        return self.breaths * PHASE_ONE + self.phase
