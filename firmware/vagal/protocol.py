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
_INT_MAX = const(1073741823)  # INT_LIMIT - 1: a small int on the Pico (INT_LIMIT is not)

INT = "i"
TOKEN = "s"
TEXT = "t"
INTS = "l"

# Device -> host messages, one string each: "<kind> <types> <field> <field> ...", one type letter
# per field (INT i, TOKEN s, TEXT t, INTS l) in the order the fields stand on the line. Flat
# strings because nested tuples cost ~4x the heap on the device; vagal.link.table() gives the tuples.
MESSAGES = (
    "hello siiss fw proto fs board boot",
    "beat iiii t_ms ibi_us amp conf",
    "quality is t_ms state",
    "pacer iiisi t_ms rate_mbpm phase dir led",
    "hrv iiiii t_ms hr_x10 rmssd_us sdnn_us count",
    "session iss t_ms state source",
    "setting ss key value",
    "raw iil t_ms fs x",
    "stats iiiiiii t_ms lost jitter_us loop_us heap_free rx_bad flash_writes",
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
    "journal iiiiii format boot uptime_s used_bytes capacity_bytes sessions",
    "jsession iiii boot index bytes closed",
    "jchunk iiis boot index offset hex",
)

# Fields added to a message after its first version, "<kind> <field> <default>": a line from older
# firmware that ends before such a field decodes with the default (INT fields: the int). To add a
# field: append it to the kind's MESSAGES string (type letter and name) and add it here
# (docs/protocol.md, Versioning). Extra trailing fields from newer firmware are ignored.
OPTIONAL = ("hello boot -", "stats flash_writes -1", "assess_step level_x10 -1", "assess_step se_x10 -1",
            "assess_result rule -", "assess_result spread_mbpm -1", "assess_result phase_deg 0")

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
    "journal  ",
    "jlist i start",
    "jread iii boot index offset",
    "jdrop ii boot index",
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


class LineWriter:
    """Encodes device messages of INT and TOKEN fields into one preallocated buffer, byte for byte
    what encode() returns: the lines a session sends every second (pacer, beat, hrv, stats, ...)
    then allocate nothing (encode() builds a dozen strings per line, and on MicroPython each new
    string is also looked up among the interned ones). TEXT and INTS fields: use encode().

    n = w.line(kind, seq, values, count) -> the line is w.buf[:n], "\n" included; values is a
    list the caller reuses (count fields from its start)."""

    def __init__(self):
        self.buf = bytearray(MAX_LINE + 16)   # room for one field past MAX_LINE, then it stops
        self._bytes = {}     # kind and token strings -> their bytes, made once each

    def _token(self, s, p):
        b = self._bytes.get(s)
        if b is None:
            b = sanitize(s, True).encode()
            if len(self._bytes) < 64:   # the kinds and the few tokens the device repeats
                self._bytes[s] = b
        buf = self.buf
        if p + len(b) > MAX_LINE:
            return MAX_LINE + 1
        for c in b:
            buf[p] = c
            p += 1
        return p

    def _int(self, v, p):
        buf = self.buf
        if _put_int is not None:
            return _put_int(buf, p, v)
        if v < 0:
            buf[p] = 45      # -
            p += 1
            v = -v
        q = p
        while True:
            buf[p] = 48 + v % 10
            p += 1
            v //= 10
            if not v:
                break
        e = p - 1
        while q < e:         # the digits came out last first
            c = buf[q]
            buf[q] = buf[e]
            buf[e] = c
            q += 1
            e -= 1
        return p

    def line(self, kind, seq, values, count):
        spec = _spec(kind, False)
        if spec is None:
            raise ProtocolError("unknown kind %r" % (kind,))
        t0 = len(kind) + 1
        n = spec.find(" ", t0) - t0
        if count != n:
            raise ProtocolError("%s takes %d fields, got %d" % (kind, n, count))
        buf = self.buf
        p = self._token(kind, 0)
        buf[p] = 32
        p = self._int(seq % SEQ_MOD, p + 1)
        for i in range(n):
            v = values[i]
            buf[p] = 32
            if spec.startswith("i", t0 + i):
                if type(v) is not int or not -_INT_MAX <= v <= _INT_MAX:  # small ints on the Pico
                    _int_text(spec, i, v)  # raises, naming the field
                p = self._int(v, p + 1)
            elif spec.startswith("s", t0 + i):
                p = self._token(v, p + 1)
            else:
                raise ProtocolError("%s: field %s is not INT or TOKEN: use encode()" % (kind, _name(spec, i)))
            if p > MAX_LINE:
                break
        if p + 5 > MAX_LINE:
            raise ProtocolError("%s line too long" % kind)
        t = _CRC_TABLE
        if _crc16_buf is not None:
            crc = _crc16_buf(buf, p, t)
        else:
            crc = 0xFFFF
            for i in range(p):
                crc = ((crc << 8) & 0xFFFF) ^ t[(crc >> 8) ^ buf[i]]
        buf[p] = 42          # *
        h = _HEX
        buf[p + 1] = h[crc >> 12]
        buf[p + 2] = h[(crc >> 8) & 15]
        buf[p + 3] = h[(crc >> 4) & 15]
        buf[p + 4] = h[crc & 15]
        buf[p + 5] = 10
        return p + 6


_HEX = b"0123456789ABCDEF"
try:  # viper digits and checksum where the port compiles viper (the RP2040: ~10x faster)
    from vagal.native import put_int as _put_int, crc16_buf as _crc16_buf
except (ImportError, SyntaxError, ValueError):
    _put_int = _crc16_buf = None


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
    if spec is None and (commands or not ("a" <= kind[:1] <= "z")):
        raise ProtocolError("unknown %s %r" % ("command" if commands else "message", sanitize(kind)[:20]))
    seq_text, sp, rest = _split1(rest)
    if not seq_text:
        raise ProtocolError("%s: missing sequence number" % kind)
    seq = _parse_int("seq", seq_text)
    if seq < 0 or seq >= SEQ_MOD:
        raise ProtocolError("%s: sequence number %d out of range 0..%d" % (kind, seq, SEQ_MOD - 1))
    if spec is None:  # a kind from newer firmware: no fields known, its seq still counts
        return Message(kind, seq, (), ())
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
            # a field added later (OPTIONAL "<kind> <field> <default>"): its default
            default = None
            want = kind + " " + name + " "
            for s in () if commands else OPTIONAL:
                if s.startswith(want):
                    default = s[len(want):]
            if default is None:
                raise ProtocolError("%s: missing field %s" % (kind, name))
            values.append(_parse_int(name, default) if ftype == "i" else default)
            continue
        part, sp, rest = _split1(rest)
        if not part:
            raise ProtocolError("%s: empty field %s" % (kind, name))
        if ftype == "i":
            values.append(_parse_int(name, part))
        else:
            values.append(part)
    if (rest or sp) and commands:  # device lines: fields from newer firmware are ignored
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

    A line ends at LF, CR or CRLF (a terminal may send any of them; a lone CR is not held as an
    unfinished line). Firmware use allocates only the returned line: feed() keeps a reference to
    the caller's buffer, next_line() copies through a preallocated bytearray. Call next_line()
    until it returns None before reusing the buffer passed to feed(). Empty lines are skipped.
    """

    def __init__(self, maxlen=MAX_LINE):
        self.maxlen = maxlen
        self.buf = bytearray(maxlen)
        self.len = 0
        self.discarding = False
        self.overlong = 0  # lines dropped for being longer than maxlen
        self.lines = 0  # complete lines returned
        self._cr = False  # the last byte was a CR: an LF right after it ends nothing more
        self._data = None
        self._pos = 0
        self._end = 0

    def feed(self, data, n=-1):
        """Queue data[:n] (all of it if n < 0) for next_line()."""
        self._data = data
        self._pos = 0
        self._end = len(data) if n < 0 else n

    def discard_partial(self):
        """Forget an unfinished line (a stray byte from an earlier client, a cut-off command)."""
        self.len = 0
        self.discarding = False

    def next_line(self):
        """The next complete line as bytes (without its line end), or None when the queued data is
        used up."""
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
            if b == 10 or b == 13:
                cr = self._cr
                self._cr = b == 13
                if b == 10 and cr:
                    continue  # the LF of a CRLF
                n = self.len
                self.len = 0
                if self.discarding:
                    self.discarding = False
                    continue
                if n == 0:
                    continue
                self._pos = i
                self.lines += 1
                return bytes(buf[:n])
            self._cr = False
            if self.discarding:
                continue
            if self.len >= maxlen:
                self.discarding = True
                self.overlong += 1
                self.len = 0
                continue
            buf[self.len] = b
            self.len += 1
        self._data = None
        return None
