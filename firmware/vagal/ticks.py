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

    Used where samples carry no clock of their own (replaying a recording at fs Hz): each step adds
    1e6 // fs microseconds and carries the remainder, Bresenham-style, so the ticks never drift and
    every intermediate stays a small int.
    """

    def __init__(self, fs, start=0):
        self.step = 1000000 // fs
        self.rem = 1000000 % fs
        self.fs = fs
        self.acc = 0
        self.now = start & TICKS_MAX

    def tick(self):
        """Advance one sample period; return the new tick value (microseconds)."""
        n = ticks_add(self.now, self.step)
        self.acc += self.rem
        if self.acc >= self.fs:
            self.acc -= self.fs
            n = ticks_add(n, 1)
        self.now = n
        return n
