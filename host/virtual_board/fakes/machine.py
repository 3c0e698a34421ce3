"""Fake `machine` for the virtual board: an RP2040 as far as firmware/vagal/board.py can tell.

It CHECKS what the board layer programs against the RP2040 datasheet (ADC registers 4.9.6, DMA 2.5)
and raises AssertionError naming the broken rule. It simulates the free-running ADC, its FIFO and the
DMA channels of the fake rp2 module on the virtual clock (fake time.py): the simulation catches up
with the clock whenever the board layer touches the hardware (an ADC register, a DMA attribute,
disable_irq). Interrupt handlers run during the catch-up at the virtual time of their event
(time.irq_at) and under micropython.heap_lock(), so a handler that allocates fails here as it would
on the Pico.

The ADC reads a source (configured from the environment by the launcher, see configure()):
  VAGAL_VIRTUAL_RECORDING  a file "VAGALREC <fs> <n>\\n" + n little-endian uint16 ADC codes (0..4095),
                           played in a loop (at the ADC rate it is copied block-wise: cheap)
  VAGAL_VIRTUAL_PERSON     "seed=1,hr=65,resonance=0.09,adherence=0.9,..." - a simulated person
                           (keys: configure() below; q, hrnoise, jitter, pwander, drift: realism)
                           (host/virtual_board/person.py) who breathes with the pacer: the LED
                           duty the app sets is watched for its turning points, and with the light
                           off or too dim to see, the motor's cues (LightWatcher); the person is
                           told the pacer phase they perceive.
  VAGAL_VIRTUAL_BUTTON     "t_s:dur_s,..." button presses (virtual seconds from start).
  VAGAL_VIRTUAL_HEAP_S     every this many virtual seconds: gc.collect() and, on a new maximum,
                           "virtual board: heap app_live=<bytes> fakes=<bytes> t_s=<s>" on stderr -
                           the app's live heap, without what the fakes hold (boot.py measures that).
"""

import gc

import sys
import os
import time as _vt
import micropython
from array import array

try:
    import uctypes
except ImportError:  # pragma: no cover
    uctypes = None

try:
    from vagal import pins as _pins
except ImportError:  # the fakes can run without firmware/ on the path
    _pins = None

# ------------------------------------------------------------------ RP2040 register map (4.9.6)
ADC_BASE = 0x4004C000
ADC_CS = ADC_BASE + 0x00
ADC_RESULT = ADC_BASE + 0x04
ADC_FCS = ADC_BASE + 0x08
ADC_FIFO = ADC_BASE + 0x0C
ADC_DIV = ADC_BASE + 0x10
ADC_INTR = ADC_BASE + 0x14
ADC_INTE = ADC_BASE + 0x18
ADC_INTF = ADC_BASE + 0x1C
ADC_INTS = ADC_BASE + 0x20
_ADC_REGS = (ADC_CS, ADC_RESULT, ADC_FCS, ADC_FIFO, ADC_DIV, ADC_INTR, ADC_INTE, ADC_INTF, ADC_INTS)
_ADC_NAMES = {ADC_CS: "CS", ADC_RESULT: "RESULT", ADC_FCS: "FCS", ADC_FIFO: "FIFO", ADC_DIV: "DIV",
              ADC_INTR: "INTR", ADC_INTE: "INTE", ADC_INTF: "INTF", ADC_INTS: "INTS"}
CS_BITS = 0x001F770F  # defined bits of CS (reserved bits must be written 0)
CS_EN = 1 << 0
CS_TS_EN = 1 << 1
CS_START_ONCE = 1 << 2
CS_START_MANY = 1 << 3
CS_READY = 1 << 8
FCS_BITS = 0x0F0F0F0F
FCS_EN = 1 << 0
FCS_SHIFT = 1 << 1
FCS_ERR = 1 << 2
FCS_DREQ_EN = 1 << 3
FCS_EMPTY = 1 << 8
FCS_FULL = 1 << 9
FCS_UNDER = 1 << 10
FCS_OVER = 1 << 11
DIV_BITS = 0x00FFFFFF
ADC_CLOCK_HZ = 48000000
FIFO_DEPTH = 4
DREQ_ADC = 36
CLK_DEN = 12288  # 48 * 256: ADC clock cycles in 1/256 steps per microsecond

_ALIAS = {0x0000: "rw", 0x1000: "xor", 0x2000: "set", 0x3000: "clr"}

freq_hz = 125000000


def _fail(rule):
    raise AssertionError("RP2040 rule violated: " + rule)


# ------------------------------------------------------------------ signal sources


class FileSource:
    """A recording of 12-bit ADC codes, looped. Block copies when its rate equals the ADC's."""

    CHUNK = 256

    def __init__(self, path):
        self.f = open(path, "rb")
        head = self.f.readline().split()
        if len(head) != 3 or head[0] != b"VAGALREC":
            raise ValueError("%s: not a VAGALREC file" % path)
        self.fs = float(head[1])
        self.n = int(head[2])
        if self.n < 1:
            raise ValueError("%s: no samples" % path)
        self.data0 = self.f.tell()
        self.buf = array("H", bytes(2 * self.CHUNK))
        self.mv = memoryview(self.buf)
        self.lo = 0  # file index of buf[0]
        self.hi = 0  # file index past the last valid

    def _load(self, i):
        self.f.seek(self.data0 + 2 * i)
        want = self.CHUNK
        if i + want > self.n:
            want = self.n - i
        got = self.f.readinto(memoryview(self.buf)[:want]) if want < self.CHUNK else self.f.readinto(self.buf)
        self.lo = i
        self.hi = i + (got // 2 if got else 0)

    def code(self, i):
        """ADC code of file sample i (looping)."""
        i %= self.n
        if not (self.lo <= i < self.hi):
            self._load(i)
        return self.buf[i - self.lo]

    def value_at(self, t_us):
        return self.code(int(t_us * self.fs / 1000000))

    def fill(self, dst, j, k, i0, t0_us, rate_hz):
        """Write k codes for ADC samples i0.. (taken at t0_us + i/rate) into dst[j:j+k]."""
        if rate_hz == self.fs:
            while k > 0:
                i = i0 % self.n
                if not (self.lo <= i < self.hi):
                    self._load(i)
                m = self.hi - i
                if m > k:
                    m = k
                a = i - self.lo
                dst[j : j + m] = self.mv[a : a + m]
                j += m
                i0 += m
                k -= m
            return
        for q in range(k):
            i = i0 + q
            dst[j + q] = self.code(int(i * self.fs / rate_hz))


class PersonSource:
    """A simulated person sampled every step_us (zero-order hold between), told the pacer phase."""

    def __init__(self, person, watcher, step_us=4000):
        self.person = person
        self.watcher = watcher
        self.step_us = step_us
        self.t_last = -1
        self.v_last = 2048

    def value_at(self, t_us):
        if self.t_last < 0 or t_us - self.t_last >= self.step_us:
            w = self.watcher
            v = self.person.sample(t_us / 1000000, w.phase(t_us), w.split)
            c = int(v * 4095 + 0.5)
            self.v_last = 0 if c < 0 else (4095 if c > 4095 else c)
            self.t_last = t_us
        return self.v_last

    def fill(self, dst, j, k, i0, t0_us, rate_hz):
        for q in range(k):
            dst[j + q] = self.value_at(t0_us + (i0 + q) * 1000000 // rate_hz)


class ConstSource:
    def __init__(self, code=2048):
        self.c = code

    def value_at(self, t_us):
        return self.c

    def fill(self, dst, j, k, i0, t0_us, rate_hz):
        for q in range(k):
            dst[j + q] = self.c


class _Turns:
    """Inhale starts (last two) and the last exhale start perceived through one sense."""

    def __init__(self):
        self.troughs = []
        self.peak_t = -1
        self.split = None  # the inhale's share of the last whole breath seen

    def inhale(self, t_us):
        tr = self.troughs
        tr.append(t_us)
        if len(tr) > 2:
            tr.pop(0)
        if len(tr) == 2 and tr[0] < self.peak_t < tr[1]:
            self.split = (self.peak_t - tr[0]) / (tr[1] - tr[0])

    def phase(self, t_us, stale):
        """Phase in [0, 1) from the last period, or None if unknown or stale (periods)."""
        tr = self.troughs
        if len(tr) < 2:
            return None
        period = tr[1] - tr[0]
        if period <= 0 or t_us - tr[1] > stale * period:
            return None
        p = (t_us - tr[1]) / period
        return p - int(p)


class LightWatcher:
    """What a person perceives of the pacer: the LED duty's troughs (start of inhale) and peaks
    while the light is seen (on within the last 20 s), else the motor's cues (vagal.pacer: one long
    pulse at the start of inhale, two short ones at the start of exhale), so a person at a dark
    bedside or with the light off (winddown_haptic_only) still follows by touch.

    phase(t) = time since the last inhale start / the last inhale-to-inhale period, in [0, 1);
    None until two inhale starts have been perceived, or when nothing has turned for 3 periods.
    """

    HYST = 1300  # 2 % of full scale
    FELT = 1300  # motor duty a hand or body feels (2 % of full drive; cues run at 20-100 %)
    CUE_GAP_US = 200000  # motor off longer than this: the next pulse starts a new cue
    LONG_PULSE_US = 75000  # the inhale cue's one pulse is 90 ms, the exhale cue's two are 50 ms
    LIGHT_GONE_US = 20000000  # light not above HYST for a breath at 3/min: no longer seen, touch leads

    def __init__(self):
        self.rising = True
        self.ext = 0
        self.ext_t = 0
        self.light = _Turns()
        self.touch = _Turns()
        self.m_on = False
        self.m_on_t = 0
        self.m_off_t = -10 * self.CUE_GAP_US
        self.cue_t = 0
        self.cue_pulses = 0
        self.lit_t = -2 * self.LIGHT_GONE_US  # when the light was last seen on
        self._sense = self.light

    def led(self, duty, t_us):
        if duty >= self.HYST:
            self.lit_t = t_us
        if self.rising:
            if duty > self.ext:
                self.ext, self.ext_t = duty, t_us
            elif duty < self.ext - self.HYST:
                self.rising = False
                self.light.peak_t = self.ext_t
                self.ext, self.ext_t = duty, t_us
        else:
            if duty < self.ext:
                self.ext, self.ext_t = duty, t_us
            elif duty > self.ext + self.HYST:
                self.rising = True
                self.light.inhale(self.ext_t)
                self.ext, self.ext_t = duty, t_us

    def motor(self, duty, t_us):
        on = duty >= self.FELT
        if on and not self.m_on:
            self.m_on = True
            self.m_on_t = t_us
            if t_us - self.m_off_t > self.CUE_GAP_US:
                self.cue_t = t_us
                self.cue_pulses = 0
            self.cue_pulses += 1
        elif self.m_on and not on:
            self.m_on = False
            self.m_off_t = t_us
            if self.cue_pulses == 1 and t_us - self.m_on_t >= self.LONG_PULSE_US:
                self.touch.inhale(self.cue_t)
            elif self.cue_pulses == 2:
                self.touch.peak_t = self.cue_t

    def phase(self, t_us):
        self._sense = self.light if t_us - self.lit_t <= self.LIGHT_GONE_US else self.touch
        return self._sense.phase(t_us, 3)

    @property
    def split(self):
        """The inhale's share as perceived through the sense phase() last used."""
        return self._sense.split


# ------------------------------------------------------------------ simulation state


class _Sim:
    def __init__(self):
        self.cs = 0
        self.fcs = 0
        self.div = 0
        self.inte = 0
        self.result = 0
        self.fifo = []
        self.running = False
        self.t_start_us = 0  # virtual us of sample 0
        self.pnum = 0  # sample period in 1/CLK_DEN us
        self.next_i = 0
        self.rate_hz = 0.0
        self.samples = 0
        self.overflows = 0
        self.source = ConstSource()
        self.watcher = LightWatcher()
        self.person = None
        self.led_duty = 0
        self.motor_duty = 0
        self.dma = []  # fake rp2.DMA channels
        self.timers = []
        self.wdt_deadline = None
        self.wdt_timeout = 0
        self.buttons = []  # (press_us, release_us)
        self.busy = False
        self.irq_calls = 0
        self.mem32_writes = []
        self.caught_up = -1  # virtual time the simulation last ran to
        self.heap_every_us = 0
        self.heap_next_us = 0
        self.heap_base = 0  # live bytes before the firmware: interpreter start + the fakes
        self.heap_fakes = 0
        self.heap_peak = 0


sim = _Sim()


def elapsed_us():
    return _vt.elapsed_us()


def run_irq(t_us, handler, arg, hard):
    """Deliver an interrupt at virtual time t_us; hard handlers run with the heap locked."""
    sim.irq_calls += 1
    _vt.irq_at(t_us)
    try:
        if hard:
            micropython.heap_lock()
            failed = False
            try:
                handler(arg)
            except MemoryError:
                failed = True
            finally:
                micropython.heap_unlock()
            if failed:
                raise AssertionError("hard IRQ handler %r allocated (heap locked, as on the Pico)" % handler)
        else:
            handler(arg)
    finally:
        _vt.irq_at(None)


def catch_up():
    """Run the simulated hardware up to the current virtual time."""
    if sim.busy:
        return
    now = _vt.elapsed_us()
    if now == sim.caught_up:
        return  # nothing can have happened since: the clock has not moved (most calls in max mode)
    sim.caught_up = now
    sim.busy = True
    try:
        _wdt_check(now)
        if sim.running:
            _adc_run(now)
        for tm in sim.timers:
            tm._run(now)
        if sim.heap_every_us and now >= sim.heap_next_us:
            sim.heap_next_us = now + sim.heap_every_us
            _heap_probe(now)
    finally:
        sim.busy = False


def heap_baseline(interp, fakes):
    """boot.py: live bytes of the bare interpreter and of the fakes, not counted as the app's."""
    sim.heap_base = interp + fakes
    sim.heap_fakes = fakes


def _heap_probe(now):
    gc.collect()
    live = gc.mem_alloc() - sim.heap_base
    if live > sim.heap_peak:
        sim.heap_peak = live
        sys.stderr.write("virtual board: heap app_live=%d fakes=%d t_s=%d\n"
                         % (live, sim.heap_fakes, now // 1000000))


def _sample_time(i):
    return sim.t_start_us + (i * sim.pnum) // CLK_DEN


def _adc_run(now):
    elapsed = now - sim.t_start_us
    if elapsed < 0:
        return
    last = (elapsed * CLK_DEN) // sim.pnum  # index of the newest sample taken by now
    while sim.next_i <= last:
        ch = None
        if sim.fcs & FCS_EN and sim.fcs & FCS_DREQ_EN:
            for c in sim.dma:
                if c._busy and c._treq() == DREQ_ADC:
                    ch = c
                    break
        n = last - sim.next_i + 1
        if ch is None:  # results pile up in the FIFO (or only RESULT, FIFO off)
            for i in range(sim.next_i, last + 1):
                code = sim.source.value_at(_sample_time(i))
                sim.result = code
                sim.samples += 1
                if sim.fcs & FCS_EN:
                    if len(sim.fifo) < FIFO_DEPTH:
                        sim.fifo.append(code)
                    else:
                        sim.fcs |= FCS_OVER
                        sim.overflows += 1
            sim.next_i = last + 1
            break
        if sim.fifo:  # the DMA takes what waited in the FIFO first
            ch._transfer_codes(sim.fifo)
            sim.fifo = []
            if ch._remaining == 0:
                ch._complete(_sample_time(sim.next_i - 1))
            continue
        k = n if n < ch._remaining else ch._remaining
        ch._transfer_from(sim.source, k, sim.next_i, sim.t_start_us, sim.rate_hz)
        sim.next_i += k
        sim.samples += k
        if ch._remaining == 0:
            ch._complete(_sample_time(sim.next_i - 1))


def check_dreq_path():
    """A channel paced by DREQ_ADC can only run if the FIFO raises DREQ."""
    if not (sim.fcs & FCS_EN):
        _fail("FCS.EN=0 while a DMA channel waits on DREQ_ADC: results never reach the FIFO (4.9.2.4)")
    if not (sim.fcs & FCS_DREQ_EN):
        _fail("FCS.DREQ_EN=0 while a DMA channel waits on DREQ_ADC: the DMA is never paced (4.9.2.4)")
    thresh = (sim.fcs >> 24) & 0xF
    if thresh < 1 or thresh > FIFO_DEPTH:
        _fail("FCS.THRESH=%d: DREQ needs 1..%d results in the 4-deep FIFO (THRESH=1 for DMA)" % (thresh, FIFO_DEPTH))


# ------------------------------------------------------------------ mem32


class _Mem:
    """machine.mem32 as a register file: only the ADC block is modelled; other addresses fail."""

    def __init__(self, width):
        self.width = width
        self.writes = sim.mem32_writes

    def _split(self, addr):
        if self.width != 32:
            _fail("the board layer must use 32-bit register accesses (mem32), not mem%d" % self.width)
        if addr & 3:
            _fail("register address 0x%08x is not word aligned" % addr)
        alias = addr & 0x3000
        reg = addr - alias
        if reg not in _ADC_REGS:
            _fail("0x%08x is not an ADC register (ADC block 0x4004c000..0x4004c020, datasheet 4.9.6)" % addr)
        return reg, _ALIAS[alias]

    def __getitem__(self, addr):
        reg, _ = self._split(addr)
        catch_up()
        if reg == ADC_CS:
            v = sim.cs & ~(CS_START_ONCE | CS_READY)
            if sim.cs & CS_EN:
                v |= CS_READY
            return v
        if reg == ADC_FCS:
            v = sim.fcs & 0x0F000F0F
            lvl = len(sim.fifo)
            v |= lvl << 16
            if lvl == 0:
                v |= FCS_EMPTY
            if lvl == FIFO_DEPTH:
                v |= FCS_FULL
            return v
        if reg == ADC_FIFO:
            if not sim.fifo:
                sim.fcs |= FCS_UNDER
                return 0
            return sim.fifo.pop(0)
        if reg == ADC_RESULT:
            return sim.result
        if reg == ADC_DIV:
            return sim.div
        if reg == ADC_INTE:
            return sim.inte
        return 0

    def __setitem__(self, addr, value):
        reg, how = self._split(addr)
        if value < 0 or value > 0xFFFFFFFF:
            _fail("mem32 value %r is not a 32-bit register value" % value)
        catch_up()
        if len(self.writes) < 10000:
            self.writes.append((addr, value))
        name = _ADC_NAMES[reg]
        old = {ADC_CS: sim.cs, ADC_FCS: sim.fcs, ADC_DIV: sim.div, ADC_INTE: sim.inte}.get(reg, 0)
        if how == "set":
            new = old | value
        elif how == "clr":
            new = old & ~value
        elif how == "xor":
            new = old ^ value
        else:
            new = value
        if reg == ADC_CS:
            self._write_cs(new)
        elif reg == ADC_FCS:
            if new & ~FCS_BITS & 0xFFFFFFFF:
                _fail("FCS reserved bits written: 0x%08x" % new)
            w1c = value & (FCS_OVER | FCS_UNDER) if how in ("rw", "set") else 0
            keep = sim.fcs & (FCS_OVER | FCS_UNDER) & ~w1c
            sim.fcs = (new & (FCS_EN | FCS_SHIFT | FCS_ERR | FCS_DREQ_EN | (0xF << 24))) | keep
            if sim.fcs & FCS_SHIFT:
                for c in sim.dma:
                    if c._treq() == DREQ_ADC and c._size() != 0:
                        _fail("FCS.SHIFT=1 gives 8-bit results but DMA channel %d moves %d-byte units"
                              % (c.channel, 1 << c._size()))
        elif reg == ADC_DIV:
            if new & ~DIV_BITS & 0xFFFFFFFF:
                _fail("DIV reserved bits 31:24 written: 0x%08x" % new)
            sim.div = new
        elif reg == ADC_INTE:
            sim.inte = new & 1
        elif reg in (ADC_RESULT, ADC_INTR, ADC_INTS):
            _fail("ADC %s is read-only" % name)
        elif reg == ADC_FIFO:
            _fail("ADC FIFO is read-only")

    def _write_cs(self, new):
        if new & ~CS_BITS & 0xFFFFFFFF:
            _fail("CS reserved bits written: 0x%08x (defined bits 0x%08x)" % (new, CS_BITS))
        ain = (new >> 12) & 7
        rrobin = (new >> 16) & 0x1F
        many = new & CS_START_MANY
        if many or new & CS_START_ONCE:
            if not (new & CS_EN):
                _fail("CS.START_MANY/START_ONCE with CS.EN=0: the ADC is powered down (4.9.6 CS)")
            if ain > 4:
                _fail("CS.AINSEL=%d: only inputs 0..4 exist" % ain)
            if _pins is not None and ain != _pins.adc_channel(_pins.PPG_ADC):
                _fail("CS.AINSEL=%d but the pulse sensor is on GP%d = ADC%d (vagal.pins)"
                      % (ain, _pins.PPG_ADC, _pins.adc_channel(_pins.PPG_ADC)))
            if rrobin:
                _fail("CS.RROBIN=0x%x would interleave other inputs into the pulse samples" % rrobin)
        was = sim.cs & CS_START_MANY
        sim.cs = new & ~CS_START_ONCE
        if many and not was:
            self._start_many()
        elif was and not many:
            catch_up()
            sim.running = False

    def _start_many(self):
        div_int = (sim.div >> 8) & 0xFFFF
        div_frac = sim.div & 0xFF
        if div_int == 0 and div_frac == 0:
            _fail("CS.START_MANY with DIV=0: conversions back-to-back at 500 kS/s, not a paced rate")
        if div_int + 1 < 96:
            _fail("DIV.INT=%d: 1+INT < 96 cycles, the ADC cannot convert that fast (4.9.2.2)" % div_int)
        sim.pnum = 256 * (div_int + 1) + div_frac
        sim.rate_hz = ADC_CLOCK_HZ * 256 / sim.pnum
        sim.t_start_us = _vt.elapsed_us()
        sim.next_i = 0
        sim.running = True
        for c in sim.dma:
            if c._busy and c._treq() == DREQ_ADC:
                check_dreq_path()


mem32 = _Mem(32)
mem16 = _Mem(16)
mem8 = _Mem(8)


def adc_rate_hz():
    """The free-running rate the board layer programmed (0 if not running)."""
    return sim.rate_hz if sim.running else 0


# ------------------------------------------------------------------ Pin, ADC, PWM, Timer, WDT


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    ALT = 3
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8

    def __init__(self, id, mode=-1, pull=-1, value=None):
        if isinstance(id, str):
            if id != "LED":
                raise ValueError("unknown pin %r" % id)
            id = 25
        if not (0 <= id <= 29):
            raise ValueError("GP%d does not exist on the RP2040 (GP0..GP29)" % id)
        self.id = id
        self.mode = mode
        self.pull = pull
        self._v = 0 if value is None else value

    def init(self, mode=-1, pull=-1, value=None):
        self.mode, self.pull = mode, pull
        if value is not None:
            self._v = value

    def value(self, v=None):
        if v is not None:
            self._v = 1 if v else 0
            return None
        if _pins is not None and self.id == _pins.BUTTON:
            now = _vt.elapsed_us()
            for a, b in sim.buttons:
                if a <= now < b:
                    return 0
            return 1 if self.pull == Pin.PULL_UP else 0
        return self._v

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self._v = 1

    def off(self):
        self._v = 0

    def toggle(self):
        self._v ^= 1

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, hard=False):
        return None


class ADC:
    CORE_TEMP = 4

    def __init__(self, pin):
        gp = pin.id if isinstance(pin, Pin) else pin
        if isinstance(pin, Pin):
            if not (26 <= gp <= 29):
                raise ValueError("GP%d has no ADC input (GP26..GP29)" % gp)
            self.ch = gp - 26
        else:
            if 0 <= gp <= 4:
                self.ch = gp
            elif 26 <= gp <= 29:
                self.ch = gp - 26
            else:
                raise ValueError("invalid ADC channel %r" % gp)
        sim.cs |= CS_EN  # adc_init powers the ADC

    def read_u16(self):
        catch_up()
        c = sim.source.value_at(_vt.elapsed_us())
        return (c << 4) | (c >> 8)


class PWM:
    def __init__(self, pin, freq=None, duty_u16=None, **kw):
        self.pin = pin.id if isinstance(pin, Pin) else pin
        self._f = 0
        self._d = 0
        if freq is not None:
            self.freq(freq)
        if duty_u16 is not None:
            self.duty_u16(duty_u16)

    def freq(self, f=None):
        if f is None:
            return self._f
        # 125 MHz / (256 * 65536) .. 125 MHz / 2: the RP2040 PWM's reach (4.5.2.6)
        if not (8 <= f <= 62500000):
            raise ValueError("PWM frequency %r Hz out of the RP2040's 8 Hz..62.5 MHz" % f)
        self._f = f

    def duty_u16(self, d=None):
        if d is None:
            return self._d
        if not (0 <= d <= 65535):
            raise ValueError("duty_u16 %r outside 0..65535" % d)
        self._d = d
        if _pins is not None and self.pin == _pins.LED_PWM:
            sim.led_duty = d
            sim.watcher.led(d, _vt.elapsed_us())
        elif _pins is not None and self.pin == _pins.MOTOR_PWM:
            sim.motor_duty = d
            sim.watcher.motor(d, _vt.elapsed_us())

    def deinit(self):
        self._d = 0


class Timer:
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, **kw):
        self._cb = None
        if kw:
            self.init(**kw)

    def init(self, mode=PERIODIC, freq=-1, period=-1, callback=None, hard=True, tick_hz=1000):
        if freq > 0:
            self._period_us = 1000000 / freq
        else:
            self._period_us = period * 1000000 / tick_hz
        if self._period_us <= 0:
            raise ValueError("Timer needs freq or period")
        self._mode = mode
        self._cb = callback
        self._hard = hard
        self._t0 = _vt.elapsed_us()
        self._k = 1
        if self not in sim.timers:
            sim.timers.append(self)

    def _run(self, now):
        while self._cb is not None:
            t = self._t0 + int(self._k * self._period_us)
            if t > now:
                break
            self._k += 1
            run_irq(t, self._cb, self, self._hard)
            if self._mode == Timer.ONE_SHOT:
                self.deinit()

    def deinit(self):
        self._cb = None
        if self in sim.timers:
            sim.timers.remove(self)


class WDT:
    MAX_MS = 8388  # RP2040: 24-bit counter at 2 ticks/us (RP2040-E1) -> 8.3 s

    def __init__(self, id=0, timeout=5000):
        if not (1 <= timeout <= self.MAX_MS):
            raise ValueError("WDT timeout %r ms outside 1..%d (RP2040 maximum)" % (timeout, self.MAX_MS))
        sim.wdt_timeout = timeout
        self.feed()
        if _wdt_watch not in _vt._watchers:
            _vt._watchers.append(_wdt_watch)

    def feed(self):
        sim.wdt_deadline = _vt.elapsed_us() + sim.wdt_timeout * 1000


def _wdt_watch(now):
    _wdt_check(now)


def _wdt_check(now):
    if sim.wdt_deadline is not None and now > sim.wdt_deadline:
        sim.wdt_deadline = None
        sys.stderr.write("virtual board: watchdog reset (not fed for %d ms)\n" % sim.wdt_timeout)
        raise SystemExit(3)


# ------------------------------------------------------------------ misc machine API


def disable_irq():
    catch_up()
    return 1


def enable_irq(state=1):
    pass


def unique_id():
    return b"\xe6\x60\x58\x38\x83\x2b\x1c\x2f"


def freq(hz=None):
    global freq_hz
    if hz is None:
        return freq_hz
    freq_hz = hz


def reset():
    sys.stderr.write("virtual board: machine.reset()\n")
    raise SystemExit(4)


def soft_reset():
    raise SystemExit(4)


def idle():
    _vt.sleep_us(100)


def lightsleep(ms=None):
    _vt.sleep_ms(ms or 0)


def reset_cause():
    return 1


PWRON_RESET = 1
WDT_RESET = 3


# ------------------------------------------------------------------ configuration


def _parse_kv(s):
    out = {}
    for part in s.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise ValueError("VAGAL_VIRTUAL_PERSON: %r is not key=value" % part)
        k, v = part.split("=", 1)
        out[k.strip()] = float(v)
    return out


def configure(recording=None, person=None, buttons=None):
    """Choose the ADC source (recording path, or person settings string) and button presses."""
    if recording:
        sim.source = FileSource(recording)
    elif person is not None:
        from person import from_spec

        sim.person = from_spec(_parse_kv(person), keep_beats=64)
        sim.source = PersonSource(sim.person, sim.watcher)
    else:
        sim.source = ConstSource()
    sim.buttons = []
    if buttons:
        for part in buttons.split(","):
            a, d = part.split(":")
            t = int(float(a) * 1000000)
            sim.buttons.append((t, t + int(float(d) * 1000000)))


def _env(name):
    v = os.getenv(name)
    return v if v else None


configure(_env("VAGAL_VIRTUAL_RECORDING"), _env("VAGAL_VIRTUAL_PERSON"), _env("VAGAL_VIRTUAL_BUTTON"))
if _env("VAGAL_VIRTUAL_HEAP_S"):
    sim.heap_every_us = int(float(_env("VAGAL_VIRTUAL_HEAP_S")) * 1000000)
