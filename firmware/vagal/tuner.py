"""Closed-loop tuning for practice: nudges the pacer toward the rate of the largest heart-rate swing.

Reads a vagal.resonance.ResonanceMeter after it judged a breath and tells the pacer which rate to use
(rate_mbpm, updated by update(now_us)). Its own module (not in vagal.assessment) so practice mode,
the default, loads only this small one. Rules and measured accuracy: docs/resonance.md.
"""

from vagal.resonance import (ABS_MAX_MBPM, ABS_MIN_MBPM, FIT_MIN_X10, atan2_deg, cos_deg,
                             sin_deg)
from vagal.ticks import ticks_diff

MODE_PHASE = 1  # Tuner(mode=...)
MODE_PROBE = 2


class Tuner:
    """Closed-loop practice: keeps nudging the rate toward the largest swing, never jumping.

    mode MODE_PHASE (default): the pacer stays at the centre rate; every probe_breaths valid breaths
    the mean HR/pacer phase is taken (a lag, phase > 0, means the rate is above resonance: the swing
    grows by slowing down, a lead by speeding up) and the centre moves by -phase_gain() * phase
    (gain_phase, shrinking by Kesten's rule once the moves reverse near resonance).
    mode MODE_PROBE: the pacer alternates centre + probe and centre - probe for probe_breaths valid
    breaths each (the first settle_breaths at each side skipped); after each side the mean swing of
    the last two sides is compared and the centre moves toward the better side by gain * relative
    difference. Either way a move is at most speed_mbpm_min per minute of elapsed time, inside
    [start - span, start + span] and 4000..7000 mbpm, and the pacer glides (phase-continuous).
    enabled False parks the pacer at the centre.
    """

    def __init__(self, meter, start_mbpm, mode=1, probe_mbpm=200, probe_breaths=4,
                 settle_breaths=1, speed_mbpm_min=250, span_mbpm=1000, gain_mbpm=1500,
                 gain_phase=12, gain_phase_min=3, use_fit=True):
        if type(start_mbpm) is not int or not ABS_MIN_MBPM <= start_mbpm <= ABS_MAX_MBPM:
            raise ValueError("tuning start rate %r outside %d..%d mbpm"
                             % (start_mbpm, ABS_MIN_MBPM, ABS_MAX_MBPM))
        if mode not in (MODE_PHASE, MODE_PROBE):
            raise ValueError("tuning mode must be 1 (phase) or 2 (probe)")
        self.meter = meter
        self.mode = mode
        self.probe = probe_mbpm
        self.probe_breaths = probe_breaths
        self.settle_breaths = settle_breaths
        self.speed = speed_mbpm_min
        self.gain = gain_mbpm
        self.gain_phase = gain_phase
        self.gain_phase_min = gain_phase_min
        self.use_fit = use_fit
        self.lo = max(ABS_MIN_MBPM, start_mbpm - span_mbpm)
        self.hi = min(ABS_MAX_MBPM, start_mbpm + span_mbpm)
        self.start_mbpm = start_mbpm
        self.center_mbpm = start_mbpm
        self.rate_mbpm = start_mbpm
        self.enabled = True
        self.steps = 0
        self._side = 1
        self._last_us = 0
        self._turns = 0
        self._dir = 0

    def _clamp(self, r):
        if r < self.lo:
            return self.lo
        if r > self.hi:
            return self.hi
        return r

    def start(self, now_us):
        self.center_mbpm = self.start_mbpm
        self.steps = 0
        self._last_us = now_us
        self._since_step_ms = 0
        self._prev_mean = -1  # mean swing of the previous side, -1 none
        self._prev_rate = 0
        self._side = 1
        self._turns = 0  # phase-mode moves that reversed the direction of the one before
        self._dir = 0  # sign of the last phase-mode move
        self._enter(now_us)

    def set_enabled(self, on, now_us):
        """Switch tuning on/off; off parks the pacer at the centre rate."""
        self.enabled = bool(on)
        self._prev_mean = -1
        if self.enabled:
            self._enter(now_us)
        else:
            self.rate_mbpm = self.center_mbpm

    def _enter(self, now_us):
        if self.mode == MODE_PROBE:
            self.rate_mbpm = self._clamp(self.center_mbpm + self._side * self.probe)
        else:
            self.rate_mbpm = self.center_mbpm
        self._side_t0 = now_us
        self._skip = self.settle_breaths if self.mode == MODE_PROBE else 0
        self._n = 0
        self._sum = 0
        self._pc = 0
        self._ps = 0
        self._seen = self.meter.seq

    def _move(self, step):
        lim = self.speed * self._since_step_ms // 60000
        if step > lim:
            step = lim
        elif step < -lim:
            step = -lim
        self.center_mbpm = self._clamp(self.center_mbpm + step)
        self._since_step_ms = 0
        self.steps += 1

    def phase_gain(self):
        """Kesten's rule: gain_phase // (1 + turns), at least gain_phase_min (mbpm per degree).

        Far from resonance the phase keeps its sign and the full gain (with the speed limit) closes
        the distance; once the moves start to reverse the rate is near resonance and each breath's
        phase noise (breathing-phase wander, lapses: 10-15 deg over 4 breaths) matters more than
        speed, so the gain shrinks and later moves average over more breaths. The floor keeps it
        following a resonance that moves during the session."""
        g = self.gain_phase // (1 + self._turns)
        return g if g > self.gain_phase_min else self.gain_phase_min

    def _note_direction(self, phase_deg):
        """Count a turn when this move goes the other way from the previous one."""
        sign = 1 if phase_deg < 0 else (-1 if phase_deg > 0 else 0)
        if sign != 0:
            if self._dir != 0 and sign != self._dir:
                self._turns += 1
            self._dir = sign

    def update(self, now_us):
        """Advance the tuning; True when rate_mbpm changed."""
        dt = ticks_diff(now_us, self._last_us)
        self._last_us = now_us
        if dt > 0:
            self._since_step_ms += dt // 1000
            if self._since_step_ms > 600000:
                self._since_step_ms = 600000
        if not self.enabled:
            return False
        m = self.meter
        if m.seq == self._seen:
            return False
        self._seen = m.seq
        if ticks_diff(m.breath_start_us, self._side_t0) < 0:
            return False  # began before this side's rate
        if self._skip > 0:
            self._skip -= 1
            return False
        if not m.valid:
            return False
        if self.mode == MODE_PHASE:
            if m.fit_x10 < FIT_MIN_X10:
                return False
            self._pc += cos_deg(m.phase_deg)
            self._ps += sin_deg(m.phase_deg)
            self._n += 1
            if self._n < self.probe_breaths:
                return False
            old = self.rate_mbpm
            d = atan2_deg(self._ps, self._pc)
            self._note_direction(d)
            self._move(-d * self.phase_gain())
            self._enter(now_us)
            return self.rate_mbpm != old
        self._sum += m.fit_x10 if self.use_fit else m.swing_x10
        self._n += 1
        if self._n < self.probe_breaths:
            return False
        mean = self._sum // self._n
        rate = self.rate_mbpm
        if self._prev_mean >= 0 and rate != self._prev_rate and mean + self._prev_mean > 0:
            # relative difference, signed toward the faster rate
            if rate > self._prev_rate:
                d = mean - self._prev_mean
            else:
                d = self._prev_mean - mean
            rel = d * 2000 // (mean + self._prev_mean)  # x1000
            self._move(rel * self.gain // 1000)
        self._prev_mean = mean
        self._prev_rate = rate
        self._side = -self._side
        self._enter(now_us)
        return True
