"""The thin board layer: the only module that touches machine / rp2 (RP2040, Raspberry Pi Pico).

Sampling (default, mode="dma"): the ADC runs free on its own 48 MHz clock (crystal-derived USB PLL)
at RAW_HZ = 1000 Hz (DIV.INT = 47999) and two DMA channels, paced by DREQ_ADC, fill two halves of a
preallocated buffer. Each channel chains to the other and wraps its write address in a naturally
aligned ring (RING_SEL = write), so the pair re-arms itself in hardware forever: no CPU, no
allocation, and a late interrupt can never make the DMA write outside the buffer. A hard IRQ per
completed half only counts halves and measures the completion time against the sample clock
(jitter). read() decimates 4:1 (sum of 4 raw samples, scaled to read_u16 range) to 250 Hz and stamps
every sample from the sample clock (exact rational period, Bresenham carry), never from ticks_us at
read time. Halves overwritten before the app drained them, and FIFO overflows, are counted in
lost_samples.

Fallback (mode="timer"): a hard machine.Timer at fs calls ADC.read_u16 into a preallocated ring;
a full ring counts lost samples; the IRQ lateness against the sample clock is the jitter.
"""

import sys
import select
from array import array
from time import ticks_us, ticks_ms, ticks_diff, ticks_add

import machine
import micropython

from vagal import pins

try:
    import rp2
    import uctypes
except ImportError:  # a MicroPython port without rp2: only the timer mode works
    rp2 = None
    uctypes = None

try:  # the DMA buffer's decimation in viper (the RP2040 and the unix port compile it)
    from vagal.native import decimate as _decimate
except (ImportError, SyntaxError, ValueError):
    _decimate = None

# RP2040 datasheet 4.9.6: ADC registers (base 0x4004c000) and their fields.
ADC_BASE = 0x4004C000
ADC_CS = ADC_BASE + 0x00
ADC_RESULT = ADC_BASE + 0x04
ADC_FCS = ADC_BASE + 0x08
ADC_FIFO = ADC_BASE + 0x0C
ADC_DIV = ADC_BASE + 0x10
ADC_INTE = ADC_BASE + 0x18
CS_EN = 1 << 0
CS_START_MANY = 1 << 3
CS_READY = 1 << 8
CS_AINSEL_LSB = 12
FCS_EN = 1 << 0
FCS_SHIFT = 1 << 1
FCS_ERR = 1 << 2
FCS_DREQ_EN = 1 << 3
FCS_EMPTY = 1 << 8
FCS_UNDER = 1 << 10
FCS_OVER = 1 << 11
FCS_THRESH_LSB = 24
DIV_INT_LSB = 8
DREQ_ADC = 36  # datasheet 2.5.3.1, DREQ numbers
ADC_CLOCK_HZ = 48000000

RAW_HZ = 1000  # free-running ADC rate; the slowest the 16-bit DIV.INT allows is ~732 Hz
OVERSAMPLE = 4  # raw samples summed per output sample (power of two)
FS = RAW_HZ // OVERSAMPLE  # 250 Hz to the app
HALF_RAW = 128  # raw samples per DMA half: 256 bytes, 128 ms; the app must drain within that
HALF_BYTES = HALF_RAW * 2
RING_BITS = 8  # log2(HALF_BYTES): each half is a naturally aligned 256-byte write ring
HALF_OUT = HALF_RAW // OVERSAMPLE
TIMER_RING = 64  # timer-mode ring (samples), 256 ms at 250 Hz

# Sample-clock arithmetic in units of 1/(48 * 256) us, the DIV resolution (1/256 of a 48 MHz cycle).
_CLK_DEN = (ADC_CLOCK_HZ // 1000000) * 256

LED_PWM_HZ = 1000
MOTOR_PWM_HZ = 20000  # above hearing: the motor must not whine at the bedside
WDT_MS = 8000  # RP2040 maximum is 8388 ms
DEBOUNCE_MS = 20
LONG_PRESS_MS = 800

BUTTON_NONE = 0
BUTTON_SHORT = 1
BUTTON_LONG = 2


def adc_div_for(rate_hz):
    """(INT, FRAC) of ADC DIV for a free-running rate: 48 MHz / (1 + INT + FRAC/256)."""
    total = (ADC_CLOCK_HZ * 256 + rate_hz // 2) // rate_hz  # (1 + INT + FRAC/256) * 256, rounded
    total -= 256
    div_int = total >> 8
    if div_int < 95 or div_int > 0xFFFF:
        raise ValueError("ADC rate %d Hz outside 732..500000 Hz" % rate_hz)
    return div_int, total & 0xFF


def _boot_id():
    """8 hex digits, new at every start (os.urandom: the RP2040's ring oscillator)."""
    try:
        import os

        r = os.urandom(4)
        return "%02x%02x%02x%02x" % (r[0], r[1], r[2], r[3])
    except (ImportError, AttributeError, OSError):
        return "%08x" % (ticks_us() & 0x3FFFFFFF)


class Board:
    """The RP2040 board as the app sees it (contract in docs/architecture.md)."""

    settings_path = "/settings.json"

    def __init__(self, mode="dma"):
        if mode == "dma" and rp2 is None:
            mode = "timer"
        if mode not in ("dma", "timer"):
            raise ValueError("mode must be 'dma' or 'timer'")
        self.mode = mode
        self.fs = FS
        # the RP2040's flash unique id, and a random id of this boot: a host tells a different board
        # (or the same one restarted) on the same port by them
        self.board_id = "".join("%02x" % b for b in machine.unique_id())
        self.boot_id = _boot_id()
        self.lost_samples = 0
        self.overruns = 0  # events (a half or a ring slot overwritten, a FIFO overflow)
        self.fifo_overflows = 0
        self.jitter_us_min = 0  # completion / IRQ time minus sample-clock time
        self.jitter_us_max = 0
        self.started = False
        self._done = 0  # DMA halves completed (IRQ-owned)
        self._half_next = 0  # next half to read
        self._pos = 0  # output samples already read from that half
        self._w = 0  # timer ring: samples written (IRQ-owned)
        self._r = 0  # timer ring: samples read
        div_int, div_frac = adc_div_for(RAW_HZ)
        self.div_int = div_int
        self.div_frac = div_frac
        raw_num = 256 * (div_int + 1) + div_frac  # raw period, in 1/_CLK_DEN us
        if mode == "dma":
            out_num = raw_num * OVERSAMPLE
            half_num = raw_num * HALF_RAW
            # ring of 2 halves, placed on a 256-byte boundary inside a larger array
            self._raw_store = array("H", bytes(2 * HALF_BYTES + HALF_BYTES))
            addr = uctypes.addressof(self._raw_store)
            skip = ((-addr) & (HALF_BYTES - 1)) >> 1
            self._raw = memoryview(self._raw_store)[skip : skip + 2 * HALF_RAW]
            self._half_a = self._raw[:HALF_RAW]
            self._half_b = self._raw[HALF_RAW:]
        else:
            out_num = _CLK_DEN * 1000000 // FS
            half_num = out_num
            self._ring_x = array("H", bytes(2 * TIMER_RING))
            self._ring_t = array("i", bytes(4 * TIMER_RING))
        # read side sample clock: tick of the next output sample, Bresenham remainder
        self._out_step = out_num // _CLK_DEN
        self._out_rem = out_num % _CLK_DEN
        # native.decimate's clock: index, from, to, tick, remainder, step, remainder step, denominator
        self._clk = array("i", [0, 0, 0, 0, 0, self._out_step, self._out_rem, _CLK_DEN])
        self._t_out = 0
        self._t_out_acc = 0
        # IRQ side clock: expected completion tick of the next half / timer sample
        self._irq_step = half_num // _CLK_DEN
        self._irq_rem = half_num % _CLK_DEN
        self._t_irq = 0
        self._t_irq_acc = 0
        self._raw_step = raw_num // _CLK_DEN  # for the offset of a sample inside a group
        self._dma_a = None
        self._dma_b = None
        self._timer = None
        self._led = None
        self._motor = None
        self._button = None
        self._wdt = None
        self._poll = None
        self._rx1 = bytearray(1)
        self._rx1_mv = memoryview(self._rx1)
        # button debounce state
        self._btn_raw = 1
        self._btn_raw_t = 0
        self._btn_stable = 1
        self._btn_down_t = 0
        self._btn_long_sent = False
        # bound methods made once: creating them in the IRQ path would allocate
        self._irq_dma_cb = self._irq_dma
        self._irq_timer_cb = self._irq_timer

    # ---------------------------------------------------------------- start-up

    def start(self, watchdog=True):
        """Start sampling, PWM, button, serial polling and (unless told not to) the watchdog."""
        try:
            micropython.alloc_emergency_exception_buf(128)
        except AttributeError:
            pass
        self._led = machine.PWM(machine.Pin(pins.LED_PWM))
        self._led.freq(LED_PWM_HZ)
        self._led.duty_u16(0)
        self._motor = machine.PWM(machine.Pin(pins.MOTOR_PWM))
        self._motor.freq(MOTOR_PWM_HZ)
        self._motor.duty_u16(0)
        self._button = machine.Pin(pins.BUTTON, machine.Pin.IN, machine.Pin.PULL_UP)
        self._btn_raw = self._btn_stable = self._button.value()
        self._btn_raw_t = ticks_ms()
        try:
            machine.Pin(pins.STATUS_LED, machine.Pin.OUT).value(1)
        except (ValueError, TypeError):
            pass  # Pico W: the LED hangs off the wireless chip
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        # machine.ADC sets the pin up as an analog input (digital input and pulls off)
        self._adc = machine.ADC(machine.Pin(pins.PPG_ADC))
        if self.mode == "dma":
            self._start_dma()
        else:
            self._start_timer()
        if watchdog:
            self._wdt = machine.WDT(timeout=WDT_MS)
        self.started = True

    def _start_dma(self):
        mem32 = machine.mem32
        ain = pins.adc_channel(pins.PPG_ADC)
        if ain < 0:
            raise ValueError("PPG_ADC GP%d is not an ADC pin" % pins.PPG_ADC)
        cs = CS_EN | (ain << CS_AINSEL_LSB)
        mem32[ADC_CS] = cs  # powered, input selected, START_MANY off, no round robin
        for _ in range(1000):
            if mem32[ADC_CS] & CS_READY:
                break
        else:
            raise OSError("ADC never became ready")
        mem32[ADC_DIV] = (self.div_int << DIV_INT_LSB) | self.div_frac
        # FIFO on, DREQ when >= 1 sample, 12-bit results (SHIFT=0, ERR=0), clear sticky OVER/UNDER
        mem32[ADC_FCS] = FCS_EN | FCS_DREQ_EN | (1 << FCS_THRESH_LSB) | FCS_OVER | FCS_UNDER
        for _ in range(8):  # drain stale results
            if mem32[ADC_FCS] & FCS_EMPTY:
                break
            mem32[ADC_FIFO]
        a = rp2.DMA()
        b = rp2.DMA()
        self._dma_a = a
        self._dma_b = b
        for ch, other, half in ((a, b, self._half_a), (b, a, self._half_b)):
            ctrl = ch.pack_ctrl(
                size=1,  # halfword: one 12-bit result
                inc_read=False,  # always the FIFO
                inc_write=True,
                ring_size=RING_BITS,
                ring_sel=True,  # wrap the write address: the half re-arms itself
                chain_to=other.channel,
                treq_sel=DREQ_ADC,
                irq_quiet=False,
            )
            ch.config(read=ADC_FIFO, write=half, count=HALF_RAW, ctrl=ctrl, trigger=False)
            ch.irq(handler=self._irq_dma_cb, hard=True)
        self._done = 0
        self._half_next = 0
        self._pos = 0
        a.active(1)  # armed: waits for the first DREQ
        t0 = ticks_us()
        mem32[ADC_CS] = cs | CS_START_MANY
        # raw sample i is taken at t0 + i*P; output sample j is the mean of raw 4j..4j+3 -> centre
        self._t_out = ticks_add(t0, (self._raw_step * (OVERSAMPLE - 1)) >> 1)
        self._t_out_acc = 0
        self._t_irq = ticks_add(t0, self._raw_step * (HALF_RAW - 1))
        self._t_irq_acc = 0

    def _start_timer(self):
        t0 = ticks_us()
        # a periodic machine.Timer first fires one period after it starts, not at once: sample k
        # (k >= 0) is due at t0 + (k + 1) periods
        self._t_irq = ticks_add(t0, self._irq_step)
        self._t_irq_acc = self._irq_rem
        self._w = 0
        self._r = 0
        self._timer = machine.Timer(
            mode=machine.Timer.PERIODIC, freq=FS, callback=self._irq_timer_cb, hard=True
        )

    def stop(self):
        """Stop sampling and outputs (used by tests and before a soft reset)."""
        if self._dma_a is not None:
            machine.mem32[ADC_CS] = CS_EN | (pins.adc_channel(pins.PPG_ADC) << CS_AINSEL_LSB)
            for ch in (self._dma_a, self._dma_b):
                ch.irq(handler=None)
                ch.active(0)
                ch.close()
            self._dma_a = self._dma_b = None
        if self._timer is not None:
            self._timer.deinit()
            self._timer = None
        if self._led is not None:
            self._led.duty_u16(0)
            self._motor.duty_u16(0)
        self.started = False

    # ------------------------------------------------------------- interrupts

    def _irq_dma(self, dma):
        """Hard IRQ, one per completed half: count it and time it. Must not allocate."""
        now = ticks_us()
        half = 0 if dma is self._dma_a else 1
        if (self._done & 1) != half:  # an IRQ was lost (latency > one half): keep parity
            self._done += 1
        self._done += 1
        self._irq_clock(now)

    def _irq_timer(self, timer):
        """Hard timer IRQ at fs: one ADC reading into the ring. Must not allocate."""
        t = self._irq_clock(ticks_us())
        w = self._w
        if w - self._r >= TIMER_RING:
            self.lost_samples += 1
            self.overruns += 1
        else:
            i = w % TIMER_RING
            self._ring_x[i] = self._adc.read_u16()
            self._ring_t[i] = t
            self._w = w + 1

    def _irq_clock(self, now):
        """In an IRQ: note the jitter of `now` against the expected tick, advance the expected tick
        by one interrupt period (exact fraction carried), and return the tick it expected."""
        t = self._t_irq
        j = ticks_diff(now, t)
        if j > self.jitter_us_max:
            self.jitter_us_max = j
        if j < self.jitter_us_min:
            self.jitter_us_min = j
        nt = ticks_add(t, self._irq_step)
        acc = self._t_irq_acc + self._irq_rem
        if acc >= _CLK_DEN:
            acc -= _CLK_DEN
            nt = ticks_add(nt, 1)
        self._t_irq = nt
        self._t_irq_acc = acc
        return t

    # -------------------------------------------------------------- samples

    def _advance_out(self, n):
        """Move the read-side sample clock on by n samples (lost ones keep their time slots)."""
        t = self._t_out
        acc = self._t_out_acc
        step = self._out_step
        rem = self._out_rem
        while n > 0:
            t = ticks_add(t, step)
            acc += rem
            if acc >= _CLK_DEN:
                acc -= _CLK_DEN
                t = ticks_add(t, 1)
            n -= 1
        self._t_out = t
        self._t_out_acc = acc

    def read(self, xbuf, tbuf):
        """Copy new samples (read_u16 scale) and their ticks into xbuf/tbuf (array 'H' and 'i');
        return how many."""
        if self.mode == "dma":
            return self._read_dma(xbuf, tbuf)
        return self._read_timer(xbuf, tbuf)

    def _read_dma(self, xbuf, tbuf):
        fcs = machine.mem32[ADC_FCS]
        if fcs & (FCS_OVER | FCS_UNDER):
            machine.mem32[ADC_FCS] = (fcs & 0x0F00000F) | FCS_OVER | FCS_UNDER  # W1C
            if fcs & FCS_OVER:
                self.fifo_overflows += 1
                self.overruns += 1
                self.lost_samples += 1  # at least one raw sample; the clock cannot tell more
        cap = len(xbuf)
        if len(tbuf) < cap:
            cap = len(tbuf)
        raw = self._raw
        n = 0
        while n < cap:
            avail = self._done - self._half_next
            if avail <= 0:
                break
            if avail > 1:  # the DMA has gone round: every half but the newest is overwritten
                skip = (avail - 1) * HALF_OUT - self._pos
                self.lost_samples += skip
                self.overruns += 1
                self._advance_out(skip)
                self._half_next += avail - 1
                self._pos = 0
            pos = self._pos
            k = HALF_OUT - pos
            if k > cap - n:
                k = cap - n
            i = (self._half_next & 1) * HALF_RAW + pos * OVERSAMPLE
            n0 = n
            end = n + k
            if _decimate is not None:  # the same loop in viper: ~60 -> ~5 us a sample
                clk = self._clk
                clk[0] = i
                clk[1] = n
                clk[2] = end
                clk[3] = self._t_out
                clk[4] = self._t_out_acc
                n = _decimate(raw, xbuf, tbuf, clk)
                self._t_out = clk[3]
                self._t_out_acc = clk[4]
            else:
                t = self._t_out
                acc = self._t_out_acc
                step = self._out_step
                rem = self._out_rem
                while n < end:
                    xbuf[n] = (raw[i] + raw[i + 1] + raw[i + 2] + raw[i + 3]) << 2
                    tbuf[n] = t
                    t = ticks_add(t, step)
                    acc += rem
                    if acc >= _CLK_DEN:
                        acc -= _CLK_DEN
                        t = ticks_add(t, 1)
                    i += OVERSAMPLE
                    n += 1
                self._t_out = t
                self._t_out_acc = acc
            if self._done - self._half_next > 1:  # overwritten while copying: discard
                self.lost_samples += k
                self.overruns += 1
                n = n0
            pos += k
            if pos >= HALF_OUT:
                self._half_next += 1
                pos = 0
            self._pos = pos
        return n

    def _read_timer(self, xbuf, tbuf):
        state = machine.disable_irq()
        w = self._w
        machine.enable_irq(state)
        cap = len(xbuf)
        if len(tbuf) < cap:
            cap = len(tbuf)
        r = self._r
        n = 0
        while r < w and n < cap:
            i = r % TIMER_RING
            xbuf[n] = self._ring_x[i]
            tbuf[n] = self._ring_t[i]
            r += 1
            n += 1
        self._r = r
        return n

    # ------------------------------------------------------------ outputs

    def set_led(self, level):
        """LED PWM duty 0..65535, linear (the app applies gamma)."""
        self._led.duty_u16(0 if level < 0 else (65535 if level > 65535 else level))

    def set_motor(self, level):
        """Motor PWM duty 0..65535."""
        self._motor.duty_u16(0 if level < 0 else (65535 if level > 65535 else level))

    def feed(self):
        if self._wdt is not None:
            self._wdt.feed()

    def button(self):
        """Debounced button events: 0 none, 1 short press (on release), 2 long press (when held)."""
        now = ticks_ms()
        v = self._button.value()
        if v != self._btn_raw:
            self._btn_raw = v
            self._btn_raw_t = now
            return BUTTON_NONE
        held = ticks_diff(now, self._btn_raw_t)
        if v != self._btn_stable and held >= DEBOUNCE_MS:
            self._btn_stable = v
            if v == 0:  # pressed (pull-up, button to GND)
                self._btn_down_t = self._btn_raw_t
                self._btn_long_sent = False
                return BUTTON_NONE
            if not self._btn_long_sent:
                return BUTTON_SHORT
            return BUTTON_NONE
        if self._btn_stable == 0 and not self._btn_long_sent:
            if ticks_diff(now, self._btn_down_t) >= LONG_PRESS_MS:
                self._btn_long_sent = True
                return BUTTON_LONG
        return BUTTON_NONE

    # ------------------------------------------------------------- serial

    def serial_read(self, buf):
        """Read up to len(buf) bytes that are already waiting; never blocks."""
        n = 0
        cap = len(buf)
        poll = self._poll
        stdin = sys.stdin.buffer
        rx = self._rx1_mv
        while n < cap:
            ready = False
            for _obj, ev in poll.ipoll(0):
                if ev & select.POLLIN:
                    ready = True
            if not ready:
                break
            try:
                got = stdin.readinto(rx)
            except OSError:
                break
            if not got:
                break
            buf[n] = self._rx1[0]
            n += 1
        return n

    def serial_write(self, data, n=-1):
        """Write a str or bytes line to the USB CDC port (sys.stdout); n >= 0: the first n bytes of
        a buffer (protocol.LineWriter's, written in place: no slice)."""
        if isinstance(data, str):
            sys.stdout.write(data)
        elif n >= 0:
            sys.stdout.buffer.write(data, n)
        else:
            sys.stdout.buffer.write(data)

    # --------------------------------------------------------------- time

    def ticks_us(self):
        return ticks_us()

    def ticks_ms(self):
        return ticks_ms()

    def stats(self):
        """Sampling health for status messages: (lost_samples, overruns, jitter_min, jitter_max)."""
        return (self.lost_samples, self.overruns, self.jitter_us_min, self.jitter_us_max)
