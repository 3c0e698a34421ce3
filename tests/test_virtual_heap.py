"""The app's peak heap on the virtual board (issue 3: within 100 KB), measured and capped.

The session runs an assessment (the mode with the most code loaded) and then practice.

The unix port is 64-bit: every object holds 8-byte pointers, so the app's heap here is well above
the Pico's (4-byte pointers: tests/test_heap_32bit.py judges the 100 KB line on the 32-bit
WebAssembly port, with the app driven directly and this test's extra - asyncio, the started board -
taken from here as an allowance). This test guards what only the virtual board shows - the real board layer, asyncio and the whole app
running in a capped heap - against a 64-bit budget, and prints the peak. The fakes' own heap (fake
machine/rp2, the simulated person: ~50 KB that a Pico does not carry) is measured by boot.py and
left out. First an uncapped run measures the app's live peak (gc.collect() every virtual second,
fakes/machine.py); then the process heap is capped at the budget plus the fakes, so garbage between
collections (HEADROOM) has to fit too, as it must on the board.
"""

import json
import re

from test_virtual_board import _lines
from vagal_host.virtual import VirtualBoard, person_spec

APP_TARGET = 100 * 1024  # the bound (for the Pico's 32-bit objects)
APP_BUDGET = 160 * 1024  # the same app on the 64-bit unix port: measured 155.2-156.3 KB over assess and
# practice (Dec 2026, with the viper detector's x86-64 code, the journal and issue 15's controllers;
# 118.8 KB in Nov 2026). The device's own figure is measured on the emulated chip (tests/test_chip.py)
FAKES_ALLOWANCE = 60 * 1024  # what boot.py measures for the fakes (+ interpreter start), with room:
# 51.6 KB with the second family of simulated people (issue 15; its model loads only when used)
HEADROOM = 48 * 1024  # garbage and fragmentation: with 125K live, a 190K and a 202K heap each failed once;
# with the viper modules' qstrs, importing the tuner after an assessment grows the qstr pool by ~14 KB in one
# block (MicroPython doubles each new pool), which a 238K heap's free space, fragmented, could not give
MINUTES = 8
# The session starts in assess mode (the heaviest: the assessment's code and tables), 30 s a step,
# and goes on in practice (the tuner) when the assessment ends: both modes' peaks are measured.
SETTINGS = {"mode": "assess", "assess_step_s": 30}


def _run(heapsize, tmp_path):
    end_ms = MINUTES * 60000
    settings = tmp_path / ("settings_%s.json" % heapsize)
    settings.write_text(json.dumps(SETTINGS))
    with VirtualBoard(speed="max", heapsize=heapsize, respawn=False, settings_path=str(settings),
                      person=person_spec(seed=5, hr=68, adherence=0.9),
                      env={"VAGAL_VIRTUAL_HEAP_S": "1"}) as vb:
        lines = _lines(vb.port, lambda p: (p[0] == b"pacer" and int(p[2]) >= end_ms)
                       or (p[0] == b"log" and p[3:4] == [b"fatal:"]), 40)
        alive = vb.proc.poll() is None
        log = vb.log_text()
    probes = [(int(a), int(f)) for a, f in re.findall(r"heap app_live=(\d+) fakes=(\d+)", log)]
    fatal = [b" ".join(p[3:]).decode() for p in lines if p[:3] == [b"log", b"0", b"error"]]
    pacer = [p for p in lines if p[0] == b"pacer"]
    ran = alive and not fatal and pacer and int(pacer[-1][2]) >= end_ms
    modes = [p[3] for p in lines if p[0] == b"mode"]
    results = [p[3] for p in lines if p[0] == b"assess_result"]
    ran = ran and modes[:1] == [b"assess"] and b"practice" in modes and results
    return probes, ran, "%s %s %s %s" % (modes, results, fatal[:6], log[-300:])


def test_app_heap_peak_within_its_64_bit_budget(tmp_path):
    probes, ran, why = _run("512K", tmp_path)
    assert probes and ran, why
    peak = max(a for a, _ in probes)
    fakes = probes[0][1]
    print("app live heap peak %d bytes on the 64-bit unix port (issue target %d on the Pico; fakes %d)"
          % (peak, APP_TARGET, fakes))
    assert fakes <= FAKES_ALLOWANCE - 4096, "the fakes grew: %d bytes" % fakes
    assert peak <= APP_BUDGET, "app live heap peak %d > %d bytes (64-bit unix port)" % (peak, APP_BUDGET)
    capped = "%dK" % ((APP_BUDGET + FAKES_ALLOWANCE + HEADROOM) // 1024)
    probes, ran, why = _run(capped, tmp_path)
    assert ran, "the app did not run %d virtual minutes in a %s heap: %s" % (MINUTES, capped, why)
