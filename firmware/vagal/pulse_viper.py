"""The beat detector's per-sample path as viper code, for MicroPython ports with a native emitter.

pulse.py's BeatDetector is the reference and stays pure Python (CPython, WebAssembly); on the
RP2040 its push() costs ~400 us per sample (a third of that is attribute lookups). Here push() is
one viper function over the same arrays (pooled, so that two attribute lookups reach them all),
with the per-sample scalars in one int array (_st). It handles the samples that make up nearly all
of a recording: a good raw sample, the quality block's end when the state stays, the filters and
the slope sum, learning before its end, and detection while it waits for or follows an upstroke.
Every other sample (a bad or clipped one, a change of quality state, a confirmed peak, the end of
learning, a queued beat, the first sample) it hands, before changing anything, to the reference
push(): the scalars are copied into the reference's attributes, the reference runs that sample, and
they are copied back. So the rare paths are the reference's own code, and the common path is checked
against it sample for sample (tests/portable/test_pulse_viper.py on synthetic sweeps,
tests/test_pulse_viper_recordings.py on every shared recording).

Viper ints are machine words (32 bits on the Pico, 64 on x86-64) and a ptr32 load zero-extends on
x86-64: every value kept in _st is >= 0 and < 2**30, as in the reference (slope sums, sums of 16-bit
samples, sample counts, ticks), and every product formed here stays below 2**28. (The pool also
holds the reference's _a, whose dicrotic score can be negative: push() reads only _a's learning
range, raw samples >= 0.)
"""

from array import array

import micropython

from micropython import const

from vagal import pulse
from vagal.pulse import ReferenceBeatDetector as _Reference

# Viper sees only this module's own const() names as numbers: the reference's levels, repeated and
# checked against it below (on a mismatch this module does not load and the reference runs), and
# its private array indices (compiled away there; a wrong one fails the equivalence test).
_LEARNING = const(0)
_OK = const(1)
_DROPOUT_LEVEL = const(64)
_RAIL_LEVEL = const(65280)
_STUCK_DELTA = const(16)
_FLOOR_CLIP = const(1024)
_FLAT_RANGE = const(160)
_THRESHOLD_PCT = const(35)
_FALL_DIV = const(5)
_NO_CONTACT = const(2)
_NOISY = const(5)
_LOW_AMPLITUDE = const(6)
_D_SSF_MIN = const(6)
_D_SLOW_FALL = const(2)
_A_LEARN_LO = const(8)
_A_LEARN_HI = const(9)
if (_LEARNING, _OK, _NO_CONTACT, _NOISY, _LOW_AMPLITUDE, _DROPOUT_LEVEL, _RAIL_LEVEL, _STUCK_DELTA,
        _FLOOR_CLIP, _FLAT_RANGE, _THRESHOLD_PCT, _FALL_DIV) != (
        pulse.LEARNING, pulse.OK, pulse.NO_CONTACT, pulse.NOISY, pulse.LOW_AMPLITUDE, pulse.DROPOUT_LEVEL,
        pulse.RAIL_LEVEL, pulse.STUCK_DELTA, pulse.FLOOR_CLIP, pulse.FLAT_RANGE, pulse.THRESHOLD_PCT,
        pulse.FALL_DIV):
    raise ImportError("pulse_viper's constants differ from pulse.py's")


# The reference's per-sample scalars, in _st[0.._N_VAR) in this order (copied both ways around a
# sample the reference runs, by _st_to_attrs and _attrs_to_st, which name each one).
_VARS = ("_i1", "_i2", "_s1", "_s2", "_is", "_ssf", "_primed", "_hi", "_prev_lp", "_nq", "_bad_run",
         "_stuck", "_run_x", "_blk_n", "_blk_min", "_blk_max", "_prev_min", "_prev_max", "_bad_hold",
         "quality", "_learn", "_learn_ssf", "_learn_max_at", "_since_peak", "_cand", "_rearm",
         "_noise", "_ssf_avg", "_miss_n", "_cand_len", "_cand_ssf", "_cand_max", "_cand_max_i",
         "_foot", "_blk_bad", "_flat_blocks", "_small_blocks", "_big_blocks", "_low_blocks",
         "_amp_avg")
_I1 = const(0)
_I2 = const(1)
_S1 = const(2)
_S2 = const(3)
_IS = const(4)
_SSF = const(5)
_PRIMED = const(6)
_HI = const(7)
_PREV_LP = const(8)
_NQ = const(9)
_BAD_RUN = const(10)
_STUCK = const(11)
_RUN_X = const(12)
_BLK_N = const(13)
_BLK_MIN = const(14)
_BLK_MAX = const(15)
_PREV_MIN = const(16)
_PREV_MAX = const(17)
_BAD_HOLD = const(18)
_QUALITY = const(19)
_LEARN = const(20)
_LEARN_SSF = const(21)
_LEARN_MAX_AT = const(22)
_SINCE_PEAK = const(23)
_CAND = const(24)
_REARM = const(25)
_NOISE = const(26)
_SSF_AVG = const(27)
_MISS_N = const(28)
_CAND_LEN = const(29)
_CAND_SSF = const(30)
_CAND_MAX = const(31)
_CAND_MAX_I = const(32)
_FOOT = const(33)
_BLK_BAD = const(34)
_FLAT_BLOCKS = const(35)
_SMALL_BLOCKS = const(36)
_BIG_BLOCKS = const(37)
_LOW_BLOCKS = const(38)
_AMP_AVG = const(39)
_N_VAR = const(40)
# Fixed after construction: written once.
_XMAX = const(40)
_SHIFT = const(41)
_L1 = const(42)
_L2 = const(43)
_W = const(44)
_HM = const(45)
_BLOCK = const(46)
_STUCK_LEN = const(47)
_REFRACTORY = const(48)
_PEAK_WINDOW = const(49)
_LEARN_LEN = const(50)
_LEARN_MIN = const(51)
_SSF_MIN = const(52)
_SLOW_FALL = const(53)
_O_B2 = const(54)   # where the reference's arrays start in _hb (_b1 at 0) and _ib (_ht at _N_ST)
_O_SB = const(55)
_O_HX = const(56)
_O_HS = const(57)
_O_A = const(58)
_N_ST = const(59)


@micropython.viper
def _push(self, x_in, t_in) -> bool:
    """BeatDetector.push(x, t_us) on the common path; other samples go to the reference."""
    st = ptr32(self._ib)       # _st, then _ht, then _a
    hb = ptr16(self._hb)       # _b1, _b2, _sb, _hx, _hs
    x = int(x_in)
    if x < 0:
        x = 0
    elif x > st[_XMAX]:
        x = int(st[_XMAX])
    x = x << st[_SHIFT]
    if st[_NQ] or st[_PRIMED] == 0:
        return bool(self._by_reference(x_in, t_in))
    if x <= _DROPOUT_LEVEL or x >= _RAIL_LEVEL or st[_BAD_RUN]:
        return bool(self._by_reference(x_in, t_in))
    # raw quality: a value held within a count for 200 ms at the top or near ground is clipping
    stuck = int(st[_STUCK])
    run_x = int(st[_RUN_X])
    d = x - run_x
    if -_STUCK_DELTA <= d and d <= _STUCK_DELTA:
        stuck += 1
        if stuck >= st[_STUCK_LEN]:
            top = int(st[_BLK_MAX])
            if st[_PREV_MAX] > top:
                top = int(st[_PREV_MAX])
            bot = int(st[_BLK_MIN])
            if st[_PREV_MIN] < bot:
                bot = int(st[_PREV_MIN])
            if (x >= top - _STUCK_DELTA or (x <= bot + _STUCK_DELTA and x <= _FLOOR_CLIP)) \
                    and top - bot > _FLAT_RANGE:
                return bool(self._by_reference(x_in, t_in))
    else:
        stuck = 0
        run_x = x
    blk_min = int(st[_BLK_MIN])
    if x < blk_min:
        blk_min = x
    blk_max = int(st[_BLK_MAX])
    if x > blk_max:
        blk_max = x
    blk_n = int(st[_BLK_N]) + 1
    q = int(st[_QUALITY])
    ended = 0
    if blk_n >= st[_BLOCK]:
        # every 250 ms: flat line, amplitude collapse and motion from the raw range; a change of
        # state goes to the reference
        ended = 1
        flat = int(st[_FLAT_BLOCKS])
        small = int(st[_SMALL_BLOCKS])
        big = int(st[_BIG_BLOCKS])
        low = int(st[_LOW_BLOCKS])
        if st[_BLK_BAD] == 0:
            rng = blk_max - blk_min
            if rng < _FLAT_RANGE:
                flat += 1
            else:
                flat = 0
            amp = int(st[_AMP_AVG])
            if amp > 0:
                if rng * 6 < amp:
                    small += 1
                else:
                    small = 0
                if rng > amp * 3:
                    big += 1
                else:
                    big = 0
            state = _OK
            if flat >= 4:
                state = _NO_CONTACT
            elif small >= 8:
                state = _LOW_AMPLITUDE
            elif big >= 2:
                state = _NOISY
            if (state == _LOW_AMPLITUDE or state == _NOISY) and q == state:
                low += 1
                if (state == _LOW_AMPLITUDE and low >= 40) or (state == _NOISY and low >= 16):
                    state = _OK
            else:
                low = 0
            if state != _OK:
                if q != state:
                    return bool(self._by_reference(x_in, t_in))
            elif q == _NO_CONTACT or q == _NOISY or q == _LOW_AMPLITUDE:
                return bool(self._by_reference(x_in, t_in))
    bad_hold = int(st[_BAD_HOLD])
    if bad_hold == 1:
        return bool(self._by_reference(x_in, t_in))      # the settling after a bad stretch ends

    # filters and slope sum, in locals until the sample is known to stay here
    o_b2 = int(st[_O_B2])
    o_sb = int(st[_O_SB])
    i1 = int(st[_I1])
    s1 = int(st[_S1]) + x - int(hb[i1])
    y = s1 // int(st[_L1])
    i2 = int(st[_I2])
    s2 = int(st[_S2]) + y - int(hb[o_b2 + i2])
    lp = s2 // int(st[_L2])
    rise = lp - int(st[_PREV_LP])
    if rise < 0:
        rise = 0
    i_s = int(st[_IS])
    ssf = int(st[_SSF]) + rise - int(hb[o_sb + i_s])
    h = int(st[_HI])

    start = 0       # an upstroke starts here: its foot is read after the history is written
    if bad_hold == 0 and q == _LEARNING:
        learn = int(st[_LEARN]) + 1
        o_a = int(st[_O_A])
        lo = int(st[o_a + _A_LEARN_LO])
        hi = int(st[o_a + _A_LEARN_HI])
        if learn == 1 or x < lo:
            lo = x
        if learn == 1 or x > hi:
            hi = x
        lssf = int(st[_LEARN_SSF])
        lmax_at = int(st[_LEARN_MAX_AT])
        if ssf > lssf:
            lssf = ssf
            lmax_at = learn
        if learn >= st[_LEARN_LEN] or (learn >= st[_LEARN_MIN] and lmax_at > st[_W]
                                       and ssf * 4 < lssf and lssf * 2 >= hi - lo):
            return bool(self._by_reference(x_in, t_in))  # learning ends: threshold set, rescan
        st[o_a + _A_LEARN_LO] = lo
        st[o_a + _A_LEARN_HI] = hi
        st[_LEARN] = learn
        st[_LEARN_SSF] = lssf
        st[_LEARN_MAX_AT] = lmax_at
    elif bad_hold == 0 and q == _OK:
        sp = int(st[_SINCE_PEAK])
        if sp < 1000000:
            sp += 1
        if st[_CAND] == 0:
            ssf_avg = int(st[_SSF_AVG])
            noise = int(st[_NOISE])
            thr = ssf_avg * _THRESHOLD_PCT // 100
            if thr < noise * 2:
                thr = noise * 2
            if thr < st[_SSF_MIN] >> 1:
                thr = int(st[_SSF_MIN]) >> 1
            rearm = int(st[_REARM])
            if rearm:
                rearm -= 1
                if ssf <= thr:
                    rearm = 0
                st[_REARM] = rearm
            elif ssf > thr and sp > st[_REFRACTORY]:
                start = 1
            else:
                noise += (ssf - noise) >> 7
                miss_n = int(st[_MISS_N])
                if miss_n and sp > miss_n:
                    sp = int(st[_REFRACTORY]) + 1
                    ssf_avg = ssf_avg - (ssf_avg >> 2)
                    if ssf_avg < st[_SSF_MIN]:
                        ssf_avg = int(st[_SSF_MIN])
                    st[_SSF_AVG] = ssf_avg
                st[_NOISE] = noise
        else:
            cand_len = int(st[_CAND_LEN]) + 1
            cand_ssf = int(st[_CAND_SSF])
            if ssf > cand_ssf:
                cand_ssf = ssf
            cmax = int(st[_CAND_MAX])
            cmax_i = int(st[_CAND_MAX_I])
            if lp > cmax:
                cmax = lp
                cmax_i = h
            amp = cmax - int(st[_FOOT])
            if cand_len > st[_PEAK_WINDOW]:
                st[_CAND] = 0       # rose and never fell: a step or a drift, not a pulse
            elif amp > 0 and h != cmax_i:
                fall = cmax - lp
                confirmed = 1
                if fall < amp // _FALL_DIV:
                    if fall * 16 < amp or fall <= 0 or ((h - cmax_i) & st[_HM]) < st[_SLOW_FALL]:
                        confirmed = 0
                if confirmed:
                    return bool(self._by_reference(x_in, t_in))  # a peak confirmed: the beat
            st[_CAND_LEN] = cand_len
            st[_CAND_SSF] = cand_ssf
            st[_CAND_MAX] = cmax
            st[_CAND_MAX_I] = cmax_i
        st[_SINCE_PEAK] = sp
    elif bad_hold:
        st[_BAD_HOLD] = bad_hold - 1

    # the sample stays here: commit raw quality, filters, slope sum and history
    if ended:
        st[_FLAT_BLOCKS] = flat
        st[_SMALL_BLOCKS] = small
        st[_BIG_BLOCKS] = big
        st[_LOW_BLOCKS] = low
        st[_PREV_MIN] = blk_min
        st[_PREV_MAX] = blk_max
        st[_BLK_N] = 0
        st[_BLK_MIN] = 65535
        st[_BLK_MAX] = 0
        st[_BLK_BAD] = 0
    else:
        st[_BLK_N] = blk_n
        st[_BLK_MIN] = blk_min
        st[_BLK_MAX] = blk_max
    st[_STUCK] = stuck
    st[_RUN_X] = run_x
    hb[i1] = x
    i1 += 1
    if i1 == st[_L1]:
        i1 = 0
    st[_I1] = i1
    st[_S1] = s1
    hb[o_b2 + i2] = y
    i2 += 1
    if i2 == st[_L2]:
        i2 = 0
    st[_I2] = i2
    st[_S2] = s2
    st[_PREV_LP] = lp
    hb[o_sb + i_s] = rise
    i_s += 1
    if i_s == st[_W]:
        i_s = 0
    st[_IS] = i_s
    st[_SSF] = ssf
    hm = int(st[_HM])
    o_hx = int(st[_O_HX])
    hb[o_hx + h] = lp
    st[_N_ST + h] = int(t_in)
    st[_HI] = (h + 1) & hm
    hb[int(st[_O_HS]) + h] = ssf if ssf < 65535 else 65535
    if start:
        # an upstroke begins: follow it to its peak from its foot (the lowest low-passed value
        # of the last w + l1 samples, this one included)
        st[_CAND] = 1
        st[_CAND_LEN] = 0
        st[_CAND_SSF] = ssf
        st[_CAND_MAX] = lp
        st[_CAND_MAX_I] = h
        n = int(st[_W]) + int(st[_L1])
        j = h
        lo = int(hb[o_hx + j])
        while n > 0:
            v = int(hb[o_hx + j])
            if v < lo:
                lo = v
            j = (j - 1) & hm
            n -= 1
        st[_FOOT] = lo
    return False


@micropython.viper
def _st_to_attrs(self):
    """_st -> the reference's attributes (before a sample the reference runs)."""
    st = ptr32(self._ib)
    self._i1 = st[_I1]
    self._i2 = st[_I2]
    self._s1 = st[_S1]
    self._s2 = st[_S2]
    self._is = st[_IS]
    self._ssf = st[_SSF]
    self._primed = st[_PRIMED]
    self._hi = st[_HI]
    self._prev_lp = st[_PREV_LP]
    self._nq = st[_NQ]
    self._bad_run = st[_BAD_RUN]
    self._stuck = st[_STUCK]
    self._run_x = st[_RUN_X]
    self._blk_n = st[_BLK_N]
    self._blk_min = st[_BLK_MIN]
    self._blk_max = st[_BLK_MAX]
    self._prev_min = st[_PREV_MIN]
    self._prev_max = st[_PREV_MAX]
    self._bad_hold = st[_BAD_HOLD]
    self.quality = st[_QUALITY]
    self._learn = st[_LEARN]
    self._learn_ssf = st[_LEARN_SSF]
    self._learn_max_at = st[_LEARN_MAX_AT]
    self._since_peak = st[_SINCE_PEAK]
    self._cand = st[_CAND]
    self._rearm = st[_REARM]
    self._noise = st[_NOISE]
    self._ssf_avg = st[_SSF_AVG]
    self._miss_n = st[_MISS_N]
    self._cand_len = st[_CAND_LEN]
    self._cand_ssf = st[_CAND_SSF]
    self._cand_max = st[_CAND_MAX]
    self._cand_max_i = st[_CAND_MAX_I]
    self._foot = st[_FOOT]
    self._blk_bad = st[_BLK_BAD]
    self._flat_blocks = st[_FLAT_BLOCKS]
    self._small_blocks = st[_SMALL_BLOCKS]
    self._big_blocks = st[_BIG_BLOCKS]
    self._low_blocks = st[_LOW_BLOCKS]
    self._amp_avg = st[_AMP_AVG]


@micropython.viper
def _attrs_to_st(self):
    """The reference's attributes -> _st (after it)."""
    st = ptr32(self._ib)
    st[_I1] = int(self._i1)
    st[_I2] = int(self._i2)
    st[_S1] = int(self._s1)
    st[_S2] = int(self._s2)
    st[_IS] = int(self._is)
    st[_SSF] = int(self._ssf)
    st[_PRIMED] = int(self._primed)
    st[_HI] = int(self._hi)
    st[_PREV_LP] = int(self._prev_lp)
    st[_NQ] = int(self._nq)
    st[_BAD_RUN] = int(self._bad_run)
    st[_STUCK] = int(self._stuck)
    st[_RUN_X] = int(self._run_x)
    st[_BLK_N] = int(self._blk_n)
    st[_BLK_MIN] = int(self._blk_min)
    st[_BLK_MAX] = int(self._blk_max)
    st[_PREV_MIN] = int(self._prev_min)
    st[_PREV_MAX] = int(self._prev_max)
    st[_BAD_HOLD] = int(self._bad_hold)
    st[_QUALITY] = int(self.quality)
    st[_LEARN] = int(self._learn)
    st[_LEARN_SSF] = int(self._learn_ssf)
    st[_LEARN_MAX_AT] = int(self._learn_max_at)
    st[_SINCE_PEAK] = int(self._since_peak)
    st[_CAND] = int(self._cand)
    st[_REARM] = int(self._rearm)
    st[_NOISE] = int(self._noise)
    st[_SSF_AVG] = int(self._ssf_avg)
    st[_MISS_N] = int(self._miss_n)
    st[_CAND_LEN] = int(self._cand_len)
    st[_CAND_SSF] = int(self._cand_ssf)
    st[_CAND_MAX] = int(self._cand_max)
    st[_CAND_MAX_I] = int(self._cand_max_i)
    st[_FOOT] = int(self._foot)
    st[_BLK_BAD] = int(self._blk_bad)
    st[_FLAT_BLOCKS] = int(self._flat_blocks)
    st[_SMALL_BLOCKS] = int(self._small_blocks)
    st[_BIG_BLOCKS] = int(self._big_blocks)
    st[_LOW_BLOCKS] = int(self._low_blocks)
    st[_AMP_AVG] = int(self._amp_avg)


class BeatDetector(_Reference):
    """pulse.BeatDetector with push() in viper: the same beats, byte for byte (see the module).

    The reference's arrays become views into two pooled arrays, so that push() reaches all of them
    through two attributes: _ib (int: the scalars _st, the ticks _ht, the rare state _a) and _hb
    (16-bit: the filters' boxes _b1 _b2, the slope window _sb, the histories _hx _hs)."""

    push = _push

    def __init__(self, fs, adc_bits=16, resolution=12):
        self._ib = None
        self.by_reference = 0    # samples handed to the reference push() (tests, benchmarks)
        super().__init__(fs, adc_bits, resolution)
        n = len(self._ht)
        self._ib = array("i", bytes(4 * (_N_ST + n + len(self._a))))
        self._hb = array("H", bytes(2 * (self._l1 + self._l2 + self._w + 2 * n)))
        ib = memoryview(self._ib)
        hb = memoryview(self._hb)
        self._st = ib[:_N_ST]
        self._ht = ib[_N_ST:_N_ST + n]
        self._a = ib[_N_ST + n:]
        o = [0]
        for name, size in (("_b1", self._l1), ("_b2", self._l2), ("_sb", self._w), ("_hx", n), ("_hs", n)):
            setattr(self, name, hb[o[-1]:o[-1] + size])
            o.append(o[-1] + size)
        self._fixed = (self._xmax, self._shift, self._l1, self._l2, self._w, self._hm, self._block,
                       self._stuck_len, self._refractory, self._peak_window, self._learn_len,
                       self._learn_min, self._d[_D_SSF_MIN], self._d[_D_SLOW_FALL], o[1], o[2], o[3],
                       o[4], _N_ST + n)
        self.reset()

    def reset(self):
        super().reset()
        if self._ib is not None:
            st = self._st
            for i in range(len(self._fixed)):
                st[_XMAX + i] = self._fixed[i]
            self._to_st()

    _to_st = _attrs_to_st

    def _by_reference(self, x, t_us):
        """Run one sample through the reference push() on the same state."""
        self.by_reference += 1
        _st_to_attrs(self)
        r = _Reference.push(self, x, t_us)
        _attrs_to_st(self)
        return r
