"""Resonance breathing in fixed point: per-breath heart-rate swing and phase, assessment, tuning.

The pacer's own phase is the breathing reference: the meter records when each paced breath began
and when its inhale ended, and measures the heart-rate response inside it. Three objects share one
ResonanceMeter and tell the pacer which rate to use (each has rate_mbpm and update(now_us)):
  Assessment  the stepped protocol (6.5 -> 4.5 breaths/min), picks the rate with the largest swing
  Tuner       practice: a slow hill climb on the swing by alternating +-probes around a centre
(the wind-down ramp is in vagal.winddown). See docs/resonance.md for the rules and the numbers.

Everything on the per-beat / per-update path is integer arithmetic on preallocated arrays, with
every intermediate |x| < 2**30 (ticks are converted to ms before multiplying).
"""

import math
from array import array

from vagal.coherence import COS, Coherence, INVALID
from vagal.hrv import isqrt
from vagal.ticks import ticks_add, ticks_diff

BEATS = 64  # beats remembered: > one 15 s breath at 200 bpm
BEAT_DELAY_US = 700000  # a beat is reported up to 0.5 s after its peak: wait before judging a breath
MIN_BEATS = 4
PLV_BREATHS = 5  # breaths in the phase-locking (entrainment) estimate
PLV_ENTRAINED = 60  # x100: phase locking at or above this counts as following the pacer
FIT_MIN_X10 = 10  # a fitted swing under 1 bpm is no oscillation at all

# mbpm = milli-breaths per minute, as in vagal.pacer
ABS_MIN_MBPM = 4000
ABS_MAX_MBPM = 7000


def _build_atan():
    t = array("h", [0] * 65)
    for i in range(65):
        t[i] = int(round(10.0 * math.degrees(math.atan(i / 64.0))))
    return t


_ATAN = _build_atan()  # atan(i/64) in 0.1 degree


def atan2_deg(y, x):
    """Angle of (x, y) in whole degrees, -180..180 (0 for the origin); integer only."""
    if x == 0 and y == 0:
        return 0
    ax = -x if x < 0 else x
    ay = -y if y < 0 else y
    while ax >= (1 << 19) or ay >= (1 << 19):
        ax >>= 1
        ay >>= 1
    if ax >= ay:
        r = (ay << 10) // ax  # 0..1024
        i = r >> 4
        a = _ATAN[i]
        if i < 64:
            a += ((_ATAN[i + 1] - a) * (r & 15)) >> 4
    else:
        r = (ax << 10) // ay
        i = r >> 4
        a = _ATAN[i]
        if i < 64:
            a += ((_ATAN[i + 1] - a) * (r & 15)) >> 4
        a = 900 - a
    if x < 0:
        a = 1800 - a
    if y < 0:
        a = -a
    return (a + 5) // 10 if a >= 0 else -((5 - a) // 10)


def cos_deg(d):
    """4096 * cos(d degrees), from the 256-entry table."""
    return COS[((d * 256 + 180) // 360) & 255]


def sin_deg(d):
    return COS[(((d * 256 + 180) // 360) - 64) & 255]


def wrap_deg(d):
    """Angle in -180..179."""
    return (d + 180) % 360 - 180


def phase_to_us(phase, rate_mbpm):
    """Duration of `phase` pacer units (2**24 per breath) at rate_mbpm, in us (small-int safe)."""
    # us = phase * 60e9 / (rate * 2**24) = phase * 3576.28 / rate
    if phase < 262144:
        return phase * 3576 // rate_mbpm
    return (phase >> 6) * 3576 // rate_mbpm * 64


class ResonanceMeter:
    """Per-breath HR swing and phase against the pacer, entrainment, and coherence.

    Feed it: beat(t_us, ibi_us, accepted) for every detected beat, signal(ok) on quality changes,
    pace(now_us, pacer) after every pacer update. Read after `seq` changes: swing_x10 (peak-to-trough
    HR of the beats inside the breath, bpm x10), fit_x10 (peak-to-trough of the fitted sinusoid at the
    breath's frequency, less noisy), phase_deg (HR peak minus end of inhale, degrees, negative =
    HR peaks before the end of inhale), valid, breath_rate_mbpm, breath_start_us.
    """

    def __init__(self):
        self._bt = array("i", [0] * BEATS)  # beat ticks: midpoint of the interval
        self._bh = array("h", [0] * BEATS)  # instantaneous HR x10
        self._bok = bytearray(BEATS)  # 1 accepted, 0 rejected
        self._pc = array("h", [0] * PLV_BREATHS)  # unit phase vectors of recent breaths (x4096)
        self._ps = array("h", [0] * PLV_BREATHS)
        self._pv = bytearray(PLV_BREATHS)  # 1 if that breath was valid
        self.coherence = Coherence()
        self.reset()

    def reset(self):
        """A new session: forget beats, breaths and coherence."""
        for i in range(BEATS):
            self._bok[i] = 0
            self._bt[i] = 0
        for i in range(PLV_BREATHS):
            self._pv[i] = 0
        self._bi = 0
        self._bcount = 0
        self._pi = 0
        self._ok = True
        self._bad_now = False  # signal was bad at some time during the current breath
        self._breaths = -1  # pacer.breaths at the last pace()
        self._phase = 0
        self._have_start = False
        self._s = 0  # start tick of the current breath
        self._ie = 0  # inhale-end tick of the current breath
        self._have_ie = False
        self._pend = False  # a finished breath waits for its late beats
        self._p_s = 0
        self._p_e = 0
        self._p_ie = 0
        self._p_bad = False
        self.seq = 0
        self.valid = False
        self.swing_x10 = 0
        self.fit_x10 = 0
        self.phase_deg = 0
        self.hr_x10 = 0
        self.beats_in_breath = 0
        self.breath_rate_mbpm = 0
        self.breath_start_us = 0
        self.plv_x100 = 0
        self.entrained = -1  # 1 following the pacer, 0 not, -1 unknown (too few valid breaths)
        self.valid_breaths = 0
        self.swing_sum_x10 = 0  # over valid breaths, for a session summary
        self.coherence.reset()

    # --- inputs ---
    def beat(self, t_us, ibi_us, accepted):
        """A detected beat: peak tick, interval (0 for the first) and the HRV cleaner's verdict."""
        if ibi_us <= 0:
            self.coherence.gap()
            return
        hr = 600000000 // ibi_us
        if hr > 32000:
            hr = 32000
        tm = ticks_add(t_us, -(ibi_us >> 1))
        i = self._bi
        self._bt[i] = tm
        self._bh[i] = hr
        self._bok[i] = 1 if accepted else 0
        i += 1
        self._bi = 0 if i == BEATS else i
        if self._bcount < BEATS:
            self._bcount += 1
        if accepted and self._ok:
            self.coherence.point(tm, hr)
        else:
            self.coherence.gap()

    def signal(self, ok):
        """Signal quality changed: ok True when beats can be trusted."""
        self._ok = bool(ok)
        if not ok:
            self._bad_now = True
            self.coherence.gap()

    def pace(self, now_us, pacer):
        """After each pacer update: notice breath starts / inhale ends; judge finished breaths."""
        phase = pacer.phase
        breaths = pacer.breaths
        rate = pacer.rate_mbpm
        split = pacer.split
        if not self._ok:
            self._bad_now = True
        if self._breaths < 0 or breaths < self._breaths:  # first call, or the pacer restarted
            self._breaths = breaths
            self._phase = phase
            self._have_start = False
            self._have_ie = phase >= split
            self._pend = False
            self._bad_now = not self._ok
        elif breaths != self._breaths:
            t = ticks_add(now_us, -phase_to_us(phase, rate))
            if self._have_start and self._have_ie and breaths == self._breaths + 1:
                self._p_s = self._s
                self._p_e = t
                self._p_ie = self._ie
                self._p_bad = self._bad_now
                self._pend = True
            self._s = t
            self._have_start = True
            self._bad_now = not self._ok
            self._have_ie = False
            self._breaths = breaths
            if phase >= split:
                self._ie = ticks_add(now_us, -phase_to_us(phase - split, rate))
                self._have_ie = True
        elif self._phase < split <= phase:
            self._ie = ticks_add(now_us, -phase_to_us(phase - split, rate))
            self._have_ie = True
        self._phase = phase
        if self._pend and ticks_diff(now_us, self._p_e) >= BEAT_DELAY_US:
            self._pend = False
            self._judge()
        self.coherence.update(now_us)

    # --- per breath ---
    def _judge(self):
        s = self._p_s
        period_ms = ticks_diff(self._p_e, s) // 1000
        ie_ms = ticks_diff(self._p_ie, s) // 1000
        bad = self._p_bad
        n = 0
        total = 0
        lo = 32767
        hi = 0
        bt = self._bt
        bh = self._bh
        bok = self._bok
        for i in range(self._bcount):
            d = ticks_diff(bt[i], s) // 1000
            if d < 0 or d >= period_ms:
                continue
            if not bok[i]:
                bad = True
                continue
            h = bh[i]
            n += 1
            total += h
            if h < lo:
                lo = h
            if h > hi:
                hi = h
        self.seq += 1
        self.breath_start_us = s
        self.breath_rate_mbpm = 60000000 // period_ms if period_ms > 0 else 0
        self.beats_in_breath = n
        valid = not bad and n >= MIN_BEATS and period_ms > 0
        mean = total // n if n else 0
        if valid:
            expected = period_ms * mean // 600000  # beats a breath of this length should hold
            if n * 10 < expected * 7:
                valid = False
        self.hr_x10 = mean
        self.swing_x10 = hi - lo if n else 0
        c = 0
        sn = 0
        if n:
            for i in range(self._bcount):
                d = ticks_diff(bt[i], s) // 1000
                if d < 0 or d >= period_ms or not bok[i]:
                    continue
                dev = bh[i] - mean
                if dev > 1000:
                    dev = 1000
                elif dev < -1000:
                    dev = -1000
                idx = (d * 256 // period_ms) & 255
                c += dev * COS[idx]
                sn += dev * COS[(idx - 64) & 255]
        # the fitted sinusoid: amplitude 2|Z|/n, peak-to-trough twice that
        ac = -c if c < 0 else c
        asn = -sn if sn < 0 else sn
        sh = 0
        while (ac >> sh) >= 16384 or (asn >> sh) >= 16384:
            sh += 1
        cc = c >> sh
        ss = sn >> sh
        mag = isqrt(cc * cc + ss * ss) << sh
        self.fit_x10 = (mag // n) // 1024 if n else 0
        peak_deg = atan2_deg(sn, c)
        ie_deg = ie_ms * 360 // period_ms if period_ms > 0 else 0
        self.phase_deg = wrap_deg(peak_deg - ie_deg)
        self.valid = valid
        if valid:
            self.valid_breaths += 1
            self.swing_sum_x10 += self.swing_x10
        # entrainment: phase locking of the last few breaths' HR oscillation to the pacer; a valid
        # breath without oscillation adds a zero vector, so it lowers the locking
        k = self._pi
        self._pv[k] = 1 if valid else 0
        if valid and self.fit_x10 >= FIT_MIN_X10:
            self._pc[k] = cos_deg(self.phase_deg)
            self._ps[k] = sin_deg(self.phase_deg)
        else:
            self._pc[k] = 0
            self._ps[k] = 0
        k += 1
        self._pi = 0 if k == PLV_BREATHS else k
        nv = 0
        sc = 0
        ssn = 0
        for j in range(PLV_BREATHS):
            if self._pv[j]:
                nv += 1
                sc += self._pc[j]
                ssn += self._ps[j]
        if nv >= PLV_BREATHS - 1:
            self.plv_x100 = isqrt(sc * sc + ssn * ssn) * 100 // (nv * 4096)
            self.entrained = 1 if self.plv_x100 >= PLV_ENTRAINED else 0
        else:
            self.plv_x100 = 0
            self.entrained = -1


DEFAULT_RATES = (6500, 6000, 5500, 5000, 4500)
PHASE_TIE_DEG = 10  # mean phases closer than this count as equal
PHASE_FIT_DEG = 70  # rates whose mean phase is within this enter the phase line
REFINE_SWING = 1  # Assessment(refine=...) bits
REFINE_PHASE = 2
MODE_PHASE = 1  # Tuner(mode=...)
MODE_PROBE = 2


class Assessment:
    """The stepped protocol. start(now_us); then update(now_us) after each meter.pace(); read rate_mbpm.

    Each step runs step_s seconds at one rate; the first settle_breaths breaths that begin after the
    step starts are skipped (the body follows a new rate within a breath or two); invalid breaths
    (poor signal, rejected beats) are ignored and the step is extended, up to twice its length, until
    min_breaths valid breaths are in. Rule (docs/resonance.md): among rates with >= 3 valid breaths,
    those whose mean swing is within tie_pct of the largest are candidates; the one whose mean phase
    is nearest 0 deg wins (phases within 10 deg count as equal; then higher coherence). If refine,
    the result moves toward the larger neighbour by a parabola through the swings around it (at most
    half a step, rounded to 50 mbpm).
    """

    IDLE = 0
    RUNNING = 1
    DONE = 2
    FAILED = 3

    def __init__(self, meter, rates=DEFAULT_RATES, step_s=120, settle_breaths=1, min_breaths=6,
                 tie_pct=10, refine=REFINE_SWING | REFINE_PHASE, use_fit=True):
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
        self.step_ms = step_s * 1000
        self.settle_breaths = settle_breaths
        self.min_breaths = min_breaths
        self.tie_pct = tie_pct
        self.refine = refine
        self.use_fit = use_fit
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
        self._skip = self.settle_breaths
        self._coh_ok_after = 0

    def update(self, now_us):
        """Advance the protocol; True when rate_mbpm changed or the assessment finished."""
        if self.state != Assessment.RUNNING:
            return False
        m = self.meter
        dt = ticks_diff(now_us, self._last_us)
        self._last_us = now_us
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

    def metric_x10(self, i):
        """The swing the rule compares: the fitted swing if use_fit, else the beats' max - min."""
        return self.mean_fit_x10(i) if self.use_fit else self.mean_swing_x10(i)

    def mean_phase_deg(self, i):
        return atan2_deg(self.phase_s[i], self.phase_c[i]) if self.n[i] else 0

    def mean_coherence_x100(self, i):
        return self.coh_sum[i] // self.coh_n[i] if self.coh_n[i] else INVALID

    def table(self):
        """Rows (rate_mbpm, valid_breaths, swing_x10, fit_x10, phase_deg, coherence_x100)."""
        rows = []
        for i in range(len(self.rates)):
            rows.append((self.rates[i], self.n[i], self.mean_swing_x10(i), self.mean_fit_x10(i),
                         self.mean_phase_deg(i), self.mean_coherence_x100(i)))
        return rows

    def choose(self):
        """Index of the chosen tested rate by the documented rule, or -1 without enough data."""
        best = -1
        top = 0
        for i in range(len(self.rates)):
            if self.n[i] >= 3 and self.metric_x10(i) > top:
                top = self.metric_x10(i)
                best = i
        if best < 0:
            return -1
        floor = top - top * self.tie_pct // 100
        pick = best
        for i in range(len(self.rates)):
            if i == pick or self.n[i] < 3 or self.metric_x10(i) < floor:
                continue
            a = abs(self.mean_phase_deg(i))
            b = abs(self.mean_phase_deg(pick))
            if a + PHASE_TIE_DEG < b:
                pick = i
            elif a <= b + PHASE_TIE_DEG and b <= a + PHASE_TIE_DEG:
                ca = self.mean_coherence_x100(i)
                cb = self.mean_coherence_x100(pick)
                if ca > cb or (ca == cb and self.metric_x10(i) > self.metric_x10(pick)):
                    pick = i
        return pick

    def _swing_vertex(self):
        """Rate of the largest swing, moved to the vertex of the parabola through it and its
        neighbours (at most half a step); -1 without data."""
        i = -1
        top = -1
        for k in range(len(self.rates)):
            if self.n[k] >= 3 and self.metric_x10(k) > top:
                top = self.metric_x10(k)
                i = k
        if i < 0:
            return -1
        r = self.rates[i]
        if i == 0 or i == len(self.rates) - 1 or self.n[i - 1] < 3 or self.n[i + 1] < 3:
            return r
        ya = self.metric_x10(i - 1)
        yb = self.metric_x10(i + 1)
        den = ya - 2 * top + yb
        if den >= 0:
            return r
        h = (self.rates[i + 1] - self.rates[i - 1]) // 2  # signed (rates may run either way)
        off = h * (ya - yb) // (2 * den)
        lim = abs(h) // 2
        if off > lim:
            off = lim
        elif off < -lim:
            off = -lim
        return r + off

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
        lo = self.rates[0]
        hi = lo
        for k in range(len(self.rates)):
            r = self.rates[k]
            if r < lo:
                lo = r
            if r > hi:
                hi = r
        if x0 < lo - 250:
            x0 = lo - 250
        elif x0 > hi + 250:
            x0 = hi + 250
        return x0

    def _estimate(self, pick):
        """The result: the mean of the swing vertex and the phase zero crossing (see docstring)."""
        if not self.refine:
            return self.rates[pick]
        total = 0
        count = 0
        if self.refine & REFINE_SWING:
            v = self._swing_vertex()
            if v > 0:
                total += v
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


class Tuner:
    """Closed-loop practice: keeps nudging the rate toward the largest swing, never jumping.

    mode MODE_PHASE (default): the pacer stays at the centre rate; every probe_breaths valid breaths
    the mean HR/pacer phase is taken (a lag, phase > 0, means the rate is above resonance: the swing
    grows by slowing down, a lead by speeding up) and the centre moves by -gain_phase * phase.
    mode MODE_PROBE: the pacer alternates centre + probe and centre - probe for probe_breaths valid
    breaths each (the first settle_breaths at each side skipped); after each side the mean swing of
    the last two sides is compared and the centre moves toward the better side by gain * relative
    difference. Either way a move is at most speed_mbpm_min per minute of elapsed time, inside
    [start - span, start + span] and 4000..7000 mbpm, and the pacer glides (phase-continuous).
    enabled False parks the pacer at the centre.
    """

    def __init__(self, meter, start_mbpm, mode=1, probe_mbpm=200, probe_breaths=3,
                 settle_breaths=1, speed_mbpm_min=150, span_mbpm=1000, gain_mbpm=1500,
                 gain_phase=8, use_fit=True):
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
            self._move(-atan2_deg(self._ps, self._pc) * self.gain_phase)
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
