"""vagal: the portable core of a breathing pacer (runs on CPython and MicroPython).

Everything in this package must run unchanged on CPython 3.10+ and MicroPython 1.2x, import nothing
from `machine`/`rp2`, and keep per-sample work integer-only and allocation-free (|x| < 2**30).
Only `vagal.board` touches the hardware.
"""

VERSION = "0.1.0"
