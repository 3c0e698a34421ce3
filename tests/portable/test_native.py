"""native.py's viper loops against the plain Python they stand in for (on the unix port; elsewhere
there is no viper and the callers run the Python, so these skip)."""

from array import array

import portable
import synth_ppg
from vagal.app import max_jitter
from vagal.ticks import ticks_add, TICKS_MAX

try:
    from vagal import native
except (ImportError, SyntaxError, ValueError):
    native = None


def _need():
    if native is None:
        raise portable.Skip("no viper on this runtime")


def test_max_jitter_is_the_apps_loop():
    _need()
    rng = synth_ppg.Rng(9)
    tb = array("i", bytes(4 * 64))
    t = TICKS_MAX - 40000                      # across the 2**30 wrap
    for trial in range(200):
        n = rng.next() % 65
        for i in range(n):
            step = 4000 + (rng.next() % 201) - 100
            if rng.next() % 50 == 0:
                step += 30000000               # a stalled clock
            t = ticks_add(t, step)
            tb[i] = t
        prev = ticks_add(t, -(rng.next() % 9000))
        for have in (False, True):
            want = max_jitter(tb, n, prev, have, 4000, trial)
            got = native.max_jitter(tb, n, prev, have, 4000, trial)
            assert got == want, (trial, n, have, got, want)


def test_put_int_and_crc_are_protocols():
    _need()
    from vagal import protocol
    buf = bytearray(32)
    for v in (0, 7, -7, 10, -1073741823, 1073741823, 123456789):
        n = native.put_int(buf, 3, v)
        assert bytes(buf[3:n]) == str(v).encode(), (v, bytes(buf[3:n]))
    line = b"pacer 12 123456 5500 31000 in 40000"
    buf[:] = bytes(32)
    big = bytearray(line)
    assert native.crc16_buf(big, len(big), protocol._CRC_TABLE) == protocol.crc16(line)


def test_dft_bin_is_coherences_loop():
    _need()
    from vagal import coherence as C
    from array import array
    c = C.Coherence()
    rng = synth_ppg.Rng(4)
    for trial in range(6):
        for k in range(C.N):
            c._x[k] = (rng.next() % 2047) - 1023 if trial else (1023 if k & 1 else -1023)
        for b in range(C.NBINS):
            native.dft_bin(c._x, C.COS, C.BIN_LO + b, c._re, c._im, b)
        got = (list(c._re), list(c._im))
        saved = C._dft_bin
        C._dft_bin = None
        try:
            for b in range(C.NBINS):
                c._dft_bin(b)
        finally:
            C._dft_bin = saved
        assert got == (list(c._re), list(c._im)), trial
