"""Wrapping tick arithmetic, the same on CPython and MicroPython.

MicroPython's ticks_ms/ticks_us wrap at 2**30 (TICKS_PERIOD); time differences must always go through
ticks_diff. On MicroPython the C implementations are used (no allocation); on CPython an exact
pure-Python equivalent stands in, so replays on a laptop give the same numbers as the board.
"""

TICKS_PERIOD = 1 << 30
TICKS_MAX = TICKS_PERIOD - 1
_HALF = TICKS_PERIOD >> 1


def _py_ticks_diff(a, b):
    """Signed difference a - b of two tick values, in [-2**29, 2**29)."""
    return ((a - b + _HALF) & TICKS_MAX) - _HALF


def _py_ticks_add(t, delta):
    """t + delta, wrapped into the tick range; |delta| must be under half a period, as in C."""
    if delta >= _HALF or delta <= -_HALF:
        raise OverflowError("ticks interval overflow")
    return (t + delta) & TICKS_MAX


ticks_diff = _py_ticks_diff
ticks_add = _py_ticks_add
try:
    # MicroPython's C versions allocate nothing; use them where they wrap at 2**30 like the RP2040's
    # (the 64-bit unix port wraps at 2**62, so there the exact Python versions stand in).
    import time as _time

    if _time.ticks_add(TICKS_MAX, 1) == 0:
        ticks_diff = _time.ticks_diff
        ticks_add = _time.ticks_add
except AttributeError:  # CPython: no ticks in time
    pass

class TickClock:
    """A tick counter advanced by a fixed rational period, exact forever.

    Used where samples carry no clock of their own (a recording at fs Hz) and by the board, whose
    sample clock is a divider of the crystal: each step adds 1e6 * den // num microseconds (the rate
    is num / den Hz) and carries the remainder, Bresenham-style, so the ticks never drift and every
    intermediate stays a small int (1e6 * den must stay below 2**30, so den <= 1000).
    """

    def __init__(self, num, den=1, start=0):
        if num <= 0 or den <= 0 or den > 1000:
            raise ValueError("rate must be num/den Hz with num > 0 and 0 < den <= 1000")
        whole = 1000000 * den
        self.step = whole // num
        self.rem = whole % num
        self.num = num
        self.acc = 0
        self.now = start & TICKS_MAX

    def tick(self):
        """Advance one sample period; return the new tick value (microseconds)."""
        n = ticks_add(self.now, self.step)
        self.acc += self.rem
        if self.acc >= self.num:
            self.acc -= self.num
            n = ticks_add(n, 1)
        self.now = n
        return n
