"""Viper versions of a few small loops that run several times a second on the device: protocol
lines' digits and checksum (protocol.LineWriter) and the DMA buffer's 4:1 decimation (board.py).
Imported only where the port compiles viper (the RP2040, the unix port); each caller keeps the
plain-Python loop it replaces for CPython and WebAssembly, and tests check both give the same bytes
(tests/portable/test_protocol.py, tests/test_board_rp2040.py). All values stay below 2**30."""

import micropython


@micropython.viper
def put_int(buf, p: int, v: int) -> int:
    """Write v in decimal into bytearray buf at p; returns the index after it."""
    b = ptr8(buf)
    if v < 0:
        b[p] = 45
        p += 1
        v = 0 - v
    q = p
    while True:
        b[p] = 48 + v % 10
        p += 1
        v = v // 10
        if v == 0:
            break
    e = p - 1
    while q < e:
        c = b[q]
        b[q] = b[e]
        b[e] = c
        q += 1
        e -= 1
    return p


@micropython.viper
def crc16_buf(buf, n: int, table) -> int:
    """CRC-16/CCITT-FALSE of buf[:n] with protocol's 256-entry table."""
    b = ptr8(buf)
    t = ptr16(table)
    crc = 0xFFFF
    i = 0
    while i < n:
        crc = ((crc << 8) & 0xFFFF) ^ t[(crc >> 8) ^ b[i]]
        i += 1
    return crc


@micropython.viper
def decimate(raw, xbuf, tbuf, clk) -> int:
    """Sum groups of 4 raw 12-bit samples into xbuf (read_u16 scale) and stamp them into tbuf.
    clk (array 'i'): [0] raw index, [1] first output index, [2] end index, [3] tick of the next
    sample, [4] its Bresenham remainder, [5] whole us per sample, [6] remainder per sample,
    [7] the remainder's denominator; [3] and [4] are advanced. Returns the end index."""
    r = ptr16(raw)
    x = ptr16(xbuf)
    tb = ptr32(tbuf)
    c = ptr32(clk)
    i = int(c[0])
    n = int(c[1])
    end = int(c[2])
    t = int(c[3])
    acc = int(c[4])
    step = int(c[5])
    rem = int(c[6])
    den = int(c[7])
    while n < end:
        x[n] = (int(r[i]) + int(r[i + 1]) + int(r[i + 2]) + int(r[i + 3])) << 2
        tb[n] = t
        t = (t + step) & 0x3FFFFFFF          # ticks_add: the tick period is 2**30
        acc += rem
        if acc >= den:
            acc -= den
            t = (t + 1) & 0x3FFFFFFF
        i += 4
        n += 1
    c[3] = t
    c[4] = acc
    return n


@micropython.viper
def max_jitter(tbuf, n: int, prev: int, have_prev: int, period: int, jitter: int) -> int:
    """The largest |ticks_diff(tbuf[i], tbuf[i - 1]) - period| over tbuf[:n] and jitter, the first
    sample paired with prev when have_prev (App.poll_samples' per-sample check, in one call)."""
    tb = ptr32(tbuf)
    i = 0
    if not have_prev:
        if n == 0:
            return jitter
        prev = int(tb[0])
        i = 1
    while i < n:
        t = int(tb[i])
        j = ((t - prev + 0x20000000) & 0x3FFFFFFF) - 0x20000000 - period   # ticks_diff - period
        if j < 0:
            j = 0 - j
        if j > jitter:
            jitter = j
        prev = t
        i += 1
    return jitter


@micropython.viper
def dft_bin(x, cos, m: int, re, im, b: int):
    """coherence.Coherence._dft_bin: bin m of the 256-point DFT of the 128 values of x (array 'h'),
    with the table cos (array 'h', 4096 cos(2 pi i / 256)), into re[b] and im[b] (arrays 'i').
    |x| <= 1023 and |cos| <= 4096: each sum stays below 2**29."""
    xp = ptr16(x)
    cp = ptr16(cos)
    rp = ptr32(re)
    ip = ptr32(im)
    r = 0
    s = 0
    idx = 0
    k = 0
    while k < 128:
        v = int(xp[k])
        if v & 0x8000:               # ptr16 loads are unsigned: sign-extend the 'h' values
            v -= 0x10000
        c = int(cp[idx])
        if c & 0x8000:
            c -= 0x10000
        d = int(cp[(idx - 64) & 255])
        if d & 0x8000:
            d -= 0x10000
        r += v * c
        s -= v * d
        idx = (idx + m) & 255
        k += 1
    rp[b] = r
    ip[b] = s
