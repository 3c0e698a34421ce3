"""The host side of the protocol: link statistics and the message table as tuples.

Portable like the rest of vagal (the protocol tests run it on MicroPython too), but never imported by
the firmware: what only a receiver of device lines needs stays out of the device's heap. The table
itself is defined once, in vagal.protocol.
"""

from vagal.protocol import COMMANDS, MESSAGES, PROTOCOL_VERSION, SEQ_MOD, ProtocolError, _spec, decode

PROTOCOLS_READ = (PROTOCOL_VERSION,)  # the `proto` values of `hello` this host understands


def unsupported_protocol(msg):
    """'' for a message this host can read on; for a `hello` with a protocol version it does not
    support, the sentence to stop with (docs/protocol.md, Versioning)."""
    if msg.kind != "hello" or msg["proto"] in PROTOCOLS_READ:
        return ""
    return ("the board speaks protocol version %d (firmware %s); this vagal reads version %s: "
            "update vagal, or deploy the firmware that matches it"
            % (msg["proto"], msg["fw"], "/".join(str(v) for v in PROTOCOLS_READ)))


def fields(kind, commands=False):
    """((name, type), ...) of a message (or command) kind; KeyError if unknown. Host and tests."""
    s = _spec(kind, commands)
    if s is None:
        raise KeyError(kind)
    parts = s.split(" ")
    types = parts[1]
    names = parts[2:] if types else ()
    return tuple((names[i], types[i]) for i in range(len(types)))


def table(commands=False):
    """((kind, ((name, type), ...)), ...) in table order. Host and tests."""
    out = []
    for s in COMMANDS if commands else MESSAGES:
        kind = s[:s.find(" ")]
        out.append((kind, fields(kind, commands)))
    return tuple(out)


def lines_from(assembler, data):
    """Feed data to a protocol.LineAssembler and return the list of lines it completed."""
    assembler.feed(data)
    out = []
    while True:
        line = assembler.next_line()
        if line is None:
            return out
        out.append(line)


class LinkStats:
    """Host side: decodes device lines and counts lost (sequence gaps) and corrupt lines."""

    def __init__(self):
        self.received = 0
        self.lost = 0
        self.corrupt = 0
        self.last_error = ""
        self._last_seq = -1

    def accept(self, line):
        """Decoded Message, or None (counted as corrupt) if the line is not valid."""
        try:
            msg = decode(line)
        except ProtocolError as e:
            self.corrupt += 1
            self.last_error = str(e)
            return None
        if msg.kind == "hello" and msg.seq == 0:
            self._last_seq = -1  # the device restarted: its sequence restarts at 0 with a hello
        if self._last_seq >= 0:
            self.lost += (msg.seq - self._last_seq - 1) % SEQ_MOD
        self._last_seq = msg.seq
        self.received += 1
        return msg
