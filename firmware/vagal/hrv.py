"""Beat-interval cleaning and heart-rate variability over a sliding window, in fixed point.

Cleaning follows the rules HeartPy and Kubios use: an interval must be physiological (300-2000 ms,
30-200 bpm), must not differ from the previous accepted one by more than 20 % (Malik's rule) or
350 ms, and must lie within the window mean +- max(30 %, 300 ms) once the window holds a few
intervals. An ectopic beat gives a short interval followed by a long one; both fail these rules and
are left out (a premature beat only 30 % early, e.g. 550 ms after 800 ms intervals, passes the 350 ms
rule but not the 20 % one). Beat-to-beat changes of sinus rhythm stay well inside 20 %, even with the
large heart-rate swings of slow breathing (about 10 % per beat at 30 bpm peak-to-trough). RMSSD uses only pairs
of consecutive accepted intervals, so a rejected beat never creates a false difference.

Two rules keep one odd beat from spoiling the ones after it, because the jump rule judges each
interval against the last accepted one:
- The compensatory pause. A premature beat 20 % early is rejected, but its pause is often not fully
  compensatory (ECG of the NeuroKit2 recording at 258 s: 699, 550, 800 ms), so it passed the jump
  rule and became the reference that the next normal intervals (620, 629, 589 ms) then failed. An
  interval right after one rejected as short, and longer than the last accepted one by at least
  half that shortfall, is that pause: rejected, and the reference stays the last normal interval.
- Recovery. Right after a rejection, an interval that fails the jump rule is still accepted when
  it lies within 15 % of the window mean, the rhythm established over the last 32 beats (BIDMC 01
  at 415 s: 663, 536, 463 ms passed step by step, then 888 ms was rejected and eight normal
  663 ms intervals failed against 463 until the window restarted).

Work per beat is bounded by the window length (at most 64), nothing is allocated, and all
intermediates stay below 2**30: differences are squared in units of 100 us, deviations in ms.
"""

from array import array

IBI_MIN_US = 300000
IBI_MAX_US = 2000000
JUMP_MAX_US = 350000
JUMP_MAX_PCT = 20
RECOVER_PCT = 15        # after a rejection: accepted within this much of the window mean


def isqrt(n):
    """Integer square root (floor) of a non-negative small int, by Newton's method."""
    if n <= 0:
        return 0
    x = n
    y = (x + 1) >> 1
    while y < x:
        x = y
        y = (x + n // x) >> 1
    return x


class HRV:
    """Sliding-window HR, RMSSD and SDNN over cleaned intervals."""

    def __init__(self, window=32):
        if window < 4 or window > 64:
            raise ValueError("HRV window must hold 4..64 intervals")
        self.window = window
        self._ibi = array("i", [0] * window)
        self._dsq = array("i", [0] * window)   # squared successive differences (100 us units)
        self.reset()

    def reset(self):
        for i in range(self.window):
            self._ibi[i] = 0
            self._dsq[i] = 0
        self._i = 0
        self._j = 0
        self.count = 0
        self._nd = 0
        self._sum_ms = 0
        self._sum_dsq = 0
        self._prev = 0        # previous accepted interval, 0 after a gap or a rejection
        self._last = 0        # last accepted interval, kept across rejections for the jump rule
        self.hr_x10 = 0
        self.rmssd_us = 0
        self.sdnn_us = 0
        self.accepted = 0
        self.rejected = 0
        self._run = 0         # rejections in a row
        self._short = 0       # how much the last interval, rejected as premature, fell short of _last

    def gap(self):
        """The beat sequence was interrupted (bad signal): the next interval has no predecessor."""
        self._prev = 0

    def add(self, ibi_us):
        """Offer one interval. Returns True if accepted into the window."""
        ok = IBI_MIN_US <= ibi_us <= IBI_MAX_US
        short = 0
        mean = 0
        if self.count >= 4:
            mean = self._sum_ms * 1000 // self.count
        if ok and self._last:
            d = ibi_us - self._last
            lim = self._last * JUMP_MAX_PCT // 100
            if lim > JUMP_MAX_US:
                lim = JUMP_MAX_US
            if self._short and d * 2 >= self._short:
                ok = False                  # the compensatory pause after a premature beat
            elif d > lim or d < -lim:
                ok = False
                if d < 0:
                    short = -d
                # right after a rejection: back to the established rhythm counts as normal
                if self._run and mean:
                    e = ibi_us - mean
                    tol = mean * RECOVER_PCT // 100
                    if -tol <= e <= tol:
                        ok = True
                        short = 0
        if ok and mean:
            tol = mean * 3 // 10
            if tol < 300000:
                tol = 300000
            d = ibi_us - mean
            if d > tol or d < -tol:
                ok = False
        self._short = short
        if not ok:
            self.rejected += 1
            self._prev = 0
            # after many rejections in a row the rhythm itself changed: start the window afresh
            self._run += 1
            if self._run >= 8:
                self.reset_window()
            return False
        self._run = 0
        self.accepted += 1
        ms = ibi_us // 1000
        w = self.window
        if self.count == w:
            self._sum_ms -= self._ibi[self._i]
        else:
            self.count += 1
        self._ibi[self._i] = ms
        self._sum_ms += ms
        self._i += 1
        if self._i == w:
            self._i = 0
        if self._prev:
            d = (ibi_us - self._prev) // 100
            dsq = d * d
            if self._nd == w:
                self._sum_dsq -= self._dsq[self._j]
            else:
                self._nd += 1
            self._dsq[self._j] = dsq
            self._sum_dsq += dsq
            self._j += 1
            if self._j == w:
                self._j = 0
        self._prev = ibi_us
        self._last = ibi_us
        self._update()
        return True

    def reset_window(self):
        self.count = 0
        self._nd = 0
        self._sum_ms = 0
        self._sum_dsq = 0
        self._i = 0
        self._j = 0
        self._last = 0
        self._run = 0
        self._short = 0

    def _update(self):
        n = self.count
        if n < 2:
            self.hr_x10 = 0
            self.sdnn_us = 0
            self.rmssd_us = 0
            return
        mean_ms = self._sum_ms // n
        self.hr_x10 = 600000 // mean_ms if mean_ms else 0
        s = 0
        for k in range(n):
            d = self._ibi[k] - mean_ms
            s += d * d
        # variance in ms^2 (< 3e6); x100 before the root gives 100 us resolution within range
        self.sdnn_us = isqrt(s // (n - 1) * 100) * 100
        if self._nd:
            # mean square in (100 us)^2 (< 1.3e7); x64 before the root gives 12.5 us resolution
            self.rmssd_us = isqrt(self._sum_dsq // self._nd * 64) * 100 // 8
        else:
            self.rmssd_us = 0
