"""Wrapping tick arithmetic, the same on CPython and MicroPython.

MicroPython's ticks_ms/ticks_us wrap at 2**30 (TICKS_PERIOD); time differences must always go through
ticks_diff. On MicroPython the C implementations are used (no allocation); on CPython an exact
pure-Python equivalent stands in, so replays on a laptop give the same numbers as the board.
"""

TICKS_PERIOD = 1 << 30
TICKS_MAX = TICKS_PERIOD - 1
_HALF = TICKS_PERIOD >> 1

try:
    from time import ticks_add, ticks_diff  # MicroPython
except ImportError:  # CPython

    def ticks_diff(a, b):
        """Signed difference a - b of two tick values, in (-2**29, 2**29]."""
        return ((a - b + _HALF) & TICKS_MAX) - _HALF

    def ticks_add(t, delta):
        """t + delta, wrapped into the tick range."""
        return (t + delta) & TICKS_MAX


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
