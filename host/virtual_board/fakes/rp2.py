"""Fake rp2 module: rp2.DMA as MicroPython documents it, simulated by the fake machine's ADC.

Every trigger of a channel is checked against the RP2040 datasheet (2.5 DMA) for the ADC use:
reads from the ADC FIFO must be paced by DREQ_ADC (36), not increment the read address, move units
that match FCS.SHIFT, increment the write address, and stay inside a buffer handed to config()
(ring-wrapped writes: the ring must be naturally aligned to 2**ring_size bytes and lie inside it).
"""

import uctypes
import machine as _m

_fail = _m._fail
_NCH = 12
_claimed = [False] * _NCH

# CTRL_TRIG fields (2.5.7): name -> (shift, bits); MicroPython's pack_ctrl names
_FIELDS = (
    ("enable", 0, 1), ("high_pri", 1, 1), ("size", 2, 2), ("inc_read", 4, 1), ("inc_write", 5, 1),
    ("ring_size", 6, 4), ("ring_sel", 10, 1), ("chain_to", 11, 4), ("treq_sel", 15, 6),
    ("irq_quiet", 21, 1), ("bswap", 22, 1), ("sniff_en", 23, 1), ("busy", 24, 1),
    ("write_err", 29, 1), ("read_err", 30, 1), ("ahb_err", 31, 1),
)
_READ_ONLY = ("busy", "ahb_err")
# MicroPython default: quiet, unpaced, read and write incrementing, word transfers, enabled
_DEFAULT = (1 << 21) | (0x3F << 15) | (1 << 5) | (1 << 4) | (2 << 2) | (1 << 0)
TREQ_UNPACED = 0x3F


class DMA:
    def __init__(self):
        for i in range(_NCH):
            if not _claimed[i]:
                _claimed[i] = True
                self._ch = i
                break
        else:
            raise OSError(16, "EBUSY: no free DMA channel")
        self._read = 0
        self._write = 0
        self._reload = 0
        self._remaining = 0
        self._ctrl = self.pack_ctrl()
        self._fc_ctrl = None
        self._fc = None
        self._busy = False
        self._handler = None
        self._hard = False
        self._bufs = []  # (address, nbytes, memoryview of halfwords)
        self.triggers = 0
        self.completions = 0
        _m.sim.dma.append(self)

    # -- attributes as on the Pico
    @property
    def channel(self):
        return self._ch

    @property
    def read(self):
        _m.catch_up()
        return self._read

    @read.setter
    def read(self, v):
        self._read = self._addr(v)

    @property
    def write(self):
        _m.catch_up()
        return self._write

    @write.setter
    def write(self, v):
        self._write = self._addr(v, True)

    @property
    def count(self):
        _m.catch_up()
        return self._remaining if self._busy else self._reload

    @count.setter
    def count(self, v):
        self._reload = int(v)

    @property
    def ctrl(self):
        _m.catch_up()
        v = self._ctrl & ~(1 << 24)
        return v | ((1 << 24) if self._busy else 0)

    @ctrl.setter
    def ctrl(self, v):
        self._ctrl = int(v)

    def _addr(self, v, is_write=False):
        if isinstance(v, int):
            return v
        a = uctypes.addressof(v)
        if is_write:
            mv = memoryview(v)
            n = len(mv)
            # the ADC path moves halfwords; keep a halfword view of the buffer for the simulation
            self._bufs.append((a, n * (2 if _itemsize(v) == 2 else 1), mv if _itemsize(v) == 2 else None))
        return a

    def pack_ctrl(self, default=None, **kw):
        v = (_DEFAULT | ((self._ch & 0xF) << 11)) if default is None else default
        names = {f[0]: f for f in _FIELDS}
        for k, val in kw.items():
            if k not in names:
                raise TypeError("pack_ctrl: unknown field %r" % k)
            _, sh, bits = names[k]
            if k in _READ_ONLY:
                continue
            val = int(val)
            mask = (1 << bits) - 1
            if val & ~mask:
                raise ValueError("bad field value")
            v = (v & ~(mask << sh)) | (val << sh)
        return v

    @staticmethod
    def unpack_ctrl(value):
        return {name: (value >> sh) & ((1 << bits) - 1) for name, sh, bits in _FIELDS}

    def config(self, read=None, write=None, count=None, ctrl=None, trigger=False):
        if read is not None:
            self.read = read
        if write is not None:
            self.write = write
        if count is not None:
            self.count = count
        if ctrl is not None:
            self.ctrl = ctrl
        if trigger:
            self._trigger()

    def active(self, value=None):
        _m.catch_up()
        if value is not None:
            if value:
                self._trigger()
            else:
                self._busy = False
        return self._busy

    def irq(self, handler=None, hard=False):
        self._handler = handler
        self._hard = hard

    def close(self):
        self._busy = False
        self._handler = None
        if self in _m.sim.dma:
            _m.sim.dma.remove(self)
        _claimed[self._ch] = False

    # -- simulation
    def _f(self, name):
        if self._fc_ctrl != self._ctrl:  # decoded once per CTRL value: the simulation asks often
            self._fc = DMA.unpack_ctrl(self._ctrl)
            self._fc_ctrl = self._ctrl
        return self._fc[name]

    def _treq(self):
        return self._f("treq_sel")

    def _size(self):
        return self._f("size")

    def _trigger(self):
        if not self._f("enable"):
            return  # a disabled channel ignores triggers (2.5.7 CTRL.EN)
        self._check()
        self._remaining = self._reload
        self._busy = self._remaining > 0
        self.triggers += 1

    def _check(self):
        """The datasheet rules for a channel reading the ADC FIFO."""
        ch = self._ch
        treq = self._treq()
        reads_fifo = self._read == _m.ADC_FIFO
        if reads_fifo and treq != _m.DREQ_ADC:
            _fail("DMA ch%d reads the ADC FIFO with TREQ_SEL=%d: must be paced by DREQ_ADC=36 (2.5.3.1)"
                  % (ch, treq))
        if treq == _m.DREQ_ADC:
            if not reads_fifo:
                _fail("DMA ch%d is paced by DREQ_ADC but reads 0x%08x, not the ADC FIFO 0x%08x"
                      % (ch, self._read, _m.ADC_FIFO))
            if self._f("inc_read"):
                _fail("DMA ch%d: INCR_READ=1 walks past the ADC FIFO register; it must stay fixed" % ch)
            if not self._f("inc_write"):
                _fail("DMA ch%d: INCR_WRITE=0 overwrites one location; a sample buffer needs INCR_WRITE=1" % ch)
            want = 0 if (_m.sim.fcs & _m.FCS_SHIFT) else 1
            if self._size() != want:
                _fail("DMA ch%d: DATA_SIZE=%d but FCS.SHIFT=%d gives %s results (DATA_SIZE=%d)"
                      % (ch, self._size(), 1 if want == 0 else 0, "8-bit" if want == 0 else "12-bit", want))
            if self._reload <= 0:
                _fail("DMA ch%d: TRANS_COUNT=0, the channel would do nothing" % ch)
            chain = self._f("chain_to")
            if chain >= _NCH:
                _fail("DMA ch%d: CHAIN_TO=%d, the RP2040 has channels 0..11" % (ch, chain))
            if self._f("bswap"):
                _fail("DMA ch%d: BSWAP=1 would byte-swap the ADC results" % ch)
            self._check_write_region()
            if _m.sim.running:
                _m.check_dreq_path()

    def _region(self):
        """(buffer view, element index of the first write, elements writable before a wrap/end, ring)."""
        step = 1 << self._size()
        ring = self._f("ring_size")
        ring_write = ring and self._f("ring_sel")
        for a, nbytes, mv in self._bufs:
            if a <= self._write < a + nbytes:
                return a, nbytes, mv, ring_write, step
        _fail("DMA ch%d: write address 0x%x is outside every buffer given to config(write=...)"
              % (self._ch, self._write))

    def _check_write_region(self):
        a, nbytes, mv, ring_write, step = self._region()
        if mv is None:
            raise NotImplementedError("fake DMA simulates halfword (array 'H') buffers only")
        ring = self._f("ring_size")
        if ring and not self._f("ring_sel"):
            _fail("DMA ch%d: RING_SEL=0 wraps the READ address; the write buffer must wrap (RING_SEL=1)"
                  % self._ch)
        if ring_write:
            size = 1 << ring
            base = self._write & ~(size - 1)
            if base < a or base + size > a + nbytes:
                _fail("DMA ch%d: write ring of %d bytes at 0x%x is not inside the buffer 0x%x+%d: "
                      "a ring must be naturally aligned to 2**RING_SIZE bytes (2.5.3.2)"
                      % (self._ch, size, base, a, nbytes))
            if self._reload * step != size:
                _fail("DMA ch%d: TRANS_COUNT*size = %d bytes but the write ring is %d bytes: each "
                      "trigger would not fill the ring exactly once" % (self._ch, self._reload * step, size))
        else:
            if self._write + self._reload * step > a + nbytes:
                _fail("DMA ch%d: %d transfers from 0x%x run %d bytes past the end of the buffer"
                      % (self._ch, self._reload, self._write,
                         self._write + self._reload * step - a - nbytes))

    def _advance_write(self, nbytes):
        ring = self._f("ring_size")
        if ring and self._f("ring_sel"):
            size = 1 << ring
            base = self._write & ~(size - 1)
            self._write = base + ((self._write - base + nbytes) & (size - 1))
        else:
            self._write += nbytes

    def _transfer_from(self, source, k, i0, t0_us, rate_hz):
        """k ADC results (samples i0..) arrive through this channel."""
        a, nbytes, mv, ring_write, step = self._region()
        while k > 0:
            j = (self._write - a) >> 1
            room = (a + nbytes - self._write) >> 1
            ring = self._f("ring_size")
            if ring_write:
                size = 1 << ring
                room = (size - (self._write & (size - 1))) >> 1
            m = k if k < room else room
            source.fill(mv, j, m, i0, t0_us, rate_hz)
            self._advance_write(2 * m)
            self._remaining -= m
            i0 += m
            k -= m

    def _transfer_codes(self, codes):
        a, nbytes, mv, ring_write, step = self._region()
        for c in codes:
            if self._remaining <= 0:
                break
            mv[(self._write - a) >> 1] = c
            self._advance_write(2)
            self._remaining -= 1

    def _complete(self, t_us):
        self._busy = False
        self.completions += 1
        chain = self._f("chain_to")
        if chain != self._ch:
            for c in _m.sim.dma:
                if c._ch == chain:
                    c._trigger()
                    break
        if self._handler is not None and not self._f("irq_quiet"):
            _m.run_irq(t_us, self._handler, self, self._hard)


def _itemsize(obj):
    try:
        tc = obj.typecode  # array
    except AttributeError:
        mv = memoryview(obj)
        try:
            return mv.itemsize
        except AttributeError:
            # MicroPython memoryviews lack itemsize: infer it from one element's address step
            if len(mv) >= 2:
                return uctypes.addressof(mv[1:]) - uctypes.addressof(mv)
            return 1
    return 2 if tc in ("H", "h") else (1 if tc in ("B", "b") else 4)
