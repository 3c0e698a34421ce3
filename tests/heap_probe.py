"""The app's live heap on the MicroPython unix port without asyncio or the virtual board's fakes.

A developer's probe (tests/test_virtual_heap.py is the acceptance test): a simulated person feeds a
minimal Board; the app runs a session in each mode (practice, pace, assess, winddown) driven through
its serial commands, with gc.collect() every virtual second. The heap in use before `vagal` is
imported (interpreter, the person, this board) is the baseline and is left out.
    MICROPYPATH=firmware:host/virtual_board:.frozen .venv/bin/micropython -X heapsize=1M \
        tests/heap_probe.py [SECONDS_PER_MODE]
Prints `app_import=N app_live_peak=N` (bytes). Not usable on the WebAssembly port: its gc.collect()
frees nothing while a script runs (it cannot scan the JavaScript stack), so mem_alloc only grows.
"""

import gc
import sys

from person import Person

MASK = (1 << 30) - 1
FS = 250
STEP_US = 20000
SECONDS_PER_MODE = int(sys.argv[1]) if len(sys.argv) > 1 else 75


class ProbeBoard:
    """The Board contract (docs/architecture.md), with a clock the loop advances."""

    fs = FS
    board_id = "probe"

    def __init__(self, settings_path, person):
        self.settings_path = settings_path
        self.person = person
        self.now_us = 0
        self.next_us = 0
        self.lost_samples = 0
        self.rx = bytearray()
        self.phase = None
        self.written = 0

    def ticks_us(self):
        return self.now_us & MASK

    def ticks_ms(self):
        return (self.now_us // 1000) & MASK

    def start(self):
        pass

    def read(self, xbuf, tbuf):
        n = 0
        while n < len(xbuf) and self.next_us <= self.now_us:
            t = self.next_us
            v = int(self.person.sample(t / 1e6, self.phase) * 65535)
            xbuf[n] = 0 if v < 0 else 65535 if v > 65535 else v
            tbuf[n] = t & MASK
            self.next_us += 1000000 // FS
            n += 1
        return n

    def set_led(self, level):
        pass

    def set_motor(self, level):
        pass

    def button(self):
        return 0

    def feed(self):
        pass

    def serial_read(self, buf):
        n = len(self.rx)
        if n > len(buf):
            n = len(buf)
        for i in range(n):
            buf[i] = self.rx[i]
        self.rx = self.rx[n:]
        return n

    def serial_write(self, data):
        self.written += len(data)


def main():
    path = "/tmp/heap_probe_settings.json" if sys.platform != "webassembly" else "/heap_probe_settings.json"
    try:
        import os
        os.remove(path)
    except OSError:
        pass
    person = Person(seed=4, hr_bpm=66.0, resonance_hz=0.09, rsa_bpm=14.0)
    person.keep_beats = 4
    board = ProbeBoard(path, person)
    gc.collect()
    base = gc.mem_alloc()
    from vagal import app as app_mod
    from vagal import pacer as pacer_mod

    gc.collect()
    imported = gc.mem_alloc() - base
    app = app_mod.App(board)
    app.begin()
    board.rx.extend(b"date 1 2026-11-26\nset 2 assess_step_s=30\n")
    peak = 0
    rid = 3
    for mode in ("practice", "pace", "assess", "winddown"):
        board.rx.extend(b"mode %d %s\n" % (rid, mode.encode()))
        rid += 1
        for k in range(SECONDS_PER_MODE * 1000000 // STEP_US):
            board.now_us += STEP_US
            board.phase = app.pacer.phase / pacer_mod.PHASE_ONE if app.running else None
            app.step()
            if k % 50 == 0:
                gc.collect()
                used = gc.mem_alloc() - base
                if used > peak:
                    peak = used
    print("app_import=%d app_live_peak=%d" % (imported, peak))


main()
