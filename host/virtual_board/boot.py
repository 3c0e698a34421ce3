"""Entry point of the virtual board process: wire the fakes in, then run the firmware's main.py.

Runs in the MicroPython unix port with MICROPYPATH = fakes : firmware : host/virtual_board : .frozen.
"""

import os
import sys

import vasyncio_task

sys.modules["_asyncio"] = vasyncio_task  # asyncio's task queue must read the virtual clock
import asyncio  # noqa: E402
import asyncio.core  # noqa: E402
import asyncio_core_ref  # noqa: E402

asyncio_core_ref.core = asyncio.core

from vagal import board  # noqa: E402

_settings = os.getenv("VAGAL_VIRTUAL_SETTINGS")
if _settings:
    board.Board.settings_path = _settings

import main  # noqa: E402,F401  (firmware/main.py: runs the app)
