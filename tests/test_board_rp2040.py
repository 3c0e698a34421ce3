"""firmware/vagal/board.py under the MicroPython unix port with the fake machine/rp2: what it
programs is checked against the RP2040 datasheet by the fakes; these tests drive it."""

import os
import subprocess
import textwrap

import pytest

from vagal_host.virtual import ROOT, build

MICROPYTHON = str(ROOT / ".venv" / "bin" / "micropython")


def run_mpy(code, speed="max", env=None, heap="256K"):
    path = build()
    e = dict(os.environ, MICROPYPATH=path, VAGAL_VIRTUAL_SPEED=speed, VAGAL_VIRTUAL_WRAP_S="3")
    e.pop("VAGAL_VIRTUAL_PERSON", None)
    e.pop("VAGAL_VIRTUAL_RECORDING", None)
    e.update(env or {})
    r = subprocess.run([MICROPYTHON, "-X", "heapsize=" + heap, "-c", textwrap.dedent(code)],
                       capture_output=True, text=True, env=e, timeout=120)
    return r


PRELUDE = """
import time, machine, rp2
from array import array
from vagal import board as B
xb = array('H', bytes(2 * 64)); tb = array('i', bytes(4 * 64))
"""


def test_registers_and_dma_setup_are_datasheet_correct():
    r = run_mpy(PRELUDE + """
b = B.Board(); b.start(watchdog=False)
w = dict(machine.sim.mem32_writes)
print("CS", w[0x4004c000]); print("DIV", w[0x4004c010]); print("FCS", w[0x4004c008])
print("RATE", machine.adc_rate_hz())
for ch in machine.sim.dma:
    d = rp2.DMA.unpack_ctrl(ch._ctrl)
    print("DMA", ch.channel, d['treq_sel'], d['size'], d['inc_read'], d['inc_write'], d['chain_to'],
          d['ring_sel'], d['ring_size'], d['irq_quiet'], ch._reload, hex(ch._read))
""")
    assert r.returncode == 0, r.stderr
    out = dict()
    dmas = []
    for line in r.stdout.splitlines():
        k, *v = line.split()
        if k == "DMA":
            dmas.append(v)
        else:
            out[k] = v[0]
    cs = int(out["CS"])
    assert cs & 1 and cs & (1 << 3), "EN and START_MANY"
    assert (cs >> 12) & 7 == 0, "AINSEL = ADC0 (GP26)"
    assert (cs >> 16) & 0x1F == 0, "no round robin"
    div = int(out["DIV"])
    assert (div >> 8) & 0xFFFF == 47999 and div & 0xFF == 0
    assert float(out["RATE"]) == 1000.0
    fcs = int(out["FCS"])
    assert fcs & 1 and fcs & 8 and (fcs >> 24) & 0xF == 1 and not fcs & 2
    assert len(dmas) == 2
    chans = [int(d[0]) for d in dmas]
    for d in dmas:
        ch, treq, size, inc_r, inc_w, chain, ring_sel, ring_size, quiet, count, read = d
        assert int(treq) == 36 and int(size) == 1 and int(inc_r) == 0 and int(inc_w) == 1
        assert int(chain) in chans and int(chain) != int(ch), "each channel chains to the other"
        assert int(ring_sel) == 1 and (1 << int(ring_size)) == 2 * int(count)
        assert int(quiet) == 0 and read == "0x4004c00c"


def test_dma_rearms_over_many_cycles_exact_ticks_no_loss():
    r = run_mpy(PRELUDE + """
b = B.Board(); b.start(watchdog=False)
tot = 0; last = None; bad = 0; lo = 65535; hi = 0
for k in range(20000):          # 400 s virtual: ~3000 DMA halves, ticks_us wraps
    time.sleep_ms(20)
    n = b.read(xb, tb)
    for i in range(n):
        if last is not None and time.ticks_diff(tb[i], last) != 4000: bad += 1
        last = tb[i]
    tot += n
print(tot, b.lost_samples, bad, machine.sim.dma[0].completions + machine.sim.dma[1].completions,
      machine.sim.overflows)
""")
    assert r.returncode == 0, r.stderr
    tot, lost, bad, halves, overflows = map(int, r.stdout.split())
    assert halves >= 3000
    assert lost == 0 and bad == 0 and overflows == 0
    assert abs(tot - 400 * 250) <= 32


def test_viper_decimation_gives_the_python_loops_samples_and_ticks():
    # native.decimate (viper, the device's path) against the plain loop it replaces, on the same
    # simulated ADC stream: every sample and every tick identical, across a ticks_us wrap
    code = PRELUDE + """
import sys
if sys.argv[-1] == "python":
    B._decimate = None
b = B.Board(); b.start(watchdog=False)
h = 0; tot = 0; first = []
for k in range(4000):           # 80 s virtual; VAGAL_VIRTUAL_WRAP_S=3: ticks_us wraps early on
    time.sleep_ms(20)
    n = b.read(xb, tb)
    for i in range(n):
        h = (h * 31 + xb[i] * 7 + tb[i]) & 0x3FFFFFF
        if len(first) < 6: first.append((xb[i], tb[i]))
    tot += n
print(B._decimate is None, tot, h, first)
"""
    rv = run_mpy(code)
    rp = run_mpy(code.replace('sys.argv[-1] == "python"', "True"))
    assert rv.returncode == 0 and rp.returncode == 0, rv.stderr + rp.stderr
    v, p = rv.stdout.split(" ", 1), rp.stdout.split(" ", 1)
    assert v[0] == "False" and p[0] == "True", (rv.stdout, rp.stdout)
    assert v[1] == p[1] and int(p[1].split()[0]) > 19000


def test_overruns_counted_when_app_drains_late():
    r = run_mpy(PRELUDE + """
b = B.Board(); b.start(watchdog=False)
time.sleep_ms(100); n0 = 0
while b.read(xb, tb): pass
time.sleep_ms(1000)             # the DMA goes round ~8 times meanwhile
n = 0
while True:
    k = b.read(xb, tb)
    if not k: break
    n += k
print(n, b.lost_samples, b.overruns)
""")
    assert r.returncode == 0, r.stderr
    n, lost, overruns = map(int, r.stdout.split())
    assert overruns >= 1
    # nothing is invented or silently dropped: what was read plus what was lost covers the time
    assert 240 <= n + lost <= 260, (n, lost)
    assert lost >= 200


def test_irq_handlers_do_not_allocate():
    # the fake runs every DMA / Timer handler under heap_lock; prove the lock bites
    r = run_mpy(PRELUDE + """
b = B.Board(); b.start(watchdog=False)
time.sleep_ms(500); b.read(xb, tb)
print("dma ok", machine.sim.irq_calls)
def bad(dma):
    x = [1, 2, 3]
b._irq_dma_cb = bad
for ch in machine.sim.dma: ch.irq(handler=bad, hard=True)
try:
    time.sleep_ms(500); b.read(xb, tb)
    print("no error")
except AssertionError as e:
    print("caught", e)
""")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("dma ok") and int(lines[0].split()[2]) >= 3
    assert lines[1].startswith("caught") and "allocated" in lines[1]


def test_timer_fallback_counts_and_stamps():
    r = run_mpy(PRELUDE + """
b = B.Board(mode="timer"); b.start(watchdog=False)
tot = 0; last = None; bad = 0
for k in range(500):
    time.sleep_ms(20)
    n = b.read(xb, tb)
    for i in range(n):
        if last is not None and time.ticks_diff(tb[i], last) != 4000: bad += 1
        last = tb[i]
    tot += n
time.sleep_ms(1000)
while b.read(xb, tb): pass
print(tot, bad, b.lost_samples, b.jitter_us_min, b.jitter_us_max)
""")
    assert r.returncode == 0, r.stderr
    tot, bad, lost, jmin, jmax = map(int, r.stdout.split())
    assert abs(tot - 2500) <= 2 and bad == 0
    # each sample stamped with the tick it was due at: the first timer callback comes one period
    # after the start (it was expected at the start: every sample 4 ms early, jitter_us_max 4000)
    assert 0 <= jmin and jmax < 500, (jmin, jmax)
    assert lost >= 250 - 64 - 2  # the ring holds 64; the rest of a 1 s stall is lost, and counted


@pytest.mark.parametrize("patch,rule", [
    ("B.ADC_FIFO = 0x4004c004", "ADC FIFO"),          # DMA reading RESULT instead of the FIFO
    ("B.DREQ_ADC = 0x3f", "DREQ_ADC=36"),             # unpaced
    ("B.RING_BITS = 7", "TRANS_COUNT"),               # ring smaller than a half
    ("B.FCS_DREQ_EN = 0", "DREQ_EN"),                  # FIFO never requests the DMA
    ("B.CS_EN = 1 | (1 << 12)", "AINSEL"),            # ADC1 instead of the sensor's ADC0
])
def test_wrong_programming_is_caught_by_the_fake(patch, rule):
    r = run_mpy(PRELUDE + patch + """
b = B.Board(); b.start(watchdog=False)
time.sleep_ms(300); b.read(xb, tb)
print("not caught")
""")
    out = r.stdout + r.stderr  # the unix port prints tracebacks to stdout
    assert r.returncode != 0 and "AssertionError: RP2040 rule violated" in out, out
    assert rule in out, out
