"""The vagal serial protocol: every message defined once, imported by the firmware and the host.

A line is `<kind> <seq> <field> <field> ...*<crc>` in printable ASCII, ended by "\\n". `seq` counts
lines mod 2**16 in each direction (for commands it is the request id that replies echo), `crc` is
CRC-16/CCITT-FALSE of everything before the `*`, four upper-case hex digits. docs/protocol.md is the
human version of the tables below; tests check the two agree.

Field types: INT (decimal, |x| < 2**30), TOKEN (no spaces), TEXT (the rest of the line, last field
only), INTS (a space-separated list of INT, last field only).
"""

from array import array

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


PROTOCOL_VERSION = const(1)
MAX_LINE = const(200)  # bytes per line, without the newline; longer lines are dropped
SEQ_MOD = const(65536)
INT_LIMIT = const(1073741824)  # 2**30

INT = "i"
TOKEN = "s"
TEXT = "t"
INTS = "l"

# Device -> host messages, one string each: "<kind> <types> <field> <field> ...", one type letter
# per field (INT i, TOKEN s, TEXT t, INTS l) in the order the fields stand on the line. Flat
# strings because nested tuples cost ~4x the heap on the device; vagal.link.table() gives the tuples.
MESSAGES = (
    "hello siis fw proto fs board",
    "beat iiii t_ms ibi_us amp conf",
    "quality is t_ms state",
    "pacer iiisi t_ms rate_mbpm phase dir led",
    "hrv iiiii t_ms hr_x10 rmssd_us sdnn_us count",
    "session iss t_ms state source",
    "setting ss key value",
    "raw iil t_ms fs x",
    "stats iiiiii t_ms lost jitter_us loop_us heap_free rx_bad",
    "mode iss t_ms mode source",
    "breath iiiiiii t_ms valid swing_x10 fit_x10 phase_deg hr_x10 rate_mbpm",
    "coherence iii t_ms ratio_x100 peak_mhz",
    "assess_step iiiiiiiii t_ms rate_mbpm breaths swing_x10 fit_x10 phase_deg coherence_x100 level_x10 se_x10",
    "assess_result isiissii t_ms state rate_mbpm chosen_mbpm date rule spread_mbpm phase_deg",
    "summary isiiiii t_ms mode hr_x10 swing_x10 coherent_pct rate_mbpm breaths",
    "status iissiii t_ms running mode quality rate_mbpm hr_x10 lost",
    "log st level text",
    "ok it id text",
    "err it id reason",
)

# Host -> device commands, same framing; the checksum is optional so a person can type them.
# A command without fields has an empty type string (two spaces after its kind).
COMMANDS = (
    "hello  ",
    "ping  ",
    "get  ",
    "set s assign",
    "defaults  ",
    "start  ",
    "stop  ",
    "raw s state",
    "mode s name",
    "status  ",
    "date s day",
)


def _spec(kind, commands):
    """The table string of kind, or None; found by scanning (no dict, no allocation)."""
    n = len(kind)
    for s in COMMANDS if commands else MESSAGES:
        if s.startswith(kind) and len(s) > n and s[n] == " ":
            return s
    return None


LOG_LEVELS = ("debug", "info", "warn", "error")
NO_ID = -1  # the id an error reply carries when the request's own id could not be read


class ProtocolError(ValueError):
    """A line that is not a valid message; str(e) names the problem."""


def _build_crc_table():
    t = array("H", bytes(512))
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        t[i] = c & 0xFFFF
    return t


_CRC_TABLE = _build_crc_table()
del _build_crc_table


def crc16(data):
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of bytes, or of an ASCII str."""
    if isinstance(data, str):
        data = data.encode()
    crc = 0xFFFF
    t = _CRC_TABLE
    for b in data:  # crc >> 8 and b are both < 256: no mask needed on the index
        crc = ((crc << 8) & 0xFFFF) ^ t[(crc >> 8) ^ b]
    return crc


def _split1(s):
    """(head, sep, rest) around the first space, like str.partition (not on every MicroPython)."""
    i = s.find(" ")
    if i < 0:
        return s, "", ""
    return s[:i], " ", s[i + 1:]


def sanitize(text, token=False):
    """Printable ASCII only (so no Ctrl-C/Ctrl-D ever reaches the wire); tokens also lose spaces/'*'."""
    text = str(text)
    ok = True
    for c in text:
        o = ord(c)
        if o < 32 or o > 126 or (token and (o == 32 or o == 42)):
            ok = False
            break
    if ok:
        return text if (text or not token) else "-"
    out = []
    for c in text:
        o = ord(c)
        if o < 32 or o > 126:
            out.append("?")
        elif token and (o == 32 or o == 42):
            out.append("_")
        else:
            out.append(c)
    return "".join(out) or ("-" if token else "")


def _name(spec, i):
    """Name of field i of a table string (error messages only: allocates)."""
    return spec.split(" ")[2 + i]


def _int_text(spec, i, v):
    if type(v) is not int:
        raise ProtocolError("field %s: expected int, got %s" % (_name(spec, i), type(v).__name__))
    if not -INT_LIMIT < v < INT_LIMIT:
        raise ProtocolError("field %s: %d out of range" % (_name(spec, i), v))
    return str(v)


def encode(kind, seq, *values, commands=False):
    """Build one line (with "\\n") of `kind`; values in table order. Raises ProtocolError on misuse.

    TEXT fields are sanitised and cut so that the line fits MAX_LINE; nothing else is ever cut.
    """
    spec = _spec(kind, commands)
    if spec is None:
        raise ProtocolError("unknown kind %r" % (kind,))
    t0 = len(kind) + 1
    n = spec.find(" ", t0) - t0
    if len(values) != n:
        raise ProtocolError("%s takes %d fields, got %d" % (kind, n, len(values)))
    parts = [kind, str(seq % SEQ_MOD)]
    text = None
    for i in range(n):
        ftype = spec[t0 + i]
        v = values[i]
        if ftype == "i":  # the common case, checked inline (a call per field costs)
            if type(v) is not int or not -INT_LIMIT < v < INT_LIMIT:
                _int_text(spec, i, v)  # raises, naming the field
            parts.append(str(v))
        elif ftype == "s":
            parts.append(sanitize(v, True))
        elif ftype == "l":
            for x in v:
                parts.append(_int_text(spec, i, x))
        else:
            text = sanitize(v)
    head = " ".join(parts)
    if text is not None:
        room = MAX_LINE - 6 - len(head) - 1
        if room < 0:
            raise ProtocolError("%s line too long" % kind)
        if len(text) > room:
            text = text[: room - 3] + "..." if room >= 3 else text[:room]
        head = head + " " + text
    if len(head) + 5 > MAX_LINE:
        raise ProtocolError("%s line too long (%d bytes)" % (kind, len(head) + 5))
    return "%s*%04X\n" % (head, crc16(head))


def encode_command(kind, req_id, *values):
    """A host -> device command line (always with checksum)."""
    return encode(kind, req_id, *values, commands=True)


class Message:
    """A decoded line: kind, seq, values (tuple in table order); m["field"] reads a field by name."""

    def __init__(self, kind, seq, names, values):
        self.kind = kind
        self.seq = seq
        self.names = names
        self.values = values

    def __getitem__(self, name):
        for i in range(len(self.names)):
            if self.names[i] == name:
                return self.values[i]
        raise KeyError(name)


def _parse_int(name, s):
    neg = s[:1] == "-"
    digits = s[1:] if neg else s
    if not digits or len(digits) > 10 or not digits.isdigit():
        raise ProtocolError("field %s: not an integer: %r" % (name, s[:20]))
    for c in digits:  # isdigit() accepts non-ASCII digits on CPython; the wire is ASCII only
        if c < "0" or c > "9":
            raise ProtocolError("field %s: not an integer: %r" % (name, s[:20]))
    v = int(digits)
    if v >= INT_LIMIT:
        raise ProtocolError("field %s: %s out of range" % (name, s[:20]))
    return -v if neg else v


def _as_text(line):
    if isinstance(line, str):
        for c in line:
            o = ord(c)
            if o < 32 or o > 126:
                raise ProtocolError("non-printable character 0x%02x" % o)
        return line
    for b in line:
        if b < 32 or b > 126:
            raise ProtocolError("non-printable byte 0x%02x" % b)
    return bytes(line).decode()


def decode(line, commands=False):
    """Parse one line (str or bytes, newline optional) into a Message; ProtocolError names the problem.

    Device messages must carry a checksum; commands (commands=True) may omit it, and are read
    from the COMMANDS table.
    """
    if len(line) and line[-1] in (10, "\n"):
        line = line[:-1]
    if len(line) and line[-1] in (13, "\r"):
        line = line[:-1]
    if len(line) > MAX_LINE:
        raise ProtocolError("line too long (%d > %d bytes)" % (len(line), MAX_LINE))
    line = _as_text(line)
    if not line:
        raise ProtocolError("empty line")
    star = line.rfind("*")
    if star >= 0:
        crc_text = line[star + 1:]
        if len(crc_text) != 4:
            raise ProtocolError("bad checksum field %r" % crc_text[:8])
        for c in crc_text:
            # device lines are machine-made: only the upper case they are sent in, so a flipped
            # case bit is caught too; a person typing a command may use either case
            if not ("0" <= c <= "9" or "A" <= c <= "F" or (commands and "a" <= c <= "f")):
                raise ProtocolError("bad checksum field %r" % crc_text)
        body = line[:star]
        want = int(crc_text, 16)
        got = crc16(body)
        if want != got:
            raise ProtocolError("checksum mismatch (line says %04X, computed %04X)" % (want, got))
    elif commands:
        body = line
    else:
        raise ProtocolError("missing checksum")
    kind, sp, rest = _split1(body)
    spec = _spec(kind, commands)
    if spec is None:
        raise ProtocolError("unknown %s %r" % ("command" if commands else "message", sanitize(kind)[:20]))
    seq_text, sp, rest = _split1(rest)
    if not seq_text:
        raise ProtocolError("%s: missing sequence number" % kind)
    seq = _parse_int("seq", seq_text)
    if seq < 0 or seq >= SEQ_MOD:
        raise ProtocolError("%s: sequence number %d out of range 0..%d" % (kind, seq, SEQ_MOD - 1))
    values = []
    names = spec.split(" ")
    types = names[1]
    names = tuple(names[2:]) if types else ()
    for i in range(len(types)):
        name = names[i]
        ftype = types[i]
        if ftype == "t":
            values.append(rest)
            rest = ""
            sp = ""
            break
        if ftype == "l":
            xs = []
            if rest:
                for part in rest.split(" "):
                    xs.append(_parse_int(name, part))
            values.append(tuple(xs))
            rest = ""
            sp = ""
            break
        if not sp and not rest:
            raise ProtocolError("%s: missing field %s" % (kind, name))
        part, sp, rest = _split1(rest)
        if not part:
            raise ProtocolError("%s: empty field %s" % (kind, name))
        if ftype == "i":
            values.append(_parse_int(name, part))
        else:
            values.append(part)
    if rest or sp:
        raise ProtocolError("%s: unexpected extra fields" % kind)
    return Message(kind, seq, names, tuple(values))


def decode_command(line):
    """decode() for host -> device commands (checksum optional)."""
    return decode(line, True)


def request_id(line):
    """Best-effort request id of an undecodable command line, NO_ID if there is none, for err replies."""
    if isinstance(line, str):
        line = line.encode()
    i = 0
    n = len(line)
    while i < n and line[i] != 32:
        i += 1
    v = 0
    digits = 0
    i += 1
    while i < n and 48 <= line[i] <= 57 and digits < 6:
        v = v * 10 + line[i] - 48
        digits += 1
        i += 1
    if digits == 0 or v >= SEQ_MOD or (i < n and line[i] not in (32, 42, 13, 10)):
        return NO_ID
    return v


class LineAssembler:
    """Bytes in, complete lines out; lines longer than maxlen are dropped and counted.

    Firmware use allocates only the returned line: feed() keeps a reference to the caller's buffer,
    next_line() copies through a preallocated bytearray. Call next_line() until it returns None
    before reusing the buffer passed to feed(). Empty lines are skipped, a trailing "\\r" is removed.
    """

    def __init__(self, maxlen=MAX_LINE):
        self.maxlen = maxlen
        self.buf = bytearray(maxlen + 1)  # +1: room for the "\r" of a full-length "\r\n" line
        self.len = 0
        self.discarding = False
        self.overlong = 0  # lines dropped for being longer than maxlen
        self.lines = 0  # complete lines returned
        self._data = None
        self._pos = 0
        self._end = 0

    def feed(self, data, n=-1):
        """Queue data[:n] (all of it if n < 0) for next_line()."""
        self._data = data
        self._pos = 0
        self._end = len(data) if n < 0 else n

    def next_line(self):
        """The next complete line as bytes (without "\\r\\n"), or None when the queued data is used up."""
        data = self._data
        if data is None:
            return None
        buf = self.buf
        maxlen = self.maxlen
        i = self._pos
        end = self._end
        while i < end:
            b = data[i]
            i += 1
            if b == 10:
                n = self.len
                self.len = 0
                if self.discarding:
                    self.discarding = False
                    continue
                if n and buf[n - 1] == 13:
                    n -= 1
                if n == 0:
                    continue
                self._pos = i
                self.lines += 1
                return bytes(buf[:n])
            if self.discarding:
                continue
            if self.len >= maxlen and not (b == 13 and self.len == maxlen):
                self.discarding = True
                self.overlong += 1
                self.len = 0
                continue
            buf[self.len] = b
            self.len += 1
        self._data = None
        return None

