"""The session journal on flash: every session (any mode, with or without a host) leaves a record.

Why: the device is used on its own (in the hand, on the bedside table), so a session must not need a
laptop to be kept. `vagal sync` reads the journal later (docs/journal.md).

One file per session in the journal folder (`/journal` on the Pico), named BBBBB-NNN.vj (boot count,
session number within that boot), append-only. Each record is

    kind (1 byte) | length n (1 byte) | payload (n bytes) | CRC-16/CCITT-FALSE of kind..payload (2 bytes)

so a power cut loses at most the record being written: a reader keeps every record before a torn or
damaged one. A new session always starts a new file, so nothing is ever appended after a torn record.
Records are packed into one preallocated bytearray (no allocation per breath) and written once a
minute and at the session's end (one open/append/close: the flash is spared and a task step stays
short). The folder is bounded (CAPACITY bytes): the oldest sessions are dropped first. The boot
count lives in the folder's `boot` file (written once per boot, atomically).

The record layouts (little-endian) are the tables below; vagal.journal_read parses them (host side).
"""

import os
from struct import pack_into

from vagal.protocol import _CRC_TABLE
from vagal.settings import MODES
from vagal.ticks import ticks_diff

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


FORMAT = const(1)  # the record layout version, in every session's header record
CAPACITY = const(262144)  # bytes the journal may take on flash (oldest sessions dropped first)
BATCH = const(256)  # bytes buffered between writes (a minute of 6-12 breaths: 110-230 bytes)
SUFFIX = ".vj"

# record kinds (the letters H B M S; vagal.journal_read reads them by these letters)
_HEADER = const(72)  # "H"
_BREATH = const(66)  # "B"
_MINUTE = const(77)  # "M"
_SUMMARY = const(83)  # "S"

# payload layouts of this format (struct, little-endian); HEADER_FMT is followed by two 10-byte dates
HEADER_FMT = "<BIHIBBHHBBBBHB"  # format boot index uptime_s mode source rate_mbpm resonance_mbpm
# inhale_pct session_min tuning winddown_min assess_step_s brightness; then date, resonance_date
BREATH_FMT = "<IBhhhHH"  # t_ms valid swing_x10 fit_x10 phase_deg hr_x10 rate_mbpm
MINUTE_FMT = "<IHIIiBH"  # t_ms hr_x10 rmssd_us sdnn_us coherence_x100 quality_pct rate_mbpm
SUMMARY_FMT = "<IBHhBHHB"  # t_ms mode hr_x10 swing_x10 coherent_pct rate_mbpm breaths source
_HEADER_LEN = const(44)
_BREATH_LEN = const(15)
_MINUTE_LEN = const(21)
_SUMMARY_LEN = const(15)

SOURCES = ("boot", "button", "host", "auto")


def file_name(boot, index):
    return "%05d-%03d%s" % (boot, index, SUFFIX)


def parse_name(name):
    """(boot, index) of a journal file name BBBBB-NNN.vj, or None."""
    if len(name) != 9 + len(SUFFIX) or not name.endswith(SUFFIX) or name[5] != "-":
        return None
    b = name[:5]
    i = name[6:9]
    if not (b.isdigit() and i.isdigit()):
        return None
    return int(b), int(i)


def crc16_range(buf, start, end):
    """CRC-16/CCITT-FALSE of buf[start:end] without slicing (no allocation)."""
    crc = 0xFFFF
    t = _CRC_TABLE
    for i in range(start, end):
        crc = ((crc << 8) & 0xFFFF) ^ t[(crc >> 8) ^ buf[i]]
    return crc


def _join(folder, name):
    return folder + "/" + name if folder else "/" + name


class Journal:
    """The writer the app calls: open() at boot, start() / breath() / minute() / end() in a session. Never raises: a flash problem is logged once and the journal goes quiet
    (the breathing light must go on)."""

    def __init__(self, folder, log=None, capacity=CAPACITY):
        self.folder = folder
        self.log = log
        self.capacity = capacity
        self.buf = bytearray(BATCH)
        self.n = 0  # bytes buffered
        self.boot = 0
        self.index = 0  # sessions started this boot
        self.current = None  # file name of the running session, None between sessions
        self.used = 0  # bytes of the journal on flash (files only)
        self.sessions = 0  # session files on flash
        self.ok = False
        self.dropped = 0  # sessions dropped for room since boot
        self.uptime_s = 0  # seconds since boot, from ticks (advance())
        self._up_ms = 0
        self._up_rem = 0

    # ---------------------------------------------------------------- housekeeping
    def _fail(self, what, e):
        if self.ok and self.log is not None:
            self.log("error", "journal off: %s: %s" % (what, e))
        self.ok = False

    def open(self, now_ms):
        """At boot: the folder, the boot count (one more than ever seen), the room used."""
        self._up_ms = now_ms
        folder = self.folder
        self.ok = True
        try:
            try:
                os.mkdir(folder)
            except OSError:
                pass  # it exists (or cannot be made: listdir below says so)
            boot = 0
            try:
                f = open(_join(folder, "boot"))
                try:
                    boot = int(f.read().strip() or "0")
                finally:
                    f.close()
            except (OSError, ValueError):
                boot = 0
            used = 0
            count = 0
            for name in os.listdir(folder):
                bi = parse_name(name)
                if bi is not None:
                    boot = bi[0] if bi[0] > boot else boot  # the boot file lost: never reuse a name
                    used += os.stat(_join(folder, name))[6]
                    count += 1
            self.boot = boot + 1 if boot < 99999 else 1
            tmp = _join(folder, "boot.tmp")
            f = open(tmp, "w")
            try:
                f.write("%d\n" % self.boot)
            finally:
                f.close()
            os.rename(tmp, _join(folder, "boot"))
            self.used = used
            self.sessions = count
        except Exception as e:  # OSError, or MemoryError listing a huge folder
            self._fail(folder, e)

    def advance(self, now_ms):
        """Keep uptime_s from the ms tick (called about every second: the tick wraps after days)."""
        d = ticks_diff(now_ms, self._up_ms)
        if d <= 0:
            return
        self._up_ms = now_ms
        acc = self._up_rem + d
        s = acc // 1000
        self.uptime_s += s
        self._up_rem = acc - s * 1000

    def _make_room(self, need):
        """Drop the oldest finished sessions until `need` more bytes fit. -> True if they fit."""
        if self.used + need <= self.capacity:
            return True
        from vagal import journal_files  # rarely: only when the journal is full

        return journal_files.make_room(self, need)

    # ---------------------------------------------------------------- records
    def _begin(self, kind, n):
        """Room for one record of payload n in the batch; -> offset of its payload, or -1."""
        if not self.ok or self.current is None:
            return -1
        if self.n + n + 4 > BATCH:
            self.flush()
            if not self.ok:
                return -1
        i = self.n
        self.buf[i] = kind
        self.buf[i + 1] = n
        return i + 2

    def _end(self, p, n):
        crc = crc16_range(self.buf, p - 2, p + n)
        self.buf[p + n] = crc >> 8
        self.buf[p + n + 1] = crc & 0xFF
        self.n = p + n + 2

    def start(self, mode, source, settings, date):
        """A session begins: a new file, its header record written at once (so even a session cut
        short by a power cut has its settings)."""
        if self.current is not None:
            self.end(0, mode, 0, 0, 0, 0, 0, "auto")
        if not self.ok:
            return
        self.index = self.index + 1 if self.index < 999 else 1
        self.n = 0
        try:
            self._make_room(BATCH)
        except OSError as e:
            self._fail("room", e)
            return
        self.current = file_name(self.boot, self.index)
        p = self._begin(_HEADER, _HEADER_LEN)
        g = settings.get
        buf = self.buf
        pack_into(HEADER_FMT, buf, p, FORMAT, self.boot, self.index, self.uptime_s,
                  MODES.index(mode), SOURCES.index(source), g("rate_mbpm"), g("resonance_mbpm"),
                  g("inhale_pct"), g("session_min"), 1 if g("tuning") else 0, g("winddown_min"),
                  g("assess_step_s"), g("brightness"))
        rd = g("resonance_date")  # the day the stored rate was measured
        for k in range(10):
            buf[p + 24 + k] = ord(date[k]) if k < len(date) else 0
            buf[p + 34 + k] = ord(rd[k]) if k < len(rd) else 0
        self._end(p, _HEADER_LEN)
        self.sessions += 1
        self.flush()

    def breath(self, t_ms, valid, swing_x10, fit_x10, phase_deg, hr_x10, rate_mbpm):
        p = self._begin(_BREATH, _BREATH_LEN)
        if p >= 0:
            pack_into(BREATH_FMT, self.buf, p, t_ms, valid, swing_x10, fit_x10, phase_deg, hr_x10, rate_mbpm)
            self._end(p, _BREATH_LEN)

    def minute(self, t_ms, hr_x10, rmssd_us, sdnn_us, coherence_x100, quality_pct, rate_mbpm):
        """One minute's numbers, then the batch goes to flash (once a minute)."""
        p = self._begin(_MINUTE, _MINUTE_LEN)
        if p >= 0:
            pack_into(MINUTE_FMT, self.buf, p, t_ms, hr_x10, rmssd_us, sdnn_us, coherence_x100,
                      quality_pct, rate_mbpm)
            self._end(p, _MINUTE_LEN)
            self.flush()

    def end(self, t_ms, mode, hr_x10, swing_x10, coherent_pct, rate_mbpm, breaths, source):
        """The summary record, the batch to flash, the file closed for good."""
        p = self._begin(_SUMMARY, _SUMMARY_LEN)
        if p >= 0:
            pack_into(SUMMARY_FMT, self.buf, p, t_ms, MODES.index(mode), hr_x10, swing_x10,
                      coherent_pct, rate_mbpm, breaths, SOURCES.index(source))
            self._end(p, _SUMMARY_LEN)
            self.flush()
        self.current = None
        self.n = 0

    def flush(self):
        """Append the batch to the session's file: one open, write, close."""
        n = self.n
        if n == 0 or self.current is None or not self.ok:
            return
        self.n = 0
        try:
            if not self._make_room(n):
                return  # a session bigger than the journal: its end is not kept
            f = open(_join(self.folder, self.current), "ab")
            try:
                f.write(memoryview(self.buf)[:n])
            finally:
                f.close()
            self.used += n
        except OSError as e:
            self._fail(self.current, e)
