"""Entry point of the virtual board process: wire the fakes in, then run the firmware's main.py.

Runs in the MicroPython unix port with MICROPYPATH = fakes : firmware : host/virtual_board : .frozen.
The live heap the fakes themselves hold (their bytecode and state, which a Pico does not carry) is
measured here, so the heap probe (VAGAL_VIRTUAL_HEAP_S, see fakes/machine.py) reports the app's own.
"""

import gc
import os
import sys

gc.collect()
_a0 = gc.mem_alloc()
import vasyncio_task  # noqa: E402

sys.modules["_asyncio"] = vasyncio_task  # asyncio's task queue must read the virtual clock
gc.collect()
_fakes = gc.mem_alloc() - _a0
import asyncio  # noqa: E402
import asyncio.core  # noqa: E402
import asyncio_core_ref  # noqa: E402

asyncio_core_ref.core = asyncio.core
from vagal import pins  # noqa: E402,F401  (firmware: counted as the app's)

gc.collect()
_a1 = gc.mem_alloc()
import machine  # noqa: E402  (fakes, the simulated person or recording, rp2)
import rp2  # noqa: E402,F401
import select  # noqa: E402,F401

gc.collect()
_fakes += gc.mem_alloc() - _a1
machine.heap_baseline(_a0, _fakes)

from vagal import board  # noqa: E402

_settings = os.getenv("VAGAL_VIRTUAL_SETTINGS")
if _settings:
    board.Board.settings_path = _settings

import main  # noqa: E402,F401  (firmware/main.py: runs the app)
