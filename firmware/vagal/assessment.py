"""Resonance assessment: the stepped protocol that finds the rate of the largest heart-rate swing.

Reads a vagal.resonance.ResonanceMeter after it judged a breath and tells the pacer which rate to
use (rate_mbpm, updated by update(now_us)). Kept apart from the meter so each module compiles within
a small MicroPython heap; the app loads it only for assess mode. Closed-loop tuning is in
vagal.tuner (not imported here, so an assessment does not hold it in memory). Rules and measured
accuracy: docs/resonance.md.

The result is decided by the swing alone (the rate of the largest swing, Lehrer and Vaschillo's
definition): the heart-rate phase at resonance differs from person to person (pulse transit,
breathing lag, the baroreflex loop's own delay), so it is never a target here. The phase at the
person's own result is stored for the tuner as their reference (stored_settings()).
"""

from array import array

from vagal.coherence import INVALID
from vagal.hrv import isqrt
from vagal.resonance import (ABS_MAX_MBPM, ABS_MIN_MBPM, atan2_deg, cos_deg, curve_peak, judged_start,
                             sin_deg)
from vagal.ticks import ticks_diff

DEFAULT_RATES = (6500, 6000, 5500, 5000, 4500)
EDGE_STEP_MBPM = 500  # the extra step beyond an edge peak
SPREAD_OK_MBPM = 120  # a peak this certain (1 sd) needs no extra steps
FLAT_PCT = 5  # the curve rises less than this over the tested rates: no clear peak
FIT_CAP_X10 = 2000  # per-breath fitted swing cap for the sums of squares (< 2**30 over 200 breaths)
MAX_BREATHS = 160  # per-breath fitted swings kept (7 steps of 120 s at 4-7/min hold ~100 valid ones)
OUTLIER_PCT = 50  # a breath under this share of its rate's median swing is a lapse: left out of the level
# assess_result's rule token
RULE_CURVE = "curve"  # the peak of the curve fitted over all tested rates
RULE_SLOWEST = "slowest"  # largest at the slowest rate tested (the curve peaks at or beyond it)
RULE_FASTEST = "fastest"  # largest at the fastest rate tested
RULE_FLAT = "flat"  # no clear peak: the largest bar, differences under the uncertainty


class Assessment:
    """The stepped protocol. start(now_us); then update(now_us) after each meter.pace(); read rate_mbpm.

    Each step runs step_s seconds at one rate; the first settle_breaths breaths that begin after the
    step starts are skipped (the body follows a new rate within a breath or two), in the first step
    lead_breaths more: a person can follow the light only after seeing a breath or two of it (it
    also fades in), and the HR response of their spontaneous breathing (small swing, ~75 deg lag)
    then settles for ~3 time constants; invalid breaths (poor signal, rejected beats) are ignored
    and the step is extended, up to twice its length, until min_breaths valid breaths are in.

    Rule (docs/resonance.md): the resonance curve A(f) is fitted to the mean fitted swings of all
    rates (_curve_vertex); its peak, rounded to 50 mbpm, is the result (rule "curve"), with an
    uncertainty from the per-breath spread (_uncertainty). When the largest swing sits at an end of
    the tested rates and the curve peaks at or beyond it, one extra step EDGE_STEP_MBPM beyond that
    end (within 4.0-7.0) is added (edge_step); if the peak is still at the end, the result is that
    end ("slowest"/"fastest": never an extrapolation). A curve without a peak, or rising less than
    FLAT_PCT, gives the tallest bar (rule "flat"). The tallest bar is chosen_mbpm (choose()).
    """

    IDLE = 0
    RUNNING = 1
    DONE = 2
    FAILED = 3

    def __init__(self, meter, rates=DEFAULT_RATES, step_s=120, settle_breaths=1, min_breaths=6,
                 lead_breaths=2, max_extra=2, spread_ok_mbpm=SPREAD_OK_MBPM):
        n = len(rates)
        if n < 1 or n > 16:
            raise ValueError("assessment needs 1..16 rates")
        for r in rates:
            if type(r) is not int or not ABS_MIN_MBPM - 1000 <= r <= ABS_MAX_MBPM + 2000:
                raise ValueError("assessment rate %r mbpm out of range" % (r,))
        if step_s < 30 or step_s > 600:
            raise ValueError("assessment step must be 30..600 s")
        self.meter = meter
        self.planned = n
        self.step_ms = step_s * 1000
        self.settle_breaths = settle_breaths
        self.min_breaths = min_breaths
        self.lead_breaths = lead_breaths
        self.max_extra = max_extra
        self.spread_ok_mbpm = spread_ok_mbpm
        self._rates0 = rates
        self._fits = None
        self.state = Assessment.IDLE
        self._reset()

    def _reset(self):
        n = len(self._rates0)
        if self._fits is None:
            self._fits = array("h", [0] * MAX_BREATHS)  # every valid breath's fitted swing, capped
            self._fit_rate = bytearray(MAX_BREATHS)  # and its rate's index
        self._nfits = 0
        self.rates = array("i", self._rates0)
        self.n = array("i", [0] * n)  # valid breaths per rate
        self.swing_sum = array("i", [0] * n)  # x10
        self.fit_sum = array("i", [0] * n)
        self.fit_sq = array("i", [0] * n)  # sum of squares of the capped fitted swings, for the spread
        self.phase_c = array("i", [0] * n)  # sum of unit phase vectors x4096
        self.phase_s = array("i", [0] * n)
        self.coh_sum = array("i", [0] * n)
        self.coh_n = array("i", [0] * n)
        self.level = array("i", [0] * n)  # the rule's swing level per rate (level_x10), at each step's end
        self.kept = array("i", [0] * n)  # breaths in it
        self.step = 0
        self.rate_mbpm = self.rates[0]
        self.result_mbpm = 0
        self.best_index = -1
        self.rule = RULE_CURVE
        self.spread_mbpm = 0  # the result's uncertainty (1 sd), mbpm
        self.phase_ref_deg = 0  # mean phase at the result (the person's own), for the tuner
        self.peak_mbpm = -1  # the fitted curve's peak before rounding and clamping, -1 none

    def start(self, now_us):
        self._reset()
        self.state = Assessment.RUNNING
        self._begin(0, now_us)

    def _begin(self, step, now_us):
        self.step = step
        self.rate_mbpm = self.rates[step]
        self._t0 = now_us
        self._elapsed_ms = 0
        self._last_us = now_us
        self._seen = self.meter.seq
        self._coh_seen = self.meter.coherence.seq
        self._skip = self.settle_breaths + (self.lead_breaths if step == 0 else 0)
        self._coh_ok_after = 0

    def update(self, now_us):
        """Advance the protocol; True when rate_mbpm changed or the assessment finished."""
        if self.state != Assessment.RUNNING:
            return False
        m = self.meter
        dt = ticks_diff(now_us, self._last_us)
        self._last_us = now_us
        self._t0 = judged_start(self._t0, now_us)   # a step runs up to 600 s
        if dt > 0:
            self._elapsed_ms += dt // 1000
        i = self.step
        if m.seq != self._seen:
            self._seen = m.seq
            if ticks_diff(m.breath_start_us, self._t0) >= 0:  # began at this step's rate
                if self._skip > 0:
                    self._skip -= 1
                    if self._skip == 0:
                        self._coh_ok_after = self._elapsed_ms
                elif m.valid:
                    f = m.fit_x10 if m.fit_x10 < FIT_CAP_X10 else FIT_CAP_X10
                    self.n[i] += 1
                    self.swing_sum[i] += m.swing_x10
                    self.fit_sum[i] += m.fit_x10
                    self.fit_sq[i] += f * f >> 4
                    self.phase_c[i] += cos_deg(m.phase_deg)
                    self.phase_s[i] += sin_deg(m.phase_deg)
                    if self._nfits < MAX_BREATHS:
                        self._fits[self._nfits] = f
                        self._fit_rate[self._nfits] = i
                        self._nfits += 1
        c = m.coherence
        if c.seq != self._coh_seen:
            self._coh_seen = c.seq
            # the 64 s window must lie mostly inside this step
            if self._skip == 0 and self._elapsed_ms - self._coh_ok_after >= 45000:
                if c.coherence_x100 != INVALID:
                    self.coh_sum[i] += c.coherence_x100
                    self.coh_n[i] += 1
        if self._elapsed_ms >= self.step_ms and (self.n[i] >= self.min_breaths
                                                  or self._elapsed_ms >= 2 * self.step_ms):
            self._level(i)
            if i + 1 == len(self.rates):
                self._plan_more()
            if i + 1 < len(self.rates):
                self._begin(i + 1, now_us)
            else:
                self._finish()
            return True
        return False

    def mean_swing_x10(self, i):
        return self.swing_sum[i] // self.n[i] if self.n[i] else 0

    def mean_fit_x10(self, i):
        return self.fit_sum[i] // self.n[i] if self.n[i] else 0

    def fit_se_x10(self, i):
        """Standard error of rate i's mean fitted swing (x10), from its breaths' spread; 0 if < 2."""
        n = self.n[i]
        if n < 2:
            return 0
        m = self.fit_sum[i] // n
        if m > FIT_CAP_X10:
            m = FIT_CAP_X10
        var = (self.fit_sq[i] // n << 4) - m * m
        if var < 0:
            var = 0
        return isqrt(var * n // (n - 1) // n)

    def level_x10(self, i):
        """Rate i's swing level for the rule (x10): the root mean square of its valid breaths'
        fitted swings, leaving out breaths under OUTLIER_PCT of their median (a lapse: one breath at
        the person's own rate, little swing at the pacer's). Set at the end of each step."""
        return self.level[i]

    def _level(self, i):
        fits = self._fits
        rate = self._fit_rate
        nf = self._nfits
        n = 0
        for j in range(nf):
            if rate[j] == i:
                n += 1
        med = 0
        if n >= 3:  # the median: the value with half the others at or below it (n is small)
            best = 1 << 20
            for j in range(nf):
                if rate[j] != i:
                    continue
                below = 0
                for k in range(nf):
                    if rate[k] == i and fits[k] <= fits[j]:
                        below += 1
                if below * 2 >= n and fits[j] < best:
                    best = fits[j]
            med = best
        floor = med * OUTLIER_PCT // 100
        sq = 0
        kept = 0
        for j in range(nf):
            if rate[j] == i and fits[j] >= floor:
                sq += fits[j] * fits[j] >> 4
                kept += 1
        self.kept[i] = kept
        self.level[i] = isqrt((sq // kept) << 4) if kept else 0

    def mean_phase_deg(self, i):
        return atan2_deg(self.phase_s[i], self.phase_c[i]) if self.n[i] else 0

    def mean_coherence_x100(self, i):
        return self.coh_sum[i] // self.coh_n[i] if self.coh_n[i] else INVALID

    def choose(self):
        """Index of the tested rate with the largest swing level (>= 3 valid breaths), or -1."""
        best = -1
        top = 0
        for i in range(len(self.rates)):
            if self.n[i] >= 3 and self.level_x10(i) > top:
                top = self.level_x10(i)
                best = i
        return best

    def _curve_vertex(self, k=-1, dk=0):
        """Peak of the resonance curve fitted to all rates' swing levels (mbpm), or -1: see
        vagal.resonance.curve_peak. Rate k's level is read dk (x10) larger (the uncertainty's
        perturbations)."""
        return curve_peak(self.rates, self.level, self.kept, len(self.rates), k, dk)

    def _uncertainty(self, v):
        """1 sd of the curve's peak (mbpm): each rate's mean swing moved by its standard error, one
        at a time, moves the peak; the moves add in quadrature (the delta method, 2 fits a rate).
        A perturbed fit without a peak counts as a move to the far end of the tested rates."""
        lo = min(self.rates)
        hi = max(self.rates)
        total = 0
        for k in range(len(self.rates)):
            if self.n[k] < 3:
                continue
            se = self.fit_se_x10(k)
            if se <= 0:
                continue
            worst = 0
            for s in (se, -se):
                w = self._curve_vertex(k, s)
                d = abs((w if w > 0 else (hi if v - lo < hi - v else lo)) - v)
                if d > worst:
                    worst = d
            if worst > 3000:
                worst = 3000
            total += worst * worst
        return isqrt(total)

    def _phase_at(self, rate):
        """The person's phase at `rate` (their swing peak): phi0 of phase(f) = phi0 + atan(Q (f/r -
        r/f)) fitted to every tested rate's mean phase (weights: breaths, at most 16), Q from a grid of 1-4
        (the one with the least squared residual). Every rate's breaths count, not only the 2-3
        rates near the peak: the reference's noise is what the tuner's result inherits."""
        best = -1
        ref = 0
        for q10 in (10, 15, 20, 25, 30, 40):
            sw = sy = syy = 0
            first = -999
            for k in range(len(self.rates)):
                n = self.n[k]
                if n < 3:
                    continue
                n = n if n < 16 else 16  # weights: sums (x 180 deg) squared stay < 2**30
                f = self.rates[k] // 10
                r = rate // 10
                model = atan2_deg(q10 * (f * f - r * r) // 10, f * r)  # atan(Q (f/r - r/f))
                y = (self.mean_phase_deg(k) - model + 180) % 360 - 180
                if first == -999:
                    first = y
                y = first + (y - first + 180) % 360 - 180  # unwrapped next to the first
                sw += n
                sy += n * y
                syy += n * y * y
            if sw == 0:
                return 0
            cost = syy - sy * sy // sw
            if best < 0 or cost < best:
                best = cost
                ref = sy // sw
        return (ref + 180) % 360 - 180

    def _plan_more(self):
        """After the planned steps (and after each extra one, up to max_extra): one more step where
        it helps. The largest swing at an end of the tested rates with the curve peaking at or
        beyond it: a step EDGE_STEP_MBPM beyond that end (paceable: 4.0-7.0). Otherwise, a peak whose
        uncertainty exceeds spread_ok_mbpm: steps EDGE_STEP_MBPM either side of it (250 further out
        where a tested rate is within 100 mbpm): the slopes either side are what place a peak."""
        if len(self.rates) - self.planned >= self.max_extra:
            return
        best = self.choose()
        if best < 0:
            return
        lo = min(self.rates)
        hi = max(self.rates)
        r = self.rates[best]
        v = self._curve_vertex()
        if r == lo and (v < 0 or v <= lo + 100):
            if lo - EDGE_STEP_MBPM >= ABS_MIN_MBPM:
                self._add_rate(lo - EDGE_STEP_MBPM)
            return
        if r == hi and (v < 0 or v >= hi - 100):
            if hi + EDGE_STEP_MBPM <= ABS_MAX_MBPM:
                self._add_rate(hi + EDGE_STEP_MBPM)
            return
        if v < lo or v > hi or self._uncertainty(v) <= self.spread_ok_mbpm:
            return
        for d in (-EDGE_STEP_MBPM, EDGE_STEP_MBPM):
            x = (v + d + 25) // 50 * 50
            for k in range(len(self.rates)):
                if abs(self.rates[k] - x) < 100:  # a new rate, 250 further out, not a second bar
                    x += 250 if d > 0 else -250
                    break
            if ABS_MIN_MBPM <= x <= ABS_MAX_MBPM and len(self.rates) - self.planned < self.max_extra:
                self._add_rate(x)

    def _add_rate(self, rate):
        self.rates.append(rate)
        for a in (self.n, self.swing_sum, self.fit_sum, self.fit_sq, self.phase_c, self.phase_s,
                  self.coh_sum, self.coh_n, self.level, self.kept):
            a.append(0)

    def _finish(self):
        i = self.choose()
        self.best_index = i
        if i < 0:
            self.state = Assessment.FAILED
            self.result_mbpm = 0
            return
        lo = ABS_MAX_MBPM
        hi = 0
        low = 1 << 29
        for k in range(len(self.rates)):
            if self.n[k] >= 3:
                lo = min(lo, self.rates[k])
                hi = max(hi, self.rates[k])
                low = min(low, self.level_x10(k))
        top = self.level_x10(i)
        v = self._curve_vertex()
        self.peak_mbpm = v
        if v < 0 or (top - low) * 100 < FLAT_PCT * top:
            self.rule = RULE_FLAT
            r = self.rates[i]
            self.spread_mbpm = (hi - lo) // 2
        else:
            self.spread_mbpm = self._uncertainty(v)
            if v <= lo or v >= hi:
                r = self.rates[i]  # the tallest bar: never an extrapolation
                if r == lo:
                    self.rule = RULE_SLOWEST
                elif r == hi:
                    self.rule = RULE_FASTEST
                else:
                    self.rule = RULE_FLAT  # a peak beyond the rates but an inner bar the tallest
            else:
                self.rule = RULE_CURVE
                r = v
        r = (r + 25) // 50 * 50
        self.result_mbpm = min(max(r, ABS_MIN_MBPM), ABS_MAX_MBPM)
        self.phase_ref_deg = self._phase_at(self.result_mbpm)
        self.rate_mbpm = self.result_mbpm
        self.state = Assessment.DONE

    def stored_settings(self):
        """The settings a done assessment stores: its rate and the person's own phase there (the
        tuner's reference); {} unless DONE."""
        if self.state != Assessment.DONE:
            return {}
        return {"resonance_mbpm": self.result_mbpm, "resonance_phase_deg": self.phase_ref_deg}
