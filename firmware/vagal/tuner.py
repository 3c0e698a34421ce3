"""Closed-loop tuning for practice: keeps the pacer at the rate of the largest heart-rate swing.

Reads a vagal.resonance.ResonanceMeter after it judged a breath and tells the pacer which rate to use
(rate_mbpm, updated by update(now_us)). Its own module (not in vagal.assessment) so practice mode,
the default, loads only this small one. Rules and measured accuracy: docs/resonance.md.

Never a phase target of 0: where the heart-rate peak falls at resonance differs between people
(pulse transit, breathing lag, the baroreflex loop's delay). With the phase the assessment measured
at the person's own swing peak (resonance_phase_deg) the tuner steers to that phase; without it,
it follows the swing alone, by perturb-and-fit (extremum seeking).
"""

from array import array

from vagal.hrv import isqrt
from vagal.resonance import (ABS_MAX_MBPM, ABS_MIN_MBPM, FIT_MIN_X10, atan2_deg, cos_deg, curve_peak,
                             judged_start, sin_deg)
from vagal.ticks import ticks_diff

PHASE_UNKNOWN = -999  # resonance_phase_deg when no assessment measured it
# The phase line. tan(phase - ref) = Q (f/f_r - f_r/f) near resonance, so f tan(phase - ref) =
# (Q/f_r) f^2 - Q f_r is a straight line in f^2 crossing 0 at f_r^2. Units: f = rate / 10 mbpm,
# x = (f^2 - f_start^2) / 256, y = 100 tan(phase - ref) f / 550; its slope dy/dx = 46.5 Q / f_r is
# 0.11-0.31 for Q 1.5-3 at 4.5-6.5/min. x1000: the prior is their geometric mean, the bounds the
# possible range with margin.
SLOPE_PRIOR_X1000 = 180
SLOPE_MIN_X1000 = 60
SLOPE_MAX_X1000 = 500
SLOPE_WEIGHT = 52000  # x^2: the prior counts as much as blocks spread by +-0.5 breaths/min
LINE_BLOCKS = 16  # then older blocks fade (x3/4): ~10-15 minutes of memory, a drifting resonance is followed
# The swing (no phase reference): blocks alternate DITHER_MBPM either side of the centre; the
# resonance curve fitted over the last SWING_BLOCKS blocks' (rate, swing level) gives the target.
DITHER_MBPM = 300
SWING_BLOCKS = 12
REACH_MBPM = 500  # a swing target at most this far from the centre (the fit extrapolates poorly)


class Tuner:
    """Closed-loop practice: keeps moving the rate toward resonance, never jumping.

    Every block_breaths valid breaths (fitted swing of at least 1 bpm) make one block; breaths
    that began in the first lead_in_s seconds are not used (the person only starts to follow the
    light, and the HR response of spontaneous breathing takes ~3 time constants to settle), nor
    invalid ones: with a poor signal nothing moves. After each block the centre moves toward the
    target, at most speed_mbpm_min per minute since the previous move (and at most one minute's
    worth), inside [start - span, start + span] and 4000..7000 mbpm; the pacer glides
    (phase-continuous). enabled False parks the pacer at the centre.

    Target, with resonance_phase_deg (the assessment's phase at the person's swing peak): the rate
    where the line through the blocks' (rate, mean phase - reference) crosses 0 (_line_target).
    Without it: after the lead-in the pacer alternates DITHER_MBPM above and below the centre block
    by block, and the
    target is the peak of the resonance curve fitted to the recent blocks' swing levels (rms of
    their fitted swings), within REACH_MBPM of the centre; a curve without a peak moves toward the
    larger swing. The assessed rate itself is never a target: the tuner must find the swing from
    wherever it starts (the stored rate is only where practice starts).
    """

    def __init__(self, meter, start_mbpm, block_breaths=4, speed_mbpm_min=250, span_mbpm=1500,
                 lead_in_s=30, resonance_phase_deg=PHASE_UNKNOWN):
        if type(start_mbpm) is not int or not ABS_MIN_MBPM <= start_mbpm <= ABS_MAX_MBPM:
            raise ValueError("tuning start rate %r outside %d..%d mbpm"
                             % (start_mbpm, ABS_MIN_MBPM, ABS_MAX_MBPM))
        self.meter = meter
        self.block_breaths = block_breaths
        self.speed = speed_mbpm_min
        self.lead_in_ms = lead_in_s * 1000
        self.lo = max(ABS_MIN_MBPM, start_mbpm - span_mbpm)
        self.hi = min(ABS_MAX_MBPM, start_mbpm + span_mbpm)
        self.start_mbpm = start_mbpm
        self.center_mbpm = start_mbpm
        self.rate_mbpm = start_mbpm
        self.phase_ref = resonance_phase_deg if -180 <= resonance_phase_deg <= 180 else PHASE_UNKNOWN
        self.enabled = True
        self.steps = 0
        self._last_us = 0
        self._sr = array("i", [0] * SWING_BLOCKS)  # swing blocks: rate, level, breaths (ring)
        self._sl = array("i", [0] * SWING_BLOCKS)
        self._sn = array("i", [0] * SWING_BLOCKS)

    def start(self, now_us):
        self.center_mbpm = self.start_mbpm
        self.steps = 0
        self._last_us = now_us
        self._since_step_ms = 0
        self._elapsed_ms = 0
        self._bn = 0  # phase line: blocks, sums of x, y, x*x, x*y (see _line_target)
        self._bx = 0
        self._by = 0
        self._bxx = 0
        self._bxy = 0
        self._side = 1  # the dither's side of the next block
        self._si = 0
        for j in range(SWING_BLOCKS):
            self._sn[j] = 0
        self._enter(now_us)

    def set_enabled(self, on, now_us):
        """Switch tuning on/off; off parks the pacer at the centre rate."""
        self.enabled = bool(on)
        if self.enabled:
            self._enter(now_us)
        else:
            self.rate_mbpm = self.center_mbpm

    def _enter(self, now_us):
        r = self.center_mbpm
        if self.phase_ref == PHASE_UNKNOWN and self._elapsed_ms >= self.lead_in_ms:
            self._side = -self._side
            r += self._side * DITHER_MBPM
            r = ABS_MIN_MBPM if r < ABS_MIN_MBPM else (ABS_MAX_MBPM if r > ABS_MAX_MBPM else r)
        self.rate_mbpm = r
        self._block_t0 = now_us
        self._n = 0
        self._pc = 0
        self._ps = 0
        self._sq = 0
        self._seen = self.meter.seq

    def _move(self, step):
        lim = self.speed * self._since_step_ms // 60000
        if step > lim:
            step = lim
        elif step < -lim:
            step = -lim
        r = self.center_mbpm + step
        self.center_mbpm = self.lo if r < self.lo else (self.hi if r > self.hi else r)
        self._since_step_ms = 0
        self.steps += 1

    def _line_target(self, phase_deg):
        """Rate where the phase line through all blocks so far crosses the reference phase (mbpm).

        Each block adds (rate, mean phase - reference); the slope is the least-squares slope pulled
        toward SLOPE_PRIOR by SLOPE_WEIGHT (the first blocks span no range of rates) and kept within
        the physical range, then the line through the blocks' mean point is followed to 0.
        Why a line and not a gain times the phase: the slope differs 3x between people (Q, f_r), and
        each block's phase carries 10-15 deg of noise (breathing-phase wander, lapses); the line
        averages every block so far and its target does not shrink when noise reverses a move."""
        if self._bn >= LINE_BLOCKS:
            self._bn = self._bn * 3 // 4
            self._bx = self._bx * 3 // 4
            self._by = self._by * 3 // 4
            self._bxx = self._bxx * 3 // 4
            self._bxy = self._bxy * 3 // 4
        d = (phase_deg - self.phase_ref + 180) % 360 - 180
        if d > 60:
            d = 60
        elif d < -60:
            d = -60
        f = self.rate_mbpm // 10
        f0 = self.start_mbpm // 10
        x = (f * f - f0 * f0) >> 8
        y = sin_deg(d) * f // cos_deg(d) * 100 // 550  # 100 tan(phase - ref) f / 550
        self._bn += 1
        self._bx += x
        self._by += y
        self._bxx += x * x
        self._bxy += x * y
        n = self._bn
        # slope = num / den; every term < 2**30 (n <= 16, |x| <= 1200, |y| <= 220)
        num = n * self._bxy - self._bx * self._by + n * SLOPE_WEIGHT * SLOPE_PRIOR_X1000 // 1000
        den = n * self._bxx - self._bx * self._bx + n * SLOPE_WEIGHT
        while den >= 16384 or num >= 16384 or num <= -16384:
            num >>= 1
            den >>= 1
        if den < 1:
            den = 1
        if num * 1000 < SLOPE_MIN_X1000 * den:
            num = SLOPE_MIN_X1000 * den // 1000 + 1
        elif num * 1000 > SLOPE_MAX_X1000 * den:
            num = SLOPE_MAX_X1000 * den // 1000
        x0 = (self._bx * num - self._by * den) // (n * num)
        sq = f0 * f0 + (x0 << 8)  # f_r^2 where the line crosses 0
        if sq < ABS_MIN_MBPM * ABS_MIN_MBPM // 100:
            return ABS_MIN_MBPM
        if sq > ABS_MAX_MBPM * ABS_MAX_MBPM // 100:
            return ABS_MAX_MBPM
        return 10 * isqrt(sq)

    def _swing_target(self, level):
        """Peak of the resonance curve through the recent blocks' (rate, swing level), within
        REACH_MBPM of the centre; without a peak, REACH_MBPM toward the larger of the last two."""
        i = self._si
        self._sr[i] = self.rate_mbpm
        self._sl[i] = level
        self._sn[i] = self._n
        self._si = (i + 1) % SWING_BLOCKS
        c = self.center_mbpm
        v = curve_peak(self._sr, self._sl, self._sn, SWING_BLOCKS)
        if v < 0:
            j = (i - 1) % SWING_BLOCKS
            if self._sn[j] == 0 or self._sr[j] == self._sr[i]:
                return c
            up = (self._sl[i] > self._sl[j]) == (self._sr[i] > self._sr[j])
            return c + REACH_MBPM if up else c - REACH_MBPM
        if v > c + REACH_MBPM:
            return c + REACH_MBPM
        if v < c - REACH_MBPM:
            return c - REACH_MBPM
        return v

    def update(self, now_us):
        """Advance the tuning; True when rate_mbpm changed."""
        dt = ticks_diff(now_us, self._last_us)
        self._last_us = now_us
        self._block_t0 = judged_start(self._block_t0, now_us)   # minutes without a valid breath
        if dt > 0:
            self._since_step_ms += dt // 1000
            if self._since_step_ms > 60000:  # one move: at most a minute's worth
                self._since_step_ms = 60000
            if self._elapsed_ms < self.lead_in_ms + 600000:  # capped: small ints
                self._elapsed_ms += dt // 1000
        if not self.enabled:
            return False
        m = self.meter
        if m.seq == self._seen:
            return False
        self._seen = m.seq
        if ticks_diff(m.breath_start_us, self._block_t0) < 0:
            return False  # began before this block's rate
        if self._elapsed_ms - ticks_diff(now_us, m.breath_start_us) // 1000 < self.lead_in_ms:
            return False  # began in the lead-in
        if not m.valid or m.fit_x10 < FIT_MIN_X10:
            return False
        self._pc += cos_deg(m.phase_deg)
        self._ps += sin_deg(m.phase_deg)
        f = m.fit_x10 if m.fit_x10 < 2000 else 2000
        self._sq += f * f >> 4
        self._n += 1
        if self._n < self.block_breaths:
            return False
        old = self.rate_mbpm
        if self.phase_ref == PHASE_UNKNOWN:
            target = self._swing_target(isqrt((self._sq // self._n) << 4))
        else:
            target = self._line_target(atan2_deg(self._ps, self._pc))
        self._move(target - self.center_mbpm)
        self._enter(now_us)
        return self.rate_mbpm != old
