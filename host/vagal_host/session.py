"""Session files: everything a board sent during one `vagal stream`, written as it arrives.

Why this format: a session must survive a crash (so it is appended and flushed, never rewritten),
keep every line exactly as the board sent it (so later tools can re-decode it with a newer
protocol module), and stay a plain text file a person can read with `less`.

    # vagal session 1                       header: "# key value" lines, first line fixed
    # started 2025-01-31T08:15:02+01:00
    # port /dev/ttyACM0
    # tool vagal 0.1.0
    0.000<TAB>#connected /dev/ttyACM0        host events: '#' + name + detail
    0.012<TAB>hello 0 0.1.0 1 250 pico*37F7  a received line, verbatim
    0.051<TAB>#line 6265617401ff0a           a received line that is not printable ASCII (hex)
    3.400<TAB>#cut 62656174203132            bytes left unterminated when the link dropped (hex)

The first field is host seconds since the session started (monotonic clock, ms resolution). A line's
trailing "\\r" (USB CDC sends "\\r\\n") is not kept. Host events: connected, reconnected,
disconnected, overlong (a line longer than the host accepts, dropped), counts, end.
read_session() parses it all back through vagal.protocol into typed records.
"""

import collections
import datetime
import os
import time

from vagal import link as protocol_link
from vagal import protocol

from vagal_host.errors import VagalError

FORMAT_VERSION = 1
MAGIC = "# vagal session"
FLUSH_S = 0.5  # flushed (and fsynced) at least this often, so a crash loses under a second
EVENTS = ("connected", "reconnected", "disconnected", "overlong", "counts", "end", "note")
_HEX_RECORDS = ("line", "cut")


def _camel(kind):
    return "".join(p.capitalize() for p in kind.split("_"))


def _record_types():
    """One namedtuple per device message kind, fields from vagal.link.table() (never restated here)."""
    types = {}
    for kind, fields in protocol_link.table():
        name = "SessionState" if kind == "session" else _camel(kind)
        types[kind] = collections.namedtuple(name, ("host_t", "seq") + tuple(f for f, _ in fields))
    return types


RECORD_TYPES = _record_types()
Hello = RECORD_TYPES["hello"]
Beat = RECORD_TYPES["beat"]
Quality = RECORD_TYPES["quality"]
Pacer = RECORD_TYPES["pacer"]
Hrv = RECORD_TYPES["hrv"]
SessionState = RECORD_TYPES["session"]
Setting = RECORD_TYPES["setting"]
Raw = RECORD_TYPES["raw"]
Stats = RECORD_TYPES["stats"]
Log = RECORD_TYPES["log"]
Ok = RECORD_TYPES["ok"]
Err = RECORD_TYPES["err"]

Event = collections.namedtuple("Event", "host_t name detail")
Received = collections.namedtuple("Received", "host_t line msg error")  # line: bytes; msg or error


def typed(host_t, msg):
    """The typed record (Beat, Pacer, ...) of a decoded protocol Message; None for a kind this
    version does not know (from newer firmware: skipped, its seq counted)."""
    t = RECORD_TYPES.get(msg.kind)
    return None if t is None else t(host_t, msg.seq, *msg.values)


def other_board(seen, hello):
    """Is this Hello from another board, or another boot, than the (board, boot) seen before?
    Then its data starts a part of its own, even when it came without a restart (seq not 0)."""
    return seen is not None and seen != (hello.board, hello.boot)


class LinkCounter:
    """Lost/corrupt/partial line counts across reconnections (one LinkStats per connection).

    Shared by the live stream and the session reader so both count the same way. A line cut by
    (re)connecting - the first line of a connection when it does not decode, or the unterminated
    tail when the link drops - is `partial`, not corrupt: it was broken by the plug, not the link.
    A gap in sequence numbers across a reconnection is not counted as lost, nor is the slot of a line
    that arrived corrupt (it is counted once, as corrupt).
    """

    def __init__(self):
        self.received = 0
        self.lost = 0
        self.corrupt = 0
        self.partial = 0
        self.last_error = ""
        self._link = None
        self._first = True

    def connected(self):
        self._fold()
        self._link = protocol_link.LinkStats()
        self._first = True
        self._bad_run = 0

    def _fold(self):
        if self._link is not None:
            self.received += self._link.received
            self.lost += self._link.lost
            self.corrupt += self._link.corrupt
            self._link = None

    def accept(self, line):
        """(Message or None, error text) for one received line; counts it."""
        if self._link is None:
            self.connected()
        link = self._link
        lost_before = link.lost
        msg = link.accept(line)
        first = self._first
        self._first = False
        if msg is not None:
            # corrupt lines since the last good one filled slots of the sequence gap: not lost
            gap = link.lost - lost_before
            filled = min(gap, self._bad_run)
            link.lost -= filled
            self._bad_run = 0
            return msg, ""
        err = link.last_error
        self.last_error = err
        if first:
            link.corrupt -= 1
            self.partial += 1
            return None, "partial first line: " + err
        self._bad_run += 1
        return None, err

    def cut(self):
        self.partial += 1

    def skipped(self):
        """A damaged line of a session file: it may fill a sequence gap, like a corrupt line."""
        if self._link is None:
            self.connected()
        self._bad_run += 1

    def overlong(self):
        self.corrupt += 1
        self.last_error = "overlong line dropped"

    def totals(self):
        """(received, lost, corrupt, partial) including the current connection."""
        link = self._link
        r, lo, c = self.received, self.lost, self.corrupt
        if link is not None:
            r += link.received
            lo += link.lost
            c += link.corrupt
        return r, lo, c, self.partial


def mean_hr_bpm(ibis_us):
    """Mean heart rate (beats / time) over plausible intervals (300..2000 ms); None without any."""
    ibis = [i for i in ibis_us if 300000 <= i <= 2000000]
    if not ibis:
        return None
    return 60e6 * len(ibis) / sum(ibis)


def _printable_line(line):
    if not line or line[:1] == b"#":
        return False
    for b in line:
        if b < 32 or b > 126:
            return False
    return True


def default_path(directory="sessions"):
    """sessions/<YYYYmmdd-HHMMSS>.vagal, with -2, -3 ... if that name is taken."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(directory, stamp + ".vagal")
    n = 2
    while os.path.exists(path):
        path = os.path.join(directory, "%s-%d.vagal" % (stamp, n))
        n += 1
    return path


class SessionWriter:
    """Appends a session as it happens; flush() at least every FLUSH_S (tick() does it when due)."""

    def __init__(self, path, port, tool_version, overwrite=False, extra=None, clock=time.monotonic):
        self.path = path
        self.clock = clock
        self.t0 = clock()
        self.counter = LinkCounter()
        parent = os.path.dirname(path)
        if os.path.isdir(path):
            raise VagalError("session file %s is a folder; give a file name (e.g. %s)"
                             % (path, os.path.join(path, "evening.vagal")))
        try:
            if parent:
                os.makedirs(parent, exist_ok=True)
            self.f = open(path, "wb" if overwrite else "xb")
        except FileExistsError:
            raise VagalError("session file %s already exists (choose another --session, or --overwrite)"
                             % path) from None
        except OSError as e:
            raise VagalError("cannot create session file %s: %s" % (path, e.strerror or e)) from None
        self._last_flush = self.t0
        self._dirty = False
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        header = [("started", started), ("port", port), ("tool", "vagal " + tool_version)]
        for k, v in (extra or {}).items():
            header.append((k, v))
        out = ["%s %d\n" % (MAGIC, FORMAT_VERSION)]
        for k, v in header:
            out.append("# %s %s\n" % (k, protocol.sanitize(v)))
        self.f.write("".join(out).encode())
        self.flush()

    def now(self):
        return self.clock() - self.t0

    def _write(self, t, text):
        self.f.write(("%.3f\t%s\n" % (t, text)).encode())
        self._dirty = True

    def received(self, line, t=None):
        """Record one line as received (bytes, no newline) and count it; -> (Message|None, error)."""
        t = self.now() if t is None else t
        if line[-1:] == b"\r":
            line = line[:-1]
        if _printable_line(line):
            self._write(t, line.decode())
        else:
            self._write(t, "#line " + line.hex())
        return self.counter.accept(line)

    def cut(self, fragment, t=None):
        """Record the unterminated bytes left when the link dropped."""
        self._write(self.now() if t is None else t, "#cut " + bytes(fragment).hex())
        self.counter.cut()

    def overlong(self, nbytes, t=None):
        self.event("overlong", str(nbytes), t)
        self.counter.overlong()

    def event(self, name, detail="", t=None):
        if name not in EVENTS:
            raise ValueError("unknown session event %r" % name)
        if name == "connected" or name == "reconnected":
            self.counter.connected()
        text = "#" + name + (" " + protocol.sanitize(detail) if detail else "")
        self._write(self.now() if t is None else t, text)
        if name != "counts":
            self.flush()

    def counts(self, t=None):
        r, lo, c, p = self.counter.totals()
        self.event("counts", "received=%d lost=%d corrupt=%d partial=%d" % (r, lo, c, p), t)

    def tick(self):
        """Flush if anything is waiting and FLUSH_S has passed; call it from the read loop."""
        if self._dirty and self.clock() - self._last_flush >= FLUSH_S:
            self.flush()

    def flush(self):
        self.f.flush()
        try:
            os.fsync(self.f.fileno())
        except OSError:
            pass
        self._last_flush = self.clock()
        self._dirty = False

    def close(self):
        if self.f.closed:
            return
        self.counts()
        self.event("end", "duration=%.3f" % self.now())
        self.flush()
        self.f.close()


class Session:
    """A session read back: header, received lines, host events, typed records and link counts."""

    def __init__(self, path):
        self.path = path
        self.header = {}
        self.lines = []  # Received, in order
        self.events = []  # Event, in order
        self.records = []  # typed records of every decoded line, in order
        self.received = self.lost = self.corrupt = self.partial = 0
        self.truncated = False  # the last line had no newline (writer killed mid-line) and was skipped
        self.skipped = []  # (file line number, host time near it, why) of damaged lines skipped
        self.duration = 0.0

    def of_kind(self, kind):
        if kind not in RECORD_TYPES:
            raise ValueError("unknown message kind %r" % kind)
        t = RECORD_TYPES[kind]
        return [r for r in self.records if type(r) is t]

    beats = property(lambda self: self.of_kind("beat"))
    quality = property(lambda self: self.of_kind("quality"))
    pacer = property(lambda self: self.of_kind("pacer"))
    hrv = property(lambda self: self.of_kind("hrv"))
    raw = property(lambda self: self.of_kind("raw"))
    logs = property(lambda self: self.of_kind("log"))
    stats = property(lambda self: self.of_kind("stats"))
    hello = property(lambda self: self.of_kind("hello"))

    def mean_hr_bpm(self):
        return mean_hr_bpm(b.ibi_us for b in self.beats)

    def skipped_text(self):
        """'3 damaged lines skipped at 4:12-4:13', or '' for an undamaged file."""
        return describe_skipped(self.skipped)


def _time_of(raw):
    """The host time at the start of a session-file line, or None when it has none."""
    tab = raw.find(b"\t")
    if tab <= 0 or tab > 20:
        return None
    try:
        t = float(raw[:tab].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    return t if t == t and t not in (float("inf"), float("-inf")) and t >= 0 else None


def format_host_t(t):
    """m:ss of host seconds since the session file started (h:mm:ss past an hour)."""
    t = int(t)
    if t >= 3600:
        return "%d:%02d:%02d" % (t // 3600, t // 60 % 60, t % 60)
    return "%d:%02d" % (t // 60, t % 60)


def describe_skipped(skipped):
    """'3 damaged lines skipped at 4:12-4:13, 9:01' for Session.skipped, '' when there are none."""
    if not skipped:
        return ""
    ranges = []  # [first text, last text] of runs of consecutive file lines
    prev = None
    for lineno, t, _ in skipped:
        text = format_host_t(t)
        if prev is not None and lineno == prev + 1:
            ranges[-1][1] = text
        else:
            ranges.append([text, text])
        prev = lineno
    where = []
    for a, b in ranges:
        item = a if a == b else "%s-%s" % (a, b)
        if not where or where[-1] != item:
            where.append(item)
    more = ""
    if len(where) > 5:
        more = " and %d more places" % (len(where) - 5)
        where = where[:5]
    n = len(skipped)
    return "%d damaged line%s skipped at %s%s" % (n, "" if n == 1 else "s", ", ".join(where), more)


def read_session(path):
    """Parse a session file line by line; VagalError only if it is not a vagal session file at all.

    Why tolerant: every received line carries its own CRC, so one damaged line (a flipped bit, a
    non-ASCII byte, garbage inserted or appended) costs that line, not the session. Damaged lines
    are skipped and listed in `Session.skipped` (file line number, host time near it, why);
    describe_skipped() says how many and where. A damaged time field keeps its line (whose
    protocol CRC still holds) at the time before it.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise VagalError("cannot read session file %s: %s" % (path, e.strerror or e)) from None
    s = Session(path)
    chunks = data.split(b"\n")
    if chunks[-1]:
        s.truncated = True  # a line without its newline: the writer stopped mid-line
    chunks = chunks[:-1]
    if not data.strip():
        raise VagalError("%s is empty: not a vagal session file" % path)
    magic = MAGIC.encode()
    first = chunks[0] if chunks else data
    if first.startswith(magic):
        version = first[len(magic):].strip().decode("ascii", "replace")
        if version != str(FORMAT_VERSION) and version.isdigit():
            raise VagalError("%s line 1: session format %r, this tool reads %d"
                             % (path, version, FORMAT_VERSION))
        if version == str(FORMAT_VERSION):
            s.header["format"] = version
    if "format" not in s.header and not _looks_like_session(chunks):
        raise VagalError("%s is not a vagal session file (line 1 should start %r)" % (path, MAGIC))
    counter = LinkCounter()
    last_t = 0.0
    in_header = True
    times = [None] * len(chunks)  # host times, parsed once (the look-ahead below needs the next one)
    for i, raw in enumerate(chunks):
        times[i] = _time_of(raw)

    def skip(i, why):
        s.skipped.append((i + 1, last_t, why))
        counter.skipped()

    for i, raw in enumerate(chunks):
        if i == 0 and "format" in s.header:
            continue
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            skip(i, "not ASCII text")
            continue
        if in_header and text.startswith("#"):
            if not text.startswith("# ") or " " not in text[2:]:
                skip(i, "bad header line")
                continue
            key, _, value = text[2:].partition(" ")
            s.header[key] = value
            continue
        if i == 0:
            skip(i, "damaged first line")
            continue
        in_header = False
        t = times[i]
        t_text, tab, rest = text.partition("\t")
        if t is None or not tab:
            skip(i, "no time field")
            continue
        if t < last_t:
            t = last_t  # a damaged time (or a clock step): the line keeps its place in the order
        else:
            nxt = next((x for x in times[i + 1:i + 3] if x is not None), None)
            if nxt is not None and last_t <= nxt < t:
                t = last_t  # later than the next line: its time is damaged, not the rest
        last_t = t
        if rest.startswith("#"):
            name, _, detail = rest[1:].partition(" ")
            if name in _HEX_RECORDS:
                try:
                    line = bytes.fromhex(detail)
                except ValueError:
                    skip(i, "bad hex in #%s record" % name)
                    continue
                if name == "cut":
                    counter.cut()
                    s.lines.append(Received(t, line, None, "cut by disconnect"))
                    continue
            elif name in EVENTS:
                s.events.append(Event(t, name, detail))
                if name in ("connected", "reconnected"):
                    counter.connected()
                elif name == "overlong":
                    counter.overlong()
                continue
            else:
                skip(i, "unknown host event")
                continue
        else:
            line = rest.encode()
        msg, err = counter.accept(line)
        s.lines.append(Received(t, line, msg, err))
        if msg is not None:
            why = protocol_link.unsupported_protocol(msg)
            if why:
                raise VagalError("%s line %d: %s" % (path, i + 1, why))
            record = typed(t, msg)
            if record is not None:
                s.records.append(record)
    s.duration = last_t
    s.received, s.lost, s.corrupt, s.partial = counter.totals()
    return s


def _looks_like_session(chunks):
    """A file whose first line is damaged is still a session if a line in it is a timed vagal line
    with a good checksum."""
    for raw in chunks[:200]:
        tab = raw.find(b"\t")
        if tab > 0 and _time_of(raw) is not None:
            try:
                protocol.decode(raw[tab + 1:])
                return True
            except protocol.ProtocolError:
                pass
    return False
