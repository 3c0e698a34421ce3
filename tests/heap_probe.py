"""The app's live heap, per mode, on any MicroPython port: no asyncio, no virtual-board fakes.

A simulated person feeds a minimal Board; the app runs a session driven through its serial
commands: an assessment (30 s a step) until it ends by itself and goes on in practice, then pace,
then winddown. The heap in use before `vagal` is imported (interpreter, the person, this board) is
the baseline and is left out, and so is the person's own start-up state (it runs WARM_UP_S
first). The board layer (vagal.board) is imported and a Board made but not started (on the Pico
its machine objects are C objects); asyncio's loop and tasks are not run. tests/test_heap_32bit.py
runs this on the 32-bit WebAssembly port (tests/wasm/heap.mjs) and on the 64-bit unix port, both
on mpy-cross bytecode as deployed; by hand, from source:
    MICROPYPATH=firmware:host/virtual_board:.frozen .venv/bin/micropython -X heapsize=1M \
        tests/heap_probe.py
Prints `app_made=N peak_assess=N peak_practice=N ... app_live_peak=N drops=N` (bytes).

The driver is split into short calls (Probe.advance) because the WebAssembly port cannot collect
while Python runs: its gc.collect() only marks a collection pending, done when the call from
JavaScript returns (ports/webassembly/main.c, gc_collect / gc_collect_top_level). So the heap is
read at the start of the next call (Probe.measure), when only live objects remain.
"""

import gc
import sys

from person import Person

MASK = (1 << 30) - 1
FS = 250
STEP_US = 20000
WARM_UP_S = 10
STEPS_PER_CHUNK = 50  # one virtual second between measurements
MODES = ("assess", "practice", "pace", "winddown")
# (mode, virtual seconds): the assessment (5 steps of 30 s) ends by itself and goes on in practice
PLAN = (("assess", 200), ("practice", 100), ("pace", 60), ("winddown", 60))


class ProbeBoard:
    """The Board contract (docs/architecture.md), with a clock the driver advances."""

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
        self.assess_results = 0  # assess_result lines: the assessment ended and practice followed

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

    def serial_write(self, data, n=-1):
        self.written += n if n >= 0 else len(data)
        if n < 0 and data.startswith("assess_result "):
            self.assess_results += 1


class HardwareStandIn:
    """sys.modules entry for machine / rp2, which vagal.board imports but uses only in start(),
    apart from the board's id (machine.unique_id(), read when the Board is made)."""

    def unique_id(self):
        return b"\x01\x23\x45\x67\x89\xab\xcd\xef"


class Probe:
    """Drives the app in chunks; measure() reads the heap after a collection, between chunks."""

    def __init__(self, settings_path):
        try:
            import os
            os.remove(settings_path)
        except OSError:
            pass
        person = Person(seed=4, hr_bpm=66.0, resonance_hz=0.09, rsa_bpm=14.0)
        person.keep_beats = 4
        # the person's own state settles in its first seconds (lists, floats): not the app's heap
        for k in range(WARM_UP_S * FS):
            person.sample(k / FS, None)
        self.board = ProbeBoard(settings_path, person)
        self.board.now_us = self.board.next_us = WARM_UP_S * 1000000
        # vagal.board needs machine and rp2 only once started: stand-ins let it import anywhere
        for name in ("machine", "rp2"):
            if name not in sys.modules:
                sys.modules[name] = HardwareStandIn()
        self.pico_board = None
        self.app = None
        self.pacer_mod = None
        self.base = 0
        self.made = 0
        self.peak = 0
        self.last = 0
        self.drops = 0  # measurements below the one before: the collections do free garbage
        self.peaks = {}
        for m in MODES:
            self.peaks[m] = 0
        self.plan_i = 0
        self.chunks_left = 0
        self.rid = 3

    def set_base(self):
        self.base = gc.mem_alloc()

    def load(self):
        """Import the app and the board layer; make the App and a Board (held, as on the Pico:
        the app runs on the ProbeBoard, but the board layer's module and buffers are counted)."""
        from vagal import app as app_mod
        from vagal import board as board_mod
        from vagal import pacer as pacer_mod

        self.pico_board = board_mod.Board()

        self.pacer_mod = pacer_mod
        self.app = app_mod.App(self.board)

    def measure_made(self):
        """The heap of the imported modules and the App instance, before it begins."""
        self.made = gc.mem_alloc() - self.base

    def begin(self):
        self.app.begin()
        self.board.rx.extend(b"date 1 2026-11-26\nset 2 assess_step_s=30\n")

    def advance(self):
        """Run one chunk; False when the plan is done."""
        if self.chunks_left == 0:
            if self.plan_i == len(PLAN):
                return False
            mode, seconds = PLAN[self.plan_i]
            self.plan_i += 1
            self.board.rx.extend(b"mode %d %s\n" % (self.rid, mode.encode()))
            self.rid += 1
            self.chunks_left = seconds * 1000000 // (STEP_US * STEPS_PER_CHUNK)
        self.chunks_left -= 1
        board = self.board
        app = self.app
        one = self.pacer_mod.PHASE_ONE
        for _ in range(STEPS_PER_CHUNK):
            board.now_us += STEP_US
            board.phase = app.pacer.phase / one if app.running else None
            app.step()
        return True

    def measure(self):
        """The live heap now (called right after a collection, before anything is allocated)."""
        used = gc.mem_alloc() - self.base
        if used < self.last:
            self.drops += 1
        self.last = used
        if used > self.peak:
            self.peak = used
        mode = self.app.mode
        if used > self.peaks[mode]:
            self.peaks[mode] = used

    def report(self):
        parts = ["app_made=%d" % self.made]
        for m in MODES:
            parts.append("peak_%s=%d" % (m, self.peaks[m]))
        parts.append("app_live_peak=%d" % self.peak)
        parts.append("drops=%d" % self.drops)
        parts.append("assess_results=%d" % self.board.assess_results)
        parts.append("bytes_out=%d" % self.board.written)
        return " ".join(parts)


def settings_path():
    return "/heap_probe_settings.json" if sys.platform == "webassembly" else "/tmp/heap_probe_settings.json"


def main():
    """The whole run in one call: on the unix port gc.collect() scans the stack and frees at once."""
    probe = Probe(settings_path())
    gc.collect()
    probe.set_base()
    probe.load()
    gc.collect()
    probe.measure_made()
    probe.begin()
    while probe.advance():
        gc.collect()
        probe.measure()
    print(probe.report())


if __name__ == "__main__":
    main()
