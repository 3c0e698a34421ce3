"""The virtual board's scaled clock: a stall of the host process is not a stall of the board."""

import subprocess
from pathlib import Path

from vagal_host.replay_engines import micropython_binary

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import time, utime
t0 = time.ticks_ms()
utime.sleep_ms(300)          # the host stalls 300 ms (15 s of virtual time at speed 50)
t1 = time.ticks_ms()
time.sleep_ms(2000)          # the program itself waits 2 s of virtual time
t2 = time.ticks_ms()
print(time.ticks_diff(t1, t0), time.ticks_diff(t2, t1), time.STALL_CAP_US)
"""


def test_a_host_stall_moves_the_scaled_clock_at_most_the_cap(tmp_path):
    script = tmp_path / "stall.py"
    script.write_text(SCRIPT)
    env = {"VAGAL_VIRTUAL_SPEED": "50",
           "MICROPYPATH": "%s:.frozen" % (ROOT / "host" / "virtual_board" / "fakes")}
    out = subprocess.run([micropython_binary(), str(script)], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    stall_ms, wait_ms, cap_us = (int(v) for v in out)
    assert stall_ms <= cap_us // 1000 + 5, stall_ms
    assert 1995 <= wait_ms <= 2000 + cap_us // 1000, wait_ms
