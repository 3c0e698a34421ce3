"""Reading journal files (vagal.journal writes them): every intact record, and what was skipped.

Host side (`vagal sync`, tests); portable like the rest of the core but never loaded by the app, so
it costs the device no heap. A file is read record by record: a record whose CRC fails or that is cut
short (a power cut while it was written) ends the reading of that file, and everything before it is
kept. Unknown record kinds of a known format are skipped (a later firmware may add kinds); a header
whose format is newer than FORMAT raises NewerFormat naming both versions, a file without an intact
header (a power cut as the session began) JournalError.
"""

from struct import calcsize, unpack_from

from vagal import journal as J
from vagal.settings import MODES


# record kinds and payload lengths (the writer's, vagal.journal, keeps them as private consts)
HEADER = ord("H")
BREATH = ord("B")
MINUTE = ord("M")
SUMMARY = ord("S")
HEADER_LEN = calcsize(J.HEADER_FMT) + 20  # then the two 10-byte dates
BREATH_LEN = calcsize(J.BREATH_FMT)
MINUTE_LEN = calcsize(J.MINUTE_FMT)
SUMMARY_LEN = calcsize(J.SUMMARY_FMT)


class JournalError(ValueError):
    """A journal file that cannot be read at all (no intact header); str(e) names the problem."""


class NewerFormat(JournalError):
    """A journal written by a newer firmware: refused, never misread."""


def _text(b, i, n):
    out = ""
    for k in range(n):
        c = b[i + k]
        if c == 0:
            break
        out += chr(c) if 32 <= c < 127 else "?"
    return out


def _name(names, i):
    return names[i] if i < len(names) else "unknown"


class JournalSession:
    """One session read from its journal file."""

    def __init__(self, name):
        self.name = name
        self.format = 0
        self.boot = 0
        self.index = 0
        self.uptime_s = 0  # seconds since its boot when it started
        self.mode = ""  # the mode it started in
        self.source = ""
        self.settings = {}
        self.date = ""  # the date the host had told the board ("" unknown)
        self.resonance_date = ""
        self.breaths = []  # (t_ms, valid, swing_x10, fit_x10, phase_deg, hr_x10, rate_mbpm)
        self.minutes = []  # (t_ms, hr_x10, rmssd_us, sdnn_us, coherence_x100, quality_pct, rate_mbpm)
        self.summary = None  # (t_ms, mode, hr_x10, swing_x10, coherent_pct, rate_mbpm, breaths, source)
        self.records = 0
        self.problems = []  # what was skipped, in words

    def complete(self):
        return self.summary is not None

    def duration_ms(self):
        """From the summary, else the last record's time (a session cut short)."""
        if self.summary is not None:
            return self.summary[0]
        t = 0
        for rows in (self.breaths, self.minutes):
            if rows and rows[-1][0] > t:
                t = rows[-1][0]
        return t


def parse(data, name=""):
    """A JournalSession from a journal file's bytes; JournalError for a newer format or no header."""
    s = JournalSession(name)
    i = 0
    n = len(data)
    while i < n:
        if n - i < 4:
            s.problems.append("a torn record at byte %d (%d bytes): skipped" % (i, n - i))
            break
        kind = data[i]
        ln = data[i + 1]
        end = i + 2 + ln
        if end + 2 > n:
            s.problems.append("a torn record at byte %d (%d of %d bytes): skipped"
                              % (i, n - i, ln + 4))
            break
        crc = (data[end] << 8) | data[end + 1]
        if J.crc16_range(data, i, end) != crc:
            s.problems.append("a damaged record at byte %d (CRC): it and the %d bytes after it skipped"
                              % (i, n - i - ln - 4))
            break
        p = i + 2
        if s.records == 0:
            if kind != HEADER:
                raise JournalError("%s: no header record (kind %d at byte 0)" % (name, kind))
            fmt = data[p]
            if fmt > J.FORMAT:
                raise NewerFormat("%s: journal format %d from a newer firmware; this vagal reads "
                                   "format %d: update vagal" % (name, fmt, J.FORMAT))
            s.format = fmt
            v = unpack_from(J.HEADER_FMT, data, p)
            s.boot, s.index, s.uptime_s = v[1], v[2], v[3]
            s.mode = _name(MODES, v[4])
            s.source = _name(J.SOURCES, v[5])
            s.settings = {"rate_mbpm": v[6], "resonance_mbpm": v[7], "inhale_pct": v[8],
                          "session_min": v[9], "tuning": v[10], "winddown_min": v[11],
                          "assess_step_s": v[12], "brightness": v[13]}
            s.date = _text(data, p + 24, 10)
            if ln >= 44:
                s.resonance_date = _text(data, p + 34, 10)
        elif kind == BREATH and ln >= BREATH_LEN:
            s.breaths.append(unpack_from(J.BREATH_FMT, data, p))
        elif kind == MINUTE and ln >= MINUTE_LEN:
            s.minutes.append(unpack_from(J.MINUTE_FMT, data, p))
        elif kind == SUMMARY and ln >= SUMMARY_LEN:
            v = unpack_from(J.SUMMARY_FMT, data, p)
            s.summary = (v[0], _name(MODES, v[1])) + tuple(v[2:7]) + (_name(J.SOURCES, v[7]),)
        else:
            s.problems.append("a record of unknown kind %d (%d bytes) at byte %d: skipped" % (kind, ln, i))
        s.records += 1
        i = end + 2
    if s.records == 0:
        raise JournalError("%s: no intact header record (%d bytes)" % (name, n))
    if s.summary is None:
        s.problems.append("no summary: the session was cut short (a power cut or a reset)")
    return s
