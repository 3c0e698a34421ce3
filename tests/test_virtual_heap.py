"""Acceptance (issue 3): the app's peak heap within 100 KB, measured on the virtual board.

The unix port is 64-bit, so every object is bigger than on the Pico: this bound is stricter than the
Pico's. The fakes' own heap (fake machine/rp2, the simulated person: ~47 KB that a Pico does not
carry) is measured by boot.py and left out. First an uncapped run measures the app's live peak
(gc.collect() every virtual second, fakes/machine.py); then the process heap is capped at the budget
plus the fakes, so garbage between collections has to fit too, as it must on the board.
"""

import re

from test_virtual_board import _lines
from vagal_host.virtual import VirtualBoard, person_spec

APP_BUDGET = 100 * 1024  # the bound for the app's heap
FAKES_ALLOWANCE = 56 * 1024  # what boot.py measures for the fakes (+ interpreter start), with room
MINUTES = 3


def _run(heapsize):
    end_ms = MINUTES * 60000
    with VirtualBoard(speed="max", heapsize=heapsize, respawn=False,
                      person=person_spec(seed=5, hr=68, adherence=0.9),
                      env={"VAGAL_VIRTUAL_HEAP_S": "1"}) as vb:
        lines = _lines(vb.port, lambda p: p[0] == b"pacer" and int(p[2]) >= end_ms, 40)
        alive = vb.proc.poll() is None
        log = vb.log_text()
    probes = [(int(a), int(f)) for a, f in re.findall(r"heap app_live=(\d+) fakes=(\d+)", log)]
    fatal = [b" ".join(p[3:]).decode() for p in lines if p[:3] == [b"log", b"0", b"error"]]
    pacer = [p for p in lines if p[0] == b"pacer"]
    ran = alive and not fatal and pacer and int(pacer[-1][2]) >= end_ms
    return probes, ran, "%s %s" % (fatal[:6], log[-300:])


def test_app_heap_peak_within_100_kb():
    probes, ran, why = _run("512K")
    assert probes and ran, why
    peak = max(a for a, _ in probes)
    fakes = probes[0][1]
    print("app live heap peak %d bytes (fakes %d)" % (peak, fakes))
    assert fakes <= FAKES_ALLOWANCE - 4096, "the fakes grew: %d bytes" % fakes
    assert peak <= APP_BUDGET, "app live heap peak %d > %d bytes (64-bit unix port)" % (peak, APP_BUDGET)
    capped = "%dK" % ((APP_BUDGET + FAKES_ALLOWANCE) // 1024)
    probes, ran, why = _run(capped)
    assert ran, "the app did not run %d virtual minutes in a %s heap: %s" % (MINUTES, capped, why)
