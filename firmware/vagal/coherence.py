"""HRV coherence in fixed point: the HeartMath-style ratio on an evenly resampled heart-rate series.

Heart rate is resampled at 2 Hz by linear interpolation between beats; the last 64 s (128 points)
are mean-removed, Hann-windowed and transformed by a DFT evaluated only at the bins inside
0.04-0.26 Hz, on a grid of 1/128 Hz (the 128 points zero-padded to 256, so the peak is placed to
within 0.004 Hz). coherence = power within +-2 bins (+-0.0156 Hz, the 0.030 Hz band) of the largest
bin / power in the rest of the band, x100. It is recomputed every 5 s, a few bins per call so no
single call does more than _BINS_PER_STEP * 128 multiply-adds.

Ranges (all |x| < 2**30): windowed deviations are clamped to +-1023 (HR x10, i.e. +-102 bpm), the
cos/sin table is scaled to 4096, so a bin's sum over 128 points is < 5.4e8; before squaring, every
bin is shifted right until its largest component is < 2**12, so the 28 powers sum to < 2**30.
"""

import math
from array import array

from vagal.ticks import ticks_add, ticks_diff

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


N = const(128)  # points in the window: 64 s at 2 Hz
STEP_US = const(500000)  # resampling period
_UPDATE_US = const(5000000)  # recompute every 5 s
PAD = const(256)  # DFT length (zero-padded): bin m is m / (PAD * 0.5 s) = m / 128 Hz
BIN_LO = const(6)  # 0.0469 Hz, the first bin >= 0.04 Hz
_BIN_HI = const(33)  # 0.2578 Hz, the last bin <= 0.26 Hz
NBINS = const(_BIN_HI - BIN_LO + 1)
PEAK_HALF = const(2)  # peak band = peak bin +- 2 (+-0.0156 Hz)
_BINS_PER_STEP = const(4)
_TRIG_ONE = const(4096)
_MAX_SPAN_US = const(3000000)  # interpolating over a longer gap between good beats marks points bad
_MAX_BAD = const(12)  # a window with more bad points than this (~10 %) gives no coherence
_COH_MAX = const(9999)  # x100 cap (a pure sinusoid gives a ratio of ~40 = 4000)
INVALID = const(-1)


def _build_cos():
    t = array("h", [0] * PAD)
    for i in range(PAD):
        t[i] = int(round(_TRIG_ONE * math.cos(2.0 * math.pi * i / PAD)))
    return t


def _build_hann():
    t = array("h", [0] * N)
    for i in range(N):
        t[i] = int(round(256 * 0.5 * (1.0 - math.cos(2.0 * math.pi * i / N))))
    return t


try:  # viper where the port compiles it (tests/portable/test_native.py checks it against the loop)
    from vagal.native import dft_bin as _dft_bin
except (ImportError, SyntaxError, ValueError):
    _dft_bin = None
if N != 128:
    _dft_bin = None  # native.dft_bin sums 128 points

COS = _build_cos()  # COS[i] = 4096 cos(2 pi i / 256); sin(x) = COS[(i - 64) & 255]
HANN = _build_hann()  # periodic Hann, scale 256
del _build_cos, _build_hann  # built once: their code need not stay in memory


def bin_mhz(m):
    """Frequency of DFT bin m in millihertz."""
    return m * 1000 // 128


class Coherence:
    """Feed point(t_us, hr_x10) per good beat (gap() on bad signal), update(now_us) often."""

    def __init__(self, bins_per_step=_BINS_PER_STEP):
        self.bins_per_step = bins_per_step
        self._hr = array("h", [0] * N)  # resampled HR x10, ring
        self._bad = bytearray(N)  # 1 where the point was interpolated over a gap
        self._x = array("h", [0] * N)  # snapshot: windowed deviations, oldest first
        self._re = array("i", [0] * NBINS)
        self._im = array("i", [0] * NBINS)
        self.power = array("i", [0] * NBINS)  # scaled power per bin, valid after each result
        self.reset()

    def reset(self):
        """Forget the series (e.g. a new session)."""
        self._i = 0  # next write position
        self.filled = 0  # points written since reset (saturates at N)
        self._nbad = 0  # bad points in the ring
        self._have = False  # a last good point exists
        self._last_t = 0
        self._last_v = 0
        self._next_t = 0  # tick of the next grid point
        self._gap = False
        self._started = False
        self._last_run = 0
        self._bin = -1  # -1 idle, else next bin to compute
        self.coherence_x100 = INVALID
        self.peak_bin = 0
        self.peak_mhz = 0
        self.seq = 0  # increments with every finished computation (valid or not)

    def gap(self):
        """The beat sequence was interrupted: points until the next good beat are marked bad."""
        self._gap = True

    def _push(self, v, bad):
        i = self._i
        if self.filled == N:
            self._nbad -= self._bad[i]
        else:
            self.filled += 1
        self._hr[i] = v
        self._bad[i] = bad
        self._nbad += bad
        i += 1
        self._i = 0 if i == N else i

    def point(self, t_us, hr_x10):
        """One good heart-rate point (an accepted beat's rate at its interval's midpoint)."""
        if hr_x10 > 32000:
            hr_x10 = 32000
        if not self._have:
            self._have = True
            self._last_t = t_us
            self._last_v = hr_x10
            self._next_t = t_us
            self._gap = False
            return
        span = ticks_diff(t_us, self._last_t)
        if span <= 0:
            return  # out of order: ignore
        v0 = self._last_v
        if span > N * STEP_US:
            # longer than the whole window (a stall, a finger off): the window is all gap, its
            # last N grid points bad and flat at the new rate (interpolating over minutes means nothing)
            self._next_t = ticks_add(t_us, -(N - 1) * STEP_US)
            v0 = hr_x10
        bad = 1 if (self._gap or span > _MAX_SPAN_US) else 0
        span_ms = span // 1000
        if span_ms < 1:
            span_ms = 1
        dv = hr_x10 - v0
        while ticks_diff(t_us, self._next_t) >= 0:
            k = ticks_diff(self._next_t, self._last_t) // 1000
            if k < 0:
                k = 0
            self._push(v0 + dv * k // span_ms, bad)
            self._next_t = ticks_add(self._next_t, STEP_US)
        self._last_t = t_us
        self._last_v = hr_x10
        self._gap = False

    def update(self, now_us):
        """Start a computation every 5 s and advance a running one by a few bins. True on a result."""
        if self._have and ticks_diff(now_us, self._last_t) > N * STEP_US:
            # no good beat for longer than the window: all of it is gap (no stale ratio), and the
            # last beat's tick goes before it ages past ticks_diff's reach (2**29 us, 9 min)
            self._have = False
            for _ in range(N):
                self._push(self._last_v, 1)
        if self._bin < 0:
            if self.filled < N:
                return False
            if self._started and ticks_diff(now_us, self._last_run) < _UPDATE_US:
                return False
            self._started = True
            self._last_run = now_us
            if self._nbad > _MAX_BAD:
                self.coherence_x100 = INVALID
                self.seq += 1
                return True
            self._snapshot()
            self._bin = 0
            return False
        end = self._bin + self.bins_per_step
        if end > NBINS:
            end = NBINS
        for b in range(self._bin, end):
            self._dft_bin(b)
        if end < NBINS:
            self._bin = end
            return False
        self._bin = -1
        self._ratio()
        self.seq += 1
        return True

    def compute_now(self):
        """Run a whole computation at once (tests, host analysis); returns coherence_x100."""
        if self.filled < N or self._nbad > _MAX_BAD:
            self.coherence_x100 = INVALID
            return INVALID
        self._snapshot()
        for b in range(NBINS):
            self._dft_bin(b)
        self._bin = -1
        self._ratio()
        self.seq += 1
        return self.coherence_x100

    def _snapshot(self):
        hr = self._hr
        s = 0
        for k in range(N):
            s += hr[k]
        mean = (s + (N >> 1)) // N
        j = self._i  # oldest point
        x = self._x
        for k in range(N):
            d = hr[j] - mean
            if d > 1023:
                d = 1023
            elif d < -1023:
                d = -1023
            x[k] = (d * HANN[k]) >> 8
            j += 1
            if j == N:
                j = 0

    def _dft_bin(self, b):
        if _dft_bin is not None:   # the same sums in viper (the RP2040: ~5 ms -> ~0.1 ms a step)
            _dft_bin(self._x, COS, BIN_LO + b, self._re, self._im, b)
            return
        m = BIN_LO + b
        x = self._x
        cos = COS
        re = 0
        im = 0
        idx = 0
        for k in range(N):
            v = x[k]
            re += v * cos[idx]
            im -= v * cos[(idx - 64) & 255]
            idx = (idx + m) & 255
        self._re[b] = re
        self._im[b] = im

    def _ratio(self):
        re = self._re
        im = self._im
        big = 0
        for b in range(NBINS):
            v = re[b]
            if v < 0:
                v = -v
            if v > big:
                big = v
            v = im[b]
            if v < 0:
                v = -v
            if v > big:
                big = v
        shift = 0
        while (big >> shift) >= 4096:
            shift += 1
        power = self.power
        total = 0
        best = 0
        best_b = 0
        for b in range(NBINS):
            r = re[b] >> shift
            i = im[b] >> shift
            p = r * r + i * i
            power[b] = p
            total += p
            if p > best:
                best = p
                best_b = b
        lo = best_b - PEAK_HALF
        hi = best_b + PEAK_HALF
        if lo < 0:
            lo = 0
        if hi > NBINS - 1:
            hi = NBINS - 1
        peak = 0
        for b in range(lo, hi + 1):
            peak += power[b]
        rest = total - peak
        self.peak_bin = BIN_LO + best_b
        self.peak_mhz = bin_mhz(BIN_LO + best_b)
        while peak >= (1 << 23):
            peak >>= 1
            rest >>= 1
        if peak == 0:
            self.coherence_x100 = 0
        elif rest <= 0 or peak * 100 // rest > _COH_MAX:
            self.coherence_x100 = _COH_MAX
        else:
            self.coherence_x100 = peak * 100 // rest
