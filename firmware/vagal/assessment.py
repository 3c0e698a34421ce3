"""Resonance assessment: the stepped protocol that finds the rate of the largest heart-rate swing.

Reads a vagal.resonance.ResonanceMeter after it judged a breath and tells the pacer which rate to
use (rate_mbpm, updated by update(now_us)). Kept apart from the meter so each module compiles within
a small MicroPython heap; the app loads it only for assess mode. Closed-loop tuning is in
vagal.tuner (not imported here, so an assessment does not hold it in memory). Rules and measured
accuracy: docs/resonance.md.
"""

from array import array

from vagal.coherence import INVALID
from vagal.hrv import isqrt
from vagal.resonance import ABS_MAX_MBPM, ABS_MIN_MBPM, atan2_deg, cos_deg, judged_start, sin_deg
from vagal.ticks import ticks_diff

DEFAULT_RATES = (6500, 6000, 5500, 5000, 4500)
PHASE_TIE_DEG = 10  # mean phases closer than this count as equal
PHASE_FIT_DEG = 70  # rates whose mean phase is within this enter the phase line
REFINE_SWING = 1  # Assessment(refine=...) bits
REFINE_PHASE = 2


class Assessment:
    """The stepped protocol. start(now_us); then update(now_us) after each meter.pace(); read rate_mbpm.

    Each step runs step_s seconds at one rate; the first settle_breaths breaths that begin after the
    step starts are skipped (the body follows a new rate within a breath or two), in the first step
    lead_breaths more: a person can follow the light only after seeing a breath or two of it (it
    also fades in), and the HR response of their spontaneous breathing (small swing, ~75 deg lag)
    then settles for ~3 time constants; on the virtual board the first three breaths at 6.5/min
    carried 15-35 % of the swing and pulled that step 15-25 % low; invalid breaths
    (poor signal, rejected beats) are ignored and the step is extended, up to twice its length, until
    min_breaths valid breaths are in. Rule (docs/resonance.md): among rates with >= 3 valid breaths,
    those whose mean swing is within tie_pct of the largest are candidates; the one whose mean phase
    is nearest 0 deg wins (phases within 10 deg count as equal; then higher coherence). If refine,
    the stored result is the mean of the peak of the resonance curve fitted to all rates' swings
    and of the rate where the phase line crosses 0 (_estimate), rounded to 50 mbpm.
    """

    IDLE = 0
    RUNNING = 1
    DONE = 2
    FAILED = 3

    def __init__(self, meter, rates=DEFAULT_RATES, step_s=120, settle_breaths=1, min_breaths=6,
                 tie_pct=10, refine=REFINE_SWING | REFINE_PHASE, lead_breaths=2):
        n = len(rates)
        if n < 1 or n > 16:
            raise ValueError("assessment needs 1..16 rates")
        for r in rates:
            if type(r) is not int or not ABS_MIN_MBPM - 1000 <= r <= ABS_MAX_MBPM + 2000:
                raise ValueError("assessment rate %r mbpm out of range" % (r,))
        if step_s < 30 or step_s > 600:
            raise ValueError("assessment step must be 30..600 s")
        self.meter = meter
        self.rates = array("i", rates)
        self.lo_mbpm = min(rates)  # the tested range
        self.hi_mbpm = max(rates)
        self.step_ms = step_s * 1000
        self.settle_breaths = settle_breaths
        self.min_breaths = min_breaths
        self.tie_pct = tie_pct
        self.refine = refine
        self.lead_breaths = lead_breaths
        self.n = array("i", [0] * n)  # valid breaths per rate
        self.swing_sum = array("i", [0] * n)  # x10
        self.fit_sum = array("i", [0] * n)
        self.phase_c = array("i", [0] * n)  # sum of unit phase vectors x4096
        self.phase_s = array("i", [0] * n)
        self.coh_sum = array("i", [0] * n)
        self.coh_n = array("i", [0] * n)
        self.state = Assessment.IDLE
        self.step = 0
        self.rate_mbpm = rates[0]
        self.result_mbpm = 0
        self.best_index = -1

    def start(self, now_us):
        for i in range(len(self.rates)):
            self.n[i] = 0
            self.swing_sum[i] = 0
            self.fit_sum[i] = 0
            self.phase_c[i] = 0
            self.phase_s[i] = 0
            self.coh_sum[i] = 0
            self.coh_n[i] = 0
        self.state = Assessment.RUNNING
        self.result_mbpm = 0
        self.best_index = -1
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
                    self.n[i] += 1
                    self.swing_sum[i] += m.swing_x10
                    self.fit_sum[i] += m.fit_x10
                    self.phase_c[i] += cos_deg(m.phase_deg)
                    self.phase_s[i] += sin_deg(m.phase_deg)
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

    def mean_phase_deg(self, i):
        return atan2_deg(self.phase_s[i], self.phase_c[i]) if self.n[i] else 0

    def mean_coherence_x100(self, i):
        return self.coh_sum[i] // self.coh_n[i] if self.coh_n[i] else INVALID

    def _largest(self):
        """(index, fitted swing) of the largest swing among rates with >= 3 valid breaths; (-1, 0)."""
        best = -1
        top = 0
        for i in range(len(self.rates)):
            if self.n[i] >= 3 and self.mean_fit_x10(i) > top:
                top = self.mean_fit_x10(i)
                best = i
        return best, top

    def choose(self):
        """Index of the chosen tested rate by the documented rule, or -1 without enough data."""
        best, top = self._largest()
        if best < 0:
            return -1
        floor = top - top * self.tie_pct // 100
        pick = best
        for i in range(len(self.rates)):
            if i == pick or self.n[i] < 3 or self.mean_fit_x10(i) < floor:
                continue
            a = abs(self.mean_phase_deg(i))
            b = abs(self.mean_phase_deg(pick))
            if a + PHASE_TIE_DEG < b:
                pick = i
            elif a <= b + PHASE_TIE_DEG and b <= a + PHASE_TIE_DEG:
                ca = self.mean_coherence_x100(i)
                cb = self.mean_coherence_x100(pick)
                if ca > cb or (ca == cb and self.mean_fit_x10(i) > self.mean_fit_x10(pick)):
                    pick = i
        return pick

    def _curve_vertex(self):
        """Peak of the resonance curve fitted to the swings of all rates (mbpm), or -1.

        The swing follows A(f) = A_r / sqrt(1 + Q^2 (f/f_r - f_r/f)^2), so 1/A^2 = c0 + c1 g + c2/g
        with g = (f / 5.5)^2 exactly (c1 = Q^2/(A_r f_r)^2 ...): a weighted least-squares fit that
        is linear in (c0, c1, c2), peaking at g^2 = c2/c1. Unlike a parabola through the largest
        swing and its two neighbours it uses every rate and the curve's true, skewed shape.
        Weights: valid breaths x (swing / largest)^2 (1/A^2 magnifies the noise of small swings).
        -1 with fewer than 4 rates of >= 3 valid breaths or without a peak (c1 or c2 <= 0).
        """
        top = self._largest()[1]
        pts = []  # (a, b, y, w) per rate; allocated once, at the end of the assessment
        for k in range(len(self.rates)):
            n = self.n[k]
            if n >= 3 and top > 0:
                r = self.rates[k] // 10
                g = r * r * 256 // 302500  # g = (f / 5.5/min)^2, x256
                fit = max(self.mean_fit_x10(k), top // 4)
                q = top * 64 // fit
                p = fit * 8 // top
                pts.append((g - 256, 65536 // g - 256, q * q // 16, min(n, 16) * p * p // 16))
        m = [0, 0, 0, 0]  # weighted sums of a, b, y and the weights
        for pt in pts:
            for j in range(3):
                m[j] += pt[3] * pt[j]
            m[3] += pt[3]
        if len(pts) < 4 or m[3] <= 0:
            return -1
        caa = cbb = cab = cay = cby = 0
        for pt in pts:
            a = pt[0] - m[0] // m[3]
            b = pt[1] - m[1] // m[3]
            y = pt[2] - m[2] // m[3]
            w = pt[3]
            caa += w * a * a
            cbb += w * b * b
            cab += w * a * b
            cay += w * a * y
            cby += w * b * y
        while max(caa, cbb, abs(cab), abs(cay), abs(cby)) >= 16384:
            caa >>= 1
            cbb >>= 1
            cab >>= 1
            cay >>= 1
            cby >>= 1
        if caa * cbb - cab * cab <= 0:
            return -1
        n1 = cay * cbb - cby * cab  # c1 x det
        n2 = caa * cby - cab * cay  # c2 x det
        if n1 <= 0 or n2 <= 0:
            return -1
        while n1 >= 16384 or n2 >= 16384:
            n1 >>= 1
            n2 >>= 1
        if n1 == 0:
            return -1
        # c2/c1 = g^2 at the peak, x65536: within 0.71..1.41 x 5.5/min (ratio * 4096 < 2**30)
        ratio = min(max(n2 * 65536 // n1, 16384), 262143)
        root4 = isqrt(isqrt(ratio * 4096) * 16384)  # (c2/c1)^(1/4), x16384
        return 5500 * root4 // 16384

    def _phase_zero(self):
        """Rate where a least-squares line through (rate, mean phase) crosses 0, or -1.

        Uses the rates with |phase| <= PHASE_FIT_DEG (beyond, the phase curve flattens). The HR
        peak lags more the faster the breathing, so a line that does not rise gives no estimate.
        """
        n = 0
        sx = 0
        sy = 0
        sxx = 0
        sxy = 0
        for k in range(len(self.rates)):
            if self.n[k] < 3:
                continue
            y = self.mean_phase_deg(k)
            if abs(y) > PHASE_FIT_DEG:
                continue
            x = self.rates[k] // 50
            n += 1
            sx += x
            sy += y
            sxx += x * x
            sxy += x * y
        if n < 2:
            return -1
        cxy = n * sxy - sx * sy
        cxx = n * sxx - sx * sx
        if cxy <= 0 or cxx <= 0:
            return -1
        while cxy >= 16384 or cxx >= 16384:
            cxy >>= 1
            cxx >>= 1
        if cxy == 0:
            return -1
        x0 = (sx * cxy - sy * cxx) * 50 // (n * cxy)  # mbpm
        return min(max(x0, self.lo_mbpm - 250), self.hi_mbpm + 250)

    def _estimate(self, pick):
        """The result: the mean of the resonance curve's peak and the phase zero crossing.

        A swing curve without a peak says nothing about where the peak is: then the phase alone.
        A peak beyond the tested rates is an extrapolation of a curve fitted to a few % of
        differences: it counts at the end of the tested range (the phase line, monotonic and
        nearly straight, may reach 250 mbpm beyond it)."""
        if not self.refine:
            return self.rates[pick]
        total = 0
        count = 0
        if self.refine & REFINE_SWING:
            v = self._curve_vertex()
            if v > 0:
                total += min(max(v, self.lo_mbpm), self.hi_mbpm)
                count += 1
        if self.refine & REFINE_PHASE:
            v = self._phase_zero()
            if v > 0:
                total += v
                count += 1
        if count == 0:
            return self.rates[pick]
        v = total // count
        return (v + 25) // 50 * 50

    def _finish(self):
        i = self.choose()
        self.best_index = i
        if i < 0:
            self.state = Assessment.FAILED
            self.result_mbpm = 0
            return
        self.result_mbpm = self._estimate(i)
        self.rate_mbpm = self.result_mbpm
        self.state = Assessment.DONE
