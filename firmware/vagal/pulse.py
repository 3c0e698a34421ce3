"""Streaming fixed-point beat detector for the finger PPG, with signal quality as a first-class output.

Method: the slope-sum function (SSF) of Zong et al. (CinC 2003; PhysioNet qppg/wabp), which Charlton
et al. 2022 (Physiol. Meas. 43:085007) rank among the best open beat detectors, chosen because it is
causal, needs only additions and comparisons (no squaring, unlike Elgendi's energy detector, so its
range stays far below 2**30 with 16-bit input), and its upstroke emphasis ignores the dicrotic wave.

Per sample:  x -> two cascaded moving averages (low-pass, ~16 Hz)  -> first difference
             -> SSF = sum of positive differences over 128 ms (the rise of the upstroke)
A pulse starts when the SSF crosses an adaptive threshold (a fraction of the running mean SSF peak,
decaying after a missed beat, never below a floor learned from the signal's own noise). The pulse
peak is then the maximum of the low-passed signal after that upstroke, confirmed once the signal has
fallen by a fifth of the pulse amplitude (on a rising baseline, by a sixteenth once the maximum is
250 ms old), and refined with a three-point parabola (1/256 sample) whose time is interpolated
between the two samples' own ticks. The beat is emitted at that confirmation, typically 60-200 ms
after the peak and never later than 0.5 s (a beat found later, by the rescan after learning, is not
reported: the resonance meter counts on that bound). The vertex of the ~4.5 Hz low-passed pulse is
used on purpose: on an asymmetric pulse it sits a near-constant 10-20 ms after the raw maximum, but
it is the more repeatable fiducial - refining on the raw or lightly smoothed signal raised the IBI
error against the ECG from 6.5 to 7-9 ms on the NeuroKit2 and BIDMC recordings (`vagal evaluate`).

A weak upstroke early in the interval may be the dicrotic wave or, in atrial fibrillation, a beat
after a short filling time. It is set aside as the dicrotic wave (PulseSensor captures show one in
most cycles) until the evidence says otherwise: a dicrotic wave comes back at the same delay after
every pulse and leaves the beats' rhythm whole, while an early beat comes at a different delay each
time and, set aside, leaves a beat's worth of time missing. After one is set aside, the rest of
its upstroke cannot start a new pulse.

Signal quality is judged on the raw samples: drop-outs to zero, a rail or a clipped flat top,
a flat line (no finger), amplitude collapse and motion bursts. In any of those states no beat is
emitted; after the signal comes back the detector waits for its filters to settle, relearns the
pulse amplitude from the first full upstroke of the new signal, rescans what it learned from (so
that beat is not lost when it is still within 0.5 s of its peak) and detects again. Learning
takes only an upstroke that rises above the ADC's noise (SSF_MIN, four counts of the ADC's real
resolution) and half the raw range seen meanwhile (not the dicrotic wave of a pulse just missed),
and the first two pulses after it may still set the size (the first one measured may have been
the tail of an upstroke under way when learning began). Two exceptions keep a glitch
from costing beats: a spike to a rail or to zero of up to 16 ms is bridged with the last good
sample, and after a drop-out or rail of up to 250 ms, met while the pulse was being followed, the
pulse learned before it is kept (the filters still settle; nothing is relearned).

Everything in push() is integer arithmetic on small ints held in preallocated arrays: no
allocation, no float, every value far inside |x| < 2**30: tests/portable/test_pulse.py runs push()
under micropython.heap_lock() on the 32-bit WebAssembly port, where a value past 2**30 would
allocate (test_push_allocates_nothing, test_wild_values_are_held_...).
"""

from array import array

from vagal.ticks import ticks_diff, ticks_add

try:
    from micropython import const   # compiled in: no dictionary lookup per use on the board
except ImportError:  # CPython

    def const(x):
        return x


# Quality states (ints so the per-sample path never builds a string).
LEARNING = const(0)
OK = const(1)
NO_CONTACT = const(2)
SATURATED = const(3)
DROPOUT = const(4)
NOISY = const(5)
LOW_AMPLITUDE = const(6)
QUALITY_NAMES = ("learning", "ok", "no_contact", "saturated", "dropout", "noisy", "low_amplitude")

# Levels in read_u16() units (0..65535). A 12-bit ADC count is 16 units; the RP2040's ADC has about
# 8-9 effective bits, i.e. noise of 1-4 counts.
DROPOUT_LEVEL = const(64)   # at or below: the sensor output fell to ground (lost contact / cable)
RAIL_LEVEL = const(65280)   # at or above: the ADC's top rail (4080 counts of 4095)
FLAT_RANGE = const(160)     # raw peak-to-peak below this over a block: no pulse at all (~10 counts)
STUCK_DELTA = const(16)     # within one 12-bit count: "the same value" for clipping detection
FLOOR_CLIP = const(1024)    # at or below (64 counts, ~50 mV): an amplifier clipping at ground

THRESHOLD_PCT = const(35)   # pulse threshold, % of the running mean slope-sum peak
# The smallest slope sum taken for a pulse: a rise of 4 12-bit counts in 128 ms (a pulse of about
# 6 counts). Low-passed ADC noise sums to 10-30; learning from a quiet stretch below this would set
# a threshold noise crosses, and the mean pulse slope sum could not grow back from it. On a coarser
# ADC it is 4 of its counts (`resolution`): an idle 10-bit PulseSensor's +-3 counts of noise sum
# to 120-200 here, and were learned as a pulse (heartpy data2, 8-14 s: 12 invented beats).
SSF_MIN = const(64)
# An interval longer than this (15 bpm) is a gap, in the pulse or in the sample clock (a stalled
# sampling loop), not one beat-to-beat interval: the beat after it starts the intervals afresh.
# It also bounds every product of an interval below (at most x50) far inside 2**30.
IBI_GAP_US = const(4000000)
FALL_DIV = const(5)         # a peak is confirmed once the signal fell 1/FALL_DIV of the pulse

# Indices into BeatDetector._d (durations in samples, us) and _a (state read once per candidate).
_D_DIC_MAX = const(0)
_D_REST = const(1)
_D_SLOW_FALL = const(2)
_D_GLITCH = const(3)
_D_SPIKE = const(4)
_D_LATE_US = const(5)
_D_SSF_MIN = const(6)
# Is a weak early upstroke a dicrotic wave or a beat (atrial fibrillation)? The evidence
# (_dicrotic_delay, _dicrotic_evidence) moves a score in -3..3; at 0 and above, as at the start,
# weak early upstrokes are set aside as dicrotic waves.
_A_DSCORE = const(0)
_A_PEND = const(1)          # one was set aside since the last beat
_A_WEAK_PREV = const(2)     # the last beat was one, taken as a beat
_A_LAST_IBI = const(3)      # the last interval (us)
_A_WGAP = const(4)          # samples from its beat to the last weak upstroke judged
_A_STRONG_N = const(5)      # beats since then, not counting weak ones (up to 3)
_A_BAD_N = const(6)         # samples of the current bad stretch (up to _D_GLITCH)
_A_GLITCH_OK = const(7)     # it began while following the pulse, and is still short
_A_LEARN_LO = const(8)      # learning: the lowest and highest raw samples since it began
_A_LEARN_HI = const(9)
_A_LEARNT_N = const(10)     # pulses taken since learning ended (up to 2)
_A_N = const(11)


class BeatDetector:
    """Causal beat detector: push(x, t_us) per sample; True when a beat is ready in beat_*.

    BeatDetector(fs, adc_bits=16, resolution=12): fs 50..1000 Hz; adc_bits the width of the samples
    pushed (16 for read_u16(), 12 for raw 12-bit counts), values outside that range held to it;
    resolution the bits the samples really carry (the RP2040's ADC: 12, inside read_u16()'s 16; a
    10-bit recording scaled up: 10), which sets the noise floor (SSF_MIN) in counts of it."""

    def __init__(self, fs, adc_bits=16, resolution=12):
        fs = int(fs)
        if fs < 50 or fs > 1000:
            raise ValueError("sample rate must be 50..1000 Hz, got %d" % fs)
        if adc_bits not in (10, 12, 14, 16):
            raise ValueError("adc_bits must be 10, 12, 14 or 16 (the width of the samples pushed), got %r"
                             % (adc_bits,))
        if resolution not in (8, 10, 12, 14, 16):
            raise ValueError("resolution must be 8, 10, 12, 14 or 16 bits, got %r" % (resolution,))
        self.fs = fs
        # Samples narrower than read_u16()'s 16 bits are shifted up on the way in, so every level
        # below (rails, drop-out, one-count steps, noise floors) means the same for any ADC width.
        self._shift = 16 - adc_bits
        self._xmax = 65535 >> self._shift
        # Low-pass: boxes of 100 ms and 60 ms (zeros at 10 and 16.7 Hz; -3 dB near 4.5 Hz): smooth
        # enough for a steady parabola at the peak even on 8-bit recordings.
        self._l1 = max(1, (fs * 100 + 500) // 1000)
        self._l2 = max(1, (fs * 60 + 500) // 1000)
        # Unsigned 16-bit stores ('H'): push() clamps x to 0..65535, so every mean of it fits too.
        self._b1 = array("H", bytes(2 * self._l1))
        self._b2 = array("H", bytes(2 * self._l2))
        # SSF window: 128 ms of positive differences.
        self._w = max(2, (fs * 128 + 500) // 1000)
        self._sb = array("H", bytes(2 * self._w))  # rises of the low-passed signal: 0..65535
        # Durations in samples.
        self._refractory = fs * 30 // 100     # no new upstroke within 300 ms of a peak
        self._dicrotic = fs * 45 // 100       # a weak upstroke within 450 ms may be the dicrotic wave
        self._peak_window = fs * 60 // 100    # a peak must be confirmed within 600 ms of onset
        self._settle = self._l1 + self._l2 + self._w + fs // 2   # filters forget a bad stretch
        self._period_us = 1000000 // fs       # nominal, only to size the missed-beat wait
        # Rarely used durations and state in one array (_D_*, _A_* indices): MicroPython looks an
        # attribute up in a hash table that only grows when full, so every attribute more slows
        # the ones push() reads on every sample (at 95 attributes it cost a third more than at 85).
        self._d = array("i", [fs * 6 // 10,        # _D_DIC_MAX: a weak upstroke this soon tells
                                                   # whether it is a dicrotic wave
                              fs // 10,            # _D_REST: no new pulse this soon after one set
                                                   # aside, unless its slope sum fell below threshold
                              fs // 4,             # _D_SLOW_FALL: a peak left slowly is confirmed
                                                   # this long after it
                              fs // 4,             # _D_GLITCH: a bad stretch this short keeps what
                                                   # was learned
                              max(1, fs // 64),    # _D_SPIKE: bad samples this few (16 ms) are
                                                   # bridged over
                              500000 - 4 * self._period_us,    # _D_LATE_US: a later beat is not
                                                   # reported (queued ones leave one per sample)
                              SSF_MIN << (12 - min(12, resolution))])  # _D_SSF_MIN: four counts
                                                   # of a 12-bit ADC, or of a coarser one
        # Learn the pulse size from the first full upstroke (at least 0.4 s, at most 2 s), then
        # rescan the learning window: ending at the first upstroke keeps its beat within 0.5 s.
        self._learn_min = fs * 4 // 10
        self._learn_len = fs * 2
        self._block = max(8, fs // 4)         # raw quality blocks of 250 ms
        self._a = array("i", [0] * _A_N)
        self._stuck_len = max(3, fs * 200 // 1000)  # held 200 ms at an extreme: clipping
        # History of low-passed values, slope sums and ticks: a power of two >= 2 s.
        n = 64
        while n < 2 * fs:
            n <<= 1
        self._hm = n - 1
        self._hx = array("H", bytes(2 * n))  # low-passed: 0..65535
        # slope sums, held at 65535 (a rise of the whole ADC range in 128 ms; real pulses stay
        # below half of it): they are read back only by the rescan after learning
        self._hs = array("H", bytes(2 * n))
        self._ht = array("i", [0] * n)
        # Beats waiting to be reported (the rescan after learning can find several at once).
        self._qt = array("i", [0] * 4)
        self._qi = array("i", [0] * 4)
        self._qa = array("i", [0] * 4)
        self._qc = array("i", [0] * 4)
        # Group delay of the two boxes in 1/256 sample, removed from peak times.
        self._delay256 = ((self._l1 - 1) + (self._l2 - 1)) * 128
        self.reset()

    def reset(self):
        """Forget everything learned: used at start and by the host between recordings."""
        for b in (self._b1, self._b2, self._sb, self._hx, self._hs, self._ht):
            for i in range(len(b)):
                b[i] = 0
        self._i1 = 0
        self._i2 = 0
        self._s1 = 0
        self._s2 = 0
        self._is = 0
        self._ssf = 0
        self._primed = 0            # filters filled with the first sample
        self._hi = 0                # history write index
        self._prev_lp = 0
        self._qh = 0
        self._nq = 0
        # raw quality
        self._blk_n = 0
        self._blk_min = 65535
        self._blk_max = 0
        self._prev_min = 65535
        self._prev_max = 0
        self._blk_bad = 0
        self._stuck = 0
        self._run_x = 0
        self._flat_blocks = 0
        self._big_blocks = 0
        self._small_blocks = 0
        self._low_blocks = 0
        self._bad_hold = 0          # samples to wait before detection resumes
        a = self._a
        for i in range(_A_N):
            a[i] = 0
        self._bad_run = 0           # bad samples in a row so far (up to _D_SPIKE)
        # detection
        self._learn = 0
        self._learn_ssf = 0
        self._learn_max_at = 0
        self._ssf_avg = 0           # running mean SSF maximum of accepted pulses
        self._amp_avg = 0           # running mean pulse amplitude (low-passed units)
        self._ibi_avg = 0           # running mean interval (us)
        self._miss_n = 0            # samples without a pulse that count as a missed beat
        self._noise = 0             # running SSF level between pulses
        self._since_peak = 1000000  # samples since the last accepted peak (saturating)
        self._cand = 0              # 0 idle, 1 following an upstroke to its peak
        self._rearm = 0             # samples left of a dicrotic wave's upstroke (_D_REST)
        self._cand_len = 0
        self._cand_ssf = 0
        self._cand_max = 0
        self._cand_max_i = 0
        self._foot = 0
        self._have_prev = 0
        self._prev_t = 0
        self._prev_ssf = 0
        self._big = 0
        self.quality = LEARNING
        self.beat_t_us = 0
        self.beat_ibi_us = 0
        self.beat_amp = 0
        self.beat_conf = 0
        self.beats = 0

    # ------------------------------------------------------------------ per sample
    def push(self, x, t_us):
        """Feed one raw sample (adc_bits wide; read_u16 scale by default) taken at tick t_us.
        Returns True on a beat."""
        # outside the ADC's range: held to it before the shift, so even a wild value cannot grow
        # past a small int on the way to the filters' 16-bit stores
        if x < 0:
            x = 0
        elif x > self._xmax:
            x = self._xmax
        x <<= self._shift
        if self._nq:
            self._pop()          # a beat found by the start-up rescan, reported one per sample
            return True
        if not self._primed:
            self._prime(x)
        # --- raw signal quality: drop-out, rail and clipped flat tops, judged sample by sample
        bad = 0
        clipped = 0
        if x <= DROPOUT_LEVEL:
            bad = DROPOUT
        elif x >= RAIL_LEVEL:
            bad = SATURATED
        if bad:
            if self._bad_run < self._d[_D_SPIKE] and not self._bad_hold:
                # a spike to a rail or to zero, a few samples long (a glitch, not a lost
                # sensor): the filters and the quality blocks see the last sample they took
                # instead, so one bad sample does not cost the beats of a whole settling time
                self._bad_run += 1
                i = self._i1 - 1
                if i < 0:
                    i = self._l1 - 1
                x = self._b1[i]
                bad = 0
            else:
                self._bad_run = self._d[_D_SPIKE]
        elif self._bad_run:
            self._bad_run = 0
        d = x - self._run_x
        if -STUCK_DELTA <= d <= STUCK_DELTA:
            self._stuck += 1
            if self._stuck >= self._stuck_len and not bad:
                top = self._blk_max
                if self._prev_max > top:
                    top = self._prev_max
                bot = self._blk_min
                if self._prev_min < bot:
                    bot = self._prev_min
                # Held at the top while the signal moves: the amplifier clipped the pulse. At the
                # bottom only near ground: mid-range, a weak pulse's end of diastole can hold
                # within a count for 200 ms on its own when the ADC is quiet.
                if (x >= top - STUCK_DELTA or (x <= bot + STUCK_DELTA and x <= FLOOR_CLIP)) \
                        and top - bot > FLAT_RANGE:
                    bad = SATURATED
                    clipped = 1
        else:
            self._stuck = 0
            self._run_x = x
        if bad:
            self._blk_bad = bad
        if x < self._blk_min:
            self._blk_min = x
        if x > self._blk_max:
            self._blk_max = x
        self._blk_n += 1
        if self._blk_n >= self._block:
            self._end_block()

        # --- low-pass (two running sums) and slope sum
        b = self._b1
        i = self._i1
        self._s1 += x - b[i]
        b[i] = x
        i += 1
        if i == self._l1:
            i = 0
        self._i1 = i
        y = self._s1 // self._l1
        b = self._b2
        i = self._i2
        self._s2 += y - b[i]
        b[i] = y
        i += 1
        if i == self._l2:
            i = 0
        self._i2 = i
        lp = self._s2 // self._l2
        h = self._hi
        self._hx[h] = lp
        self._ht[h] = t_us
        self._hi = (h + 1) & self._hm
        ssf = self._slope(lp)
        self._hs[h] = ssf if ssf < 65535 else 65535

        if bad or self._bad_hold:
            if bad:
                a = self._a
                if self._bad_hold == 0:          # a bad stretch begins
                    a[_A_BAD_N] = 0
                    a[_A_GLITCH_OK] = 1 if self.quality == OK else 0
                if a[_A_BAD_N] < self._d[_D_GLITCH] and not clipped:
                    a[_A_BAD_N] += 1
                else:
                    a[_A_GLITCH_OK] = 0         # long, or a clipped pulse: relearn after it
                self._bad_hold = self._settle
                self.quality = bad
                self._cand = 0
                self._have_prev = 0
            else:
                self._bad_hold -= 1
                if self._bad_hold == 0:
                    ok = self._a[_A_GLITCH_OK]
                    self._a[_A_GLITCH_OK] = 0
                    if ok and self._ssf_avg:
                        # a glitch (a spike to a rail, a drop-out of a few samples) while the
                        # pulse was being followed: the pulse is still the one learned
                        self.quality = OK
                        self._since_peak = self._refractory + 1
                    else:
                        self._relearn()
            return False
        q = self.quality
        if q == LEARNING:
            return self._learn_step(x, ssf)
        if q != OK:
            return False            # a block-level state (flat, noisy, weak) holds detection off
        if self._detect(lp, ssf, h):
            self._pop()
            return True
        return False

    def _learn_step(self, x, ssf):
        """One sample of learning (raw x, slope sum ssf); True when it ended with a beat popped."""
        self._learn += 1
        a = self._a
        if self._learn == 1 or x < a[_A_LEARN_LO]:
            a[_A_LEARN_LO] = x
        if self._learn == 1 or x > a[_A_LEARN_HI]:
            a[_A_LEARN_HI] = x
        if ssf > self._learn_ssf:
            self._learn_ssf = ssf
            self._learn_max_at = self._learn
        # An upstroke is over once its slope sum fell to a quarter of its maximum (a maximum
        # after the SSF window filled, so not a fragment at the very start). Learning ends
        # there if that upstroke rose half the raw range seen since learning began: begun
        # just after a pulse, the first upstroke is its dicrotic wave, a fraction of the fall
        # already seen, and learning it would make every pulse "motion".
        rng = a[_A_LEARN_HI] - a[_A_LEARN_LO]
        if self._learn >= self._learn_len or (
                self._learn >= self._learn_min and self._learn_max_at > self._w
                and ssf * 4 < self._learn_ssf and self._learn_ssf * 2 >= rng):
            if self._learn_ssf < self._d[_D_SSF_MIN]:
                self._learn = 0     # nothing rose above the noise: no pulse to learn yet
                self._learn_ssf = 0
                self._learn_max_at = 0
                return False
            self._end_learning()
            if self._nq:
                self._pop()
                return True
        return False

    def _slope(self, lp):
        """Slope sum: positive first differences of the low-passed signal over 128 ms."""
        d = lp - self._prev_lp
        self._prev_lp = lp
        if d < 0:
            d = 0
        b = self._sb
        i = self._is
        self._ssf += d - b[i]
        b[i] = d
        i += 1
        if i == self._w:
            i = 0
        self._is = i
        return self._ssf

    def _detect(self, lp, ssf, h):
        """Threshold the slope sum, follow the upstroke to its peak; queue a confirmed beat."""
        if self._since_peak < 1000000:
            self._since_peak += 1
        if self._cand == 0:
            # threshold: a fraction of the mean pulse SSF, decayed while beats are missing,
            # never below twice the slope-sum level between pulses
            thr = self._ssf_avg * THRESHOLD_PCT // 100
            floor = self._noise * 2
            if thr < floor:
                thr = floor
            if thr < self._d[_D_SSF_MIN] >> 1:
                thr = self._d[_D_SSF_MIN] >> 1
            if self._rearm:
                self._rearm -= 1
                if ssf <= thr:
                    self._rearm = 0         # the upstroke set aside is over
            elif ssf > thr and self._since_peak > self._refractory:
                self._cand = 1
                self._cand_len = 0
                self._cand_ssf = ssf
                self._cand_max = lp
                self._cand_max_i = h
                self._foot = self._min_back(h, self._w + self._l1)
            else:
                self._noise += (ssf - self._noise) >> 7
                if self._miss_n and self._since_peak > self._miss_n:
                    self._since_peak = self._refractory + 1
                    a = self._ssf_avg - (self._ssf_avg >> 2)
                    m = self._d[_D_SSF_MIN]
                    self._ssf_avg = a if a > m else m
            return False
        self._cand_len += 1
        if ssf > self._cand_ssf:
            self._cand_ssf = ssf
        if lp > self._cand_max:
            self._cand_max = lp
            self._cand_max_i = h
        amp = self._cand_max - self._foot
        if self._cand_len > self._peak_window:
            self._cand = 0          # rose and never fell: a step or a drift, not a pulse
            return False
        if amp <= 0 or h == self._cand_max_i:
            return False
        fall = self._cand_max - lp
        if fall < amp // FALL_DIV:
            # Not yet fallen a fifth of the way back. On a rising baseline (a deep breath, a slow
            # movement) it may never: then a maximum 250 ms old that the signal has left by a
            # sixteenth of the pulse is the peak (the window above would drop the beat).
            if fall * 16 < amp or fall <= 0 \
                    or ((h - self._cand_max_i) & self._hm) < self._d[_D_SLOW_FALL]:
                return False
        # The signal has fallen part of the way back: the peak is confirmed.
        self._cand = 0
        return self._accept(amp, h)

    def _min_back(self, end, n):
        """Minimum of the n low-passed values before history index end (the pulse foot)."""
        hx = self._hx
        m = self._hm
        j = end
        lo = hx[j]
        while n > 0:
            v = hx[j]
            if v < lo:
                lo = v
            j = (j - 1) & m
            n -= 1
        return lo

    def _prime(self, x):
        """Fill the filters with the first sample so start-up shows no step."""
        for i in range(self._l1):
            self._b1[i] = x
        for i in range(self._l2):
            self._b2[i] = x
        self._s1 = x * self._l1
        self._s2 = x * self._l2
        hx = self._hx
        for i in range(len(hx)):
            hx[i] = x           # and the history, or a first pulse's foot would be read as 0
        self._prev_lp = x
        self._run_x = x
        self._primed = 1

    def _relearn(self):
        self._learn = 0
        self._learn_ssf = 0
        self._learn_max_at = 0
        self._have_prev = 0
        self._cand = 0
        self._ssf_avg = 0
        self._amp_avg = 0
        self._miss_n = 0
        self._since_peak = 1000000
        self.quality = LEARNING

    def _end_learning(self):
        """Set the threshold from the pulses just seen, then rescan them so none is lost."""
        self._ssf_avg = self._learn_ssf * 3 // 4
        self._noise = self._learn_ssf // 8
        self._a[_A_LEARNT_N] = 0
        self.quality = OK
        m = self._hm
        k = (self._hi - self._learn) & m
        n = self._learn
        while n > 0:
            self._detect(self._hx[k], self._hs[k], k)
            k = (k + 1) & m
            n -= 1

    def _dicrotic_delay(self, gap):
        """A weak upstroke within 600 ms of a beat in two cycles running: at the same delay after
        its beat (within an eighth) it is the dicrotic wave, which follows every pulse alike; at
        another delay it is a beat, as in atrial fibrillation, where the delay is the random
        interval. True if at the same delay."""
        a = self._a
        same = 0
        w = a[_A_WGAP]
        if a[_A_STRONG_N] == 1 and w:
            d = gap - w
            if d < 0:
                d = -d
            if d * 8 <= w:
                same = 1
                if a[_A_DSCORE] < 3:
                    a[_A_DSCORE] += 1
            elif a[_A_DSCORE] > -3:
                a[_A_DSCORE] -= 1
        a[_A_WGAP] = gap
        a[_A_STRONG_N] = 0
        return same

    def _dicrotic_evidence(self, ibi):
        """Learn from this beat's interval what the weak early upstrokes before it were.

        One set aside as a dicrotic wave: if the beats kept their rhythm around it (this interval
        under 6/5 of the mean) it was one; if a beat's worth of time is missing (over 4/3) it was a
        beat, as in atrial fibrillation, where a beat after a short filling time is weak and early.
        One taken as a beat: if its interval and this one make up one mean interval (under 11/10),
        it was a dicrotic wave after all, counted twice: two steps back to setting them aside."""
        a = self._a
        typ = self._ibi_avg
        s = a[_A_DSCORE]
        if a[_A_PEND]:
            if ibi * 5 < typ * 6:
                if s < 3:
                    s += 1
            elif ibi * 3 > typ * 4:
                if s > -3:
                    s -= 1
        if a[_A_WEAK_PREV] and (a[_A_LAST_IBI] + ibi) * 10 < typ * 11:
            s += 2
            if s > 3:
                s = 3
        a[_A_DSCORE] = s

    def _pop(self):
        i = self._qh
        self.beat_t_us = self._qt[i]
        self.beat_ibi_us = self._qi[i]
        self.beat_amp = self._qa[i]
        self.beat_conf = self._qc[i]
        self._qh = (i + 1) & 3
        self._nq -= 1
        self.beats += 1

    def _accept(self, amp, h):
        """A confirmed pulse peak: judge it, time it, learn from it, queue it. True if queued."""
        cssf = self._cand_ssf
        avg = self._ssf_avg
        after = (h - self._cand_max_i) & self._hm     # samples since this peak
        # The dicrotic wave: an upstroke much weaker than the last pulse's, early in the interval
        # (PulseSensor-style signals can show one half as tall as the pulse). Not a beat, and not
        # allowed to drag the learned averages down.
        ref = self._prev_ssf
        if avg > ref:
            ref = avg
        weak = 0
        taken = 0
        same = 0
        if self._have_prev and cssf * 4 < ref * 3:
            gap = self._since_peak - after            # samples from the last peak to this one
            # Early: within 450 ms (PulseSensor captures show the wave 310-440 ms after the pulse,
            # at 0.35-0.7 of the interval) or 3/5 of the mean interval, whichever is later; but
            # never past 4/5 of the interval, or above 130 bpm every weaker beat (intervals under
            # 450 ms) would be taken for a dicrotic wave.
            early = self._dicrotic
            if self._ibi_avg:
                cap = self._ibi_avg * 4 // 5 // self._period_us
                if early > cap:
                    early = cap
                n = self._ibi_avg * 3 // 5 // self._period_us
                if early < n:
                    early = n
            # A weak upstroke early in the interval, or well before the last interval's length
            # (a run of dicrotic waves counted as beats shortens the mean, not the interval
            # after each wave): what it is shows in whether its delay repeats
            a = self._a
            if gap < early or (gap < self._d[_D_DIC_MAX]
                               and gap * self._period_us * 5 < a[_A_LAST_IBI] * 4):
                same = self._dicrotic_delay(gap)
                weak = 1
            if gap < early or (weak and same and a[_A_DSCORE] >= 2):
                if a[_A_DSCORE] >= 0:
                    a[_A_PEND] = 1
                    self._rearm = self._d[_D_REST]  # nor is the rest of that upstroke
                    return False
                taken = 1           # here such upstrokes have proved to be beats
        self._since_peak = after
        # Motion and artefacts: an upstroke far larger than the learned pulse. Three in a row mean
        # the pulse itself changed (pressure, posture): adopt the new size instead of rejecting.
        # Right after learning the size is one pulse's, and that one may have been the tail of
        # an upstroke already under way at the first sample: the first two pulses may adopt
        # their own size at once.
        if self._amp_avg and amp > self._amp_avg * 3:
            self._big += 1
            if self._big < 3 and self._a[_A_LEARNT_N] >= 2:
                return False
            self._amp_avg = amp
            avg = cssf
        self._big = 0
        if cssf > avg * 3:
            cssf = avg * 3
        if not taken:               # a weak early beat does not teach the pulse's size
            self._ssf_avg = avg + ((cssf - avg) >> 3)
            if self._amp_avg == 0:
                self._amp_avg = amp
            else:
                self._amp_avg += (amp - self._amp_avg) >> 3

        # Sub-sample peak: parabola through the peak and its neighbours, offset in 1/256 sample,
        # minus the low-pass group delay; time from the ticks of the samples around it.
        m = self._hm
        k = self._cand_max_i
        hx = self._hx
        ht = self._ht
        a = hx[(k - 1) & m]
        c = hx[(k + 1) & m]
        den = a - 2 * hx[k] + c
        off = 0
        if den < 0:
            off = ((c - a) * 128) // -den
            if off > 128:
                off = 128
            elif off < -128:
                off = -128
        off -= self._delay256
        while off <= -256:
            k = (k - 1) & m
            off += 256
        if off < 0:
            k = (k - 1) & m
            off += 256
        dt = ticks_diff(ht[(k + 1) & m], ht[k])
        if dt > IBI_GAP_US:
            dt = 0                      # the clock stalled between them: no interpolation
        t0 = ticks_add(ht[k], (dt * off) >> 8)

        ibi = 0
        if self._have_prev:
            ibi = ticks_diff(t0, self._prev_t)
            if ibi > IBI_GAP_US or ibi <= 0:
                ibi = 0                 # across a gap: this beat starts the intervals afresh
            self._a[_A_LAST_IBI] = ibi
        if ibi:
            if self._ibi_avg:
                self._dicrotic_evidence(ibi)
            if self._ibi_avg == 0:
                self._ibi_avg = ibi
            else:
                self._ibi_avg += (ibi - self._ibi_avg) >> 3
            # no pulse for 1.6 mean intervals (in samples) means a beat was missed
            if self._ibi_avg > 0:
                self._miss_n = (self._ibi_avg * 8 // 5) // self._period_us + 1
        a = self._a
        a[_A_PEND] = 0
        a[_A_WEAK_PREV] = taken
        if a[_A_LEARNT_N] < 2:
            a[_A_LEARNT_N] += 1
        if not weak and a[_A_STRONG_N] < 3:
            a[_A_STRONG_N] += 1
        self._prev_t = t0
        self._prev_ssf = self._cand_ssf
        self._have_prev = 1

        # Confidence: pulse size and interval close to the learned ones.
        conf = 100
        dev = amp - self._amp_avg
        if dev < 0:
            dev = -dev
        conf -= dev * 50 // (self._amp_avg + 1)
        if ibi > 0 and self._ibi_avg > 0:
            dev = ibi - self._ibi_avg
            if dev < 0:
                dev = -dev
            conf -= dev * 50 // self._ibi_avg
        if conf < 0:
            conf = 0
        # Found too late to report within 0.5 s of its peak (the rescan after learning reaches up
        # to 2 s back): not emitted, though its time still starts the next interval.
        if ticks_diff(self._ht[(self._hi - 1) & self._hm], t0) > self._d[_D_LATE_US]:
            return False
        if self._nq == 4:
            return False
        i = (self._qh + self._nq) & 3
        self._qt[i] = t0
        self._qi[i] = ibi
        self._qa[i] = amp
        self._qc[i] = conf
        self._nq += 1
        return True

    def _end_block(self):
        """Every 250 ms: judge flat line, amplitude collapse and motion from the raw range."""
        rng = self._blk_max - self._blk_min
        q = self.quality
        if self._blk_bad == 0:
            if rng < FLAT_RANGE:
                self._flat_blocks += 1
            else:
                self._flat_blocks = 0
            amp = self._amp_avg
            if amp > 0:
                if rng * 6 < amp:
                    self._small_blocks += 1
                else:
                    self._small_blocks = 0
                if rng > amp * 3:
                    self._big_blocks += 1
                else:
                    self._big_blocks = 0
            state = OK
            if self._flat_blocks >= 4:
                state = NO_CONTACT
            elif self._small_blocks >= 8:
                state = LOW_AMPLITUDE
            elif self._big_blocks >= 2:
                state = NOISY
            if (state == LOW_AMPLITUDE or state == NOISY) and q == state:
                # a weaker (10 s) or larger (4 s) but lasting signal is the new normal: the finger
                # pressure or the sensor changed, so relearn instead of waiting for the old size
                self._low_blocks += 1
                if self._low_blocks >= (40 if state == LOW_AMPLITUDE else 16):
                    state = OK
            else:
                self._low_blocks = 0
            if state != OK:
                if q != state:
                    self.quality = state
                    self._cand = 0
                    self._have_prev = 0
            elif q == NO_CONTACT or q == NOISY or q == LOW_AMPLITUDE:
                # good again: let the filters settle, then relearn the pulse from scratch
                self._bad_hold = self._settle
                self._amp_avg = 0
                self._small_blocks = 0
                self._big_blocks = 0
                self._low_blocks = 0
                self.quality = LEARNING
        self._prev_min = self._blk_min
        self._prev_max = self._blk_max
        self._blk_n = 0
        self._blk_min = 65535
        self._blk_max = 0
        self._blk_bad = 0


# Where the port compiles viper (MicroPython on the RP2040, the unix port) BeatDetector is the same
# detector with push() in viper (pulse_viper.py, tested byte for byte against this one); the pure
# Python class above is the reference everywhere, and the detector on CPython and WebAssembly.
ReferenceBeatDetector = BeatDetector
try:
    from vagal.pulse_viper import BeatDetector  # noqa: F811
except (ImportError, SyntaxError, ValueError):   # no micropython module, no native emitter
    pass
