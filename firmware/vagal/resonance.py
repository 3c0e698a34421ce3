"""Resonance breathing in fixed point: per-breath heart-rate swing and phase against the pacer.

The pacer's own phase is the breathing reference: the meter records when each paced breath began
and when its inhale ended, and measures the heart-rate response inside it. Three objects share one
ResonanceMeter and tell the pacer which rate to use (each has rate_mbpm and update(now_us)):
vagal.assessment.Assessment (the stepped protocol), vagal.tuner.Tuner (closed-loop practice)
and vagal.winddown.WindDown (the bedside ramp). See docs/resonance.md for the rules and numbers.

Everything on the per-beat / per-update path is integer arithmetic on preallocated arrays, with
every intermediate |x| < 2**30 (ticks are converted to ms before multiplying).
"""

import math
from array import array

from vagal.coherence import COS, Coherence, INVALID
from vagal.hrv import isqrt
from vagal.ticks import ticks_add, ticks_diff

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


_BEATS = const(64)  # beats remembered: > one 15 s breath at 200 bpm
# A beat counts at the midpoint of its interval (up to 0.75 s before its peak at 40 bpm) and is
# reported up to 0.5 s after its peak: wait this long after a breath ends before judging it.
BEAT_DELAY_US = const(1300000)
# A breath is judged within ~22 s of its start (a 20 s breath, then BEAT_DELAY_US), ~80 s after a
# minute's stall: a controller's start tick older than this can move up to it without changing a
# verdict, and so stays within ticks_diff's reach (2**29 us, 9 min) however long a step or block runs
JUDGED_WITHIN_US = const(120000000)
_MIN_BEATS = const(4)
# A breath keeps its verdict with up to this many beats the cleaner rejected (an ectopic beat
# rejects two intervals); the coverage rule (>= 70 % of the beats the breath should hold) still applies.
_MAX_REJECTED = const(2)
_PLV_BREATHS = const(5)  # breaths in the phase-locking (entrainment) estimate
_PLV_ENTRAINED = const(60)  # x100: phase locking at or above this counts as following the pacer
FIT_MIN_X10 = const(10)  # a fitted swing under 1 bpm is no oscillation at all

# mbpm = milli-breaths per minute, as in vagal.pacer
ABS_MIN_MBPM = const(4000)
ABS_MAX_MBPM = const(7000)


def _build_atan():
    t = array("h", [0] * 65)
    for i in range(65):
        t[i] = int(round(10.0 * math.degrees(math.atan(i / 64.0))))
    return t


_ATAN = _build_atan()  # atan(i/64) in 0.1 degree
del _build_atan


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


def judged_start(t0_us, now_us):
    """A controller's start tick (a tuning block, an assessment step), moved up to now -
    JUDGED_WITHIN_US when older: no breath that old is still to be judged, and the tick stays
    within ticks_diff's reach however long the block or step runs."""
    if ticks_diff(now_us, t0_us) > JUDGED_WITHIN_US:
        return ticks_add(now_us, -JUDGED_WITHIN_US)
    return t0_us


def curve_peak(rates, levels, weights, count, k=-1, dk=0):
    """Peak (mbpm) of the resonance curve fitted to swing levels at rates, or -1 (no peak).

    The swing follows A(f) = A_r / sqrt(1 + Q^2 (f/f_r - f_r/f)^2), so 1/A^2 = c0 + c1 g + c2/g with
    g = (f / 5.5)^2 exactly: a weighted least-squares fit that is linear in (c0, c1, c2), peaking at
    g^2 = c2/c1, read within 3.9..7.8 breaths/min. Other shapes (a baroreflex loop's skewed hump) are
    close to it near their peak. Uses the first `count` entries with weights[j] >= 3 (breaths);
    weight: breaths (at most 16) x (level / largest)^2 (1/A^2 magnifies the noise of small swings);
    levels under a quarter of the largest count as a quarter. Entry k reads dk (x10) larger. -1
    with fewer than 3 points or without a peak (c1 or c2 <= 0). Integers only, no allocation.
    """
    top = 0
    for j in range(count):
        if weights[j] >= 3:
            v = levels[j] + (dk if j == k else 0)
            if v > top:
                top = v
    if top <= 0:
        return -1
    m0 = m1 = m2 = mw = 0
    npts = 0
    caa = cbb = cab = cay = cby = 0
    for pass_ in (0, 1):  # weighted means, then the centred sums
        for j in range(count):
            n = weights[j]
            if n < 3:
                continue
            r = rates[j] // 10
            g = r * r * 256 // 302500  # g = (f / 5.5/min)^2, x256
            fit = levels[j] + (dk if j == k else 0)
            if fit < top // 4:
                fit = top // 4
            q = top * 64 // fit
            p = fit * 8 // top
            a = g - 256
            b = 65536 // g - 256
            y = q * q // 16
            w = (n if n < 16 else 16) * p * p // 16
            if pass_ == 0:
                m0 += w * a
                m1 += w * b
                m2 += w * y
                mw += w
                npts += 1
            else:
                a -= m0 // mw
                b -= m1 // mw
                y -= m2 // mw
                caa += w * a * a
                cbb += w * b * b
                cab += w * a * b
                cay += w * a * y
                cby += w * b * y
        if npts < 3 or mw <= 0:
            return -1
    while caa >= 16384 or cbb >= 16384 or cab >= 16384 or -cab >= 16384 or cay >= 16384 \
            or -cay >= 16384 or cby >= 16384 or -cby >= 16384:
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
    ratio = n2 * 65536 // n1
    ratio = 16384 if ratio < 16384 else (262143 if ratio > 262143 else ratio)
    root4 = isqrt(isqrt(ratio * 4096) * 16384)  # (c2/c1)^(1/4), x16384
    return 5500 * root4 // 16384


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
    HR peaks before the end of inhale), valid, breath_rate_mbpm, breath_start_us, breath_end_us.
    """

    def __init__(self):
        self._bt = array("i", [0] * _BEATS)  # beat ticks: midpoint of the interval
        self._bh = array("h", [0] * _BEATS)  # instantaneous HR x10
        # 1 accepted, 0 rejected by the cleaner, 2 accepted but its interval began at a rejected beat
        self._bok = bytearray(_BEATS)
        self._pc = array("h", [0] * _PLV_BREATHS)  # unit phase vectors of recent breaths (x4096)
        self._ps = array("h", [0] * _PLV_BREATHS)
        self._pv = bytearray(_PLV_BREATHS)  # 1 if that breath was valid
        self.coherence = Coherence()
        self.reset()

    def reset(self):
        """A new session: forget beats, breaths and coherence."""
        for i in range(_BEATS):
            self._bok[i] = 0
            self._bt[i] = 0
        for i in range(_PLV_BREATHS):
            self._pv[i] = 0
        self._bi = 0
        self._bcount = 0
        self._after_reject = False
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
        self._x1 = 0  # _solve2's result
        self._x2 = 0
        self.seq = 0
        self.valid = False
        self.swing_x10 = 0
        self.fit_x10 = 0
        self.phase_deg = 0
        self.hr_x10 = 0
        self.beats_in_breath = 0
        self.breath_rate_mbpm = 0
        self.breath_start_us = 0
        self.breath_end_us = 0
        self.plv_x100 = 0
        self.entrained = -1  # 1 following the pacer, 0 not, -1 unknown (too few valid breaths)
        self.valid_breaths = 0
        self.swing_sum_x10 = 0  # over valid breaths, for a session summary
        self.coherence.reset()

    # --- inputs ---
    def beat(self, t_us, ibi_us, accepted):
        """A detected beat: peak tick, interval (0 for the first) and the HRV cleaner's verdict."""
        if ibi_us <= 0:
            self._after_reject = False
            self.coherence.gap()
            return
        hr = 600000000 // ibi_us
        if hr > 32000:
            hr = 32000
        tm = ticks_add(t_us, -(ibi_us >> 1))
        i = self._bi
        self._bt[i] = tm
        self._bh[i] = hr
        # the interval after a rejected one begins at a suspect beat: the compensatory pause after
        # an ectopic beat (which the 20 % rule can pass) or the far side of a detector slip
        self._bok[i] = (2 if self._after_reject else 1) if accepted else 0
        self._after_reject = not accepted
        i += 1
        self._bi = 0 if i == _BEATS else i
        if self._bcount < _BEATS:
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
            # a breath that began within this update (as after pacer.start) counts from its start
            self._have_start = phase < split
            self._s = ticks_add(now_us, -phase_to_us(phase, rate))
            self._have_ie = False
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
    def _solve2(self, a11, a12, a22, b1, b2):
        """Solve [[a11, a12], [a12, a22]] x = (b1, b2) in integers into self._x1, self._x2 (x 1024),
        0 and 0 if the matrix is singular. Terms are scaled to 14 bits before multiplying, so every
        product stays below 2**30; a result is an amplitude in 0.1 bpm, bounded to +-8191. Results go
        to attributes, not a tuple, so judging a breath allocates nothing."""
        ks = 0
        while a11 >> ks >= 16384 or a22 >> ks >= 16384 or abs(a12) >> ks >= 16384:
            ks += 1
        kd = 0
        while abs(b1) >> kd >= 16384 or abs(b2) >> kd >= 16384:
            kd += 1
        a11 >>= ks
        a22 >>= ks
        a12 = a12 >> ks if a12 >= 0 else -((-a12) >> ks)
        b1 = b1 >> kd if b1 >= 0 else -((-b1) >> kd)
        b2 = b2 >> kd if b2 >= 0 else -((-b2) >> kd)
        det = a11 * a22 - a12 * a12
        if det <= 0:
            self._x1 = self._x2 = 0
            return
        n1 = a22 * b1 - a12 * b2  # |n| < 2**29
        n2 = a11 * b2 - a12 * b1
        e = kd - ks + 10  # x * 1024 = n / det * 2**(kd - ks) * 1024
        while e > 0 and -(1 << 27) < n1 < (1 << 27) and -(1 << 27) < n2 < (1 << 27):
            n1 <<= 1
            n2 <<= 1
            e -= 1
        if e > 0:
            det >>= e
            if det == 0:
                self._x1 = self._x2 = 0
                return
        elif e < 0:
            n1 = n1 >> -e if n1 >= 0 else -((-n1) >> -e)
            n2 = n2 >> -e if n2 >= 0 else -((-n2) >> -e)
        x1 = n1 // det if n1 >= 0 else -((-n1) // det)
        x2 = n2 // det if n2 >= 0 else -((-n2) // det)
        # a nearly singular matrix (beats bunched at one angle) can give anything: bound it so the
        # caller's x1*x1 + x2*x2 stays a small int (8191 = a swing of 1638 bpm, never a real one)
        self._x1 = min(max(x1, -8191), 8191)
        self._x2 = min(max(x2, -8191), 8191)

    def _judge(self):
        s = self._p_s
        period_ms = ticks_diff(self._p_e, s) // 1000
        ie_ms = ticks_diff(self._p_ie, s) // 1000
        bad = self._p_bad
        rejected = 0
        n = 0
        total = 0
        sum_c = 0  # sums of cos and sin of the beats' pacer angles (x4096), for centring
        sum_s = 0
        lo = 32767
        hi = 0
        bt = self._bt
        bh = self._bh
        bok = self._bok
        for i in range(self._bcount):
            d = ticks_diff(bt[i], s) // 1000
            if d < 0 or d >= period_ms:
                continue
            f = bok[i]
            if f != 1:
                if f == 0:
                    rejected += 1
                continue
            h = bh[i]
            n += 1
            total += h
            idx = (d * 256 // period_ms) & 255
            sum_c += COS[idx]
            sum_s += COS[(idx - 64) & 255]
            if h < lo:
                lo = h
            if h > hi:
                hi = h
        self.seq += 1
        self.breath_start_us = s
        self.breath_end_us = self._p_e
        self.breath_rate_mbpm = 60000000 // period_ms if period_ms > 0 else 0
        self.beats_in_breath = n
        valid = not bad and rejected <= _MAX_REJECTED and n >= _MIN_BEATS and period_ms > 0
        mean = total // n if n else 0
        if valid:
            expected = period_ms * mean // 600000  # beats a breath of this length should hold
            if n * 10 < expected * 7:
                valid = False
        self.hr_x10 = mean
        self.swing_x10 = hi - lo if n else 0
        # least-squares sinusoid hr = mean + a cos(angle) + b sin(angle) through the accepted beats.
        # Beats are not evenly spread over the breath (more of them where the heart is fast, none
        # where the cleaner rejected one), so a plain DFT would under-read the swing; centring the
        # regressors and solving the 2x2 normal equations does not.
        c = 0
        sn = 0
        scc = 0
        sss = 0
        scs = 0
        if n:
            mc = sum_c // n
            ms = sum_s // n
            for i in range(self._bcount):
                d = ticks_diff(bt[i], s) // 1000
                if d < 0 or d >= period_ms or bok[i] != 1:
                    continue
                dev = bh[i] - mean
                if dev > 1000:
                    dev = 1000
                elif dev < -1000:
                    dev = -1000
                idx = (d * 256 // period_ms) & 255
                xc = (COS[idx] - mc) >> 2  # x1024, |xc| <= 2048
                xs = (COS[(idx - 64) & 255] - ms) >> 2
                c += dev * xc
                sn += dev * xs
                scc += xc * xc
                sss += xs * xs
                scs += xc * xs
        self._solve2(scc, scs, sss, c, sn)
        a = self._x1
        b = self._x2
        # a, b: the cos and sin amplitudes in 0.1 bpm; peak-to-trough is twice their magnitude
        self.fit_x10 = 2 * isqrt(a * a + b * b)
        peak_deg = atan2_deg(b, a)
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
        self._pi = 0 if k == _PLV_BREATHS else k
        nv = 0
        sc = 0
        ssn = 0
        for j in range(_PLV_BREATHS):
            if self._pv[j]:
                nv += 1
                sc += self._pc[j]
                ssn += self._ps[j]
        if nv >= _PLV_BREATHS - 1:
            self.plv_x100 = isqrt(sc * sc + ssn * ssn) * 100 // (nv * 4096)
            self.entrained = 1 if self.plv_x100 >= _PLV_ENTRAINED else 0
        else:
            self.plv_x100 = 0
            self.entrained = -1
