"""`vagal sync`: the board's journal into the library, then the board told what it may drop.

Why this order: a session is dropped on the board only after its transaction committed in the
library, so killing the sync or pulling the cable at any moment loses nothing: the next sync finds
the session still on the board (or already in the library, and drops it then). Downloaded bytes of a
session not yet complete are kept in the library's sync_parts table, so a long journal resumes
where the last try stopped. Each 64-byte chunk travels in a CRC-checked protocol line; each
record inside has its own CRC (vagal.journal_read keeps every intact record and names the rest).
"""

import datetime
import random
import time

from vagal import protocol
from vagal import journal_read

from vagal_host.errors import VagalError

ANSWER_S = 5.0  # a board running the app answers a command within milliseconds
WINDOW = 4  # jread commands in flight
SAVE_EVERY = 16 * 1024  # bytes downloaded between saves of a partial session


class BoardLink:
    """Commands over an open serial port; each answer (ok/err by id) with the lines sent for it."""

    def __init__(self, ser, path, answer_s=ANSWER_S):
        from vagal_host.stream import LineSplitter

        self.ser = ser
        self.path = path
        self.answer_s = answer_s
        self.splitter = LineSplitter()
        self.next_id = random.randrange(60000)  # answers to an earlier, cut-off sync never match ours
        self.pending = {}  # id -> [messages gathered]
        self.done = {}  # id -> (kind ok/err, text, messages)
        self.hello = None

    def send(self, kind, *args):
        import serial

        self.next_id = self.next_id % 60000 + 1
        rid = self.next_id
        try:
            self.ser.write(protocol.encode_command(kind, rid, *args).encode())
        except (serial.SerialException, OSError) as e:
            raise VagalError("cannot write to %s (nothing is lost: run vagal sync again): %s" % (self.path, e)) from None
        self.pending[rid] = []
        return rid

    def _pump(self, deadline):
        import serial

        try:
            chunk = self.ser.read(self.ser.in_waiting or 1)
        except (serial.SerialException, OSError) as e:
            raise VagalError("lost %s during the sync (nothing is lost: run vagal sync again): %s"
                             % (self.path, e)) from None
        for line in self.splitter.feed(chunk):
            if isinstance(line, int):
                continue
            try:
                msg = protocol.decode(line.decode("ascii", "replace"))
            except protocol.ProtocolError:
                continue  # a damaged line: the command it answered is asked again
            if msg.kind == "hello":
                self.hello = msg
            if msg.kind in ("ok", "err"):
                rid = msg["id"]
                if rid in self.pending:
                    got = self.pending.pop(rid)
                    self.done[rid] = (msg.kind, msg["text"] if msg.kind == "ok" else msg["reason"], got)
            elif msg.kind in ("journal", "jsession", "jchunk"):
                # the answer lines come before their ok: they belong to the oldest request waiting
                if self.pending:
                    self.pending[min(self.pending)].append(msg)

    def wait(self, rid):
        """-> (kind, text, messages) of request rid; VagalError if no answer in time."""
        deadline = time.monotonic() + self.answer_s
        while rid not in self.done:
            if time.monotonic() > deadline:
                raise VagalError("no answer from %s in %g s: is it running the vagal app with a journal? "
                                 "(`vagal deploy`)" % (self.path, self.answer_s))
            self._pump(deadline)
        return self.done.pop(rid)

    def ask(self, kind, *args):
        k, text, msgs = self.wait(self.send(kind, *args))
        if k == "err":
            raise VagalError("the board refused `%s %s`: %s" % (kind, " ".join(str(a) for a in args), text))
        return text, msgs


def _download(link, lib, board, boot, index, size, progress):
    """The whole file of one journal session (resumed from sync_parts) -> bytes."""
    data = bytearray(lib.partial(board, boot, index, size))
    have = len(data)
    saved = have
    while have < size:
        offsets = list(range(have, size, 256))[:WINDOW]
        ids = [(link.send("jread", boot, index, off), off) for off in offsets]
        for rid, off in ids:
            kind, text, msgs = link.wait(rid)
            if kind == "err":
                raise VagalError("the board refused to read journal session %d-%d: %s" % (boot, index, text))
            for m in msgs:
                if m.kind != "jchunk" or m["boot"] != boot or m["index"] != index:
                    continue
                o = m["offset"]
                try:
                    chunk = bytes.fromhex(m["hex"])
                except ValueError:
                    continue
                if o == len(data):  # in order; anything else is asked again
                    data += chunk
        if len(data) == have:
            raise VagalError("journal session %d-%d: no progress at byte %d of %d" % (boot, index, have, size))
        have = len(data)
        progress(len(data))
        if have - saved >= SAVE_EVERY and have < size:
            lib.save_partial(board, boot, index, size, data[:size])
            saved = have
    return bytes(data[:size])


def sync(link, lib, out=print, host_now=None):
    """Pull every finished journal session into lib, then drop it on the board.
    -> dict of counts (added, held, skipped, dropped) and the messages said."""
    host_now = host_now or datetime.datetime.now().astimezone()
    hello_text, msgs = link.ask("hello")
    hello = link.hello
    board = hello["board"] if hello is not None else ""
    fw = hello["fw"] if hello is not None else "?"
    _, msgs = link.ask("journal")
    info = [m for m in msgs if m.kind == "journal"]
    if not info:
        raise VagalError("the board answered `journal` without its state: firmware %s is too old for "
                         "vagal sync (`vagal deploy`)" % fw)
    info = info[0]
    if not info["format"]:
        out("the board's journal is off (a flash error since its last start): see its log lines")
    boot_now = info["boot"]
    uptime_now = info["uptime_s"]
    entries = []
    start = 0
    while True:
        text, msgs = link.ask("jlist", start)
        rows = [m for m in msgs if m.kind == "jsession"]
        entries += [(m["boot"], m["index"], m["bytes"], m["closed"]) for m in rows]
        if len(rows) < 8:
            break
        start += len(rows)
    counts = {"added": 0, "held": 0, "skipped": 0, "dropped": 0, "running": 0}
    notes = []
    for boot, index, size, closed in entries:
        name = "%d-%d" % (boot, index)
        if not closed:
            counts["running"] += 1
            continue
        if not lib.has_journal(board, boot, index):
            data = _download(link, lib, board, boot, index, size, lambda n: None)
            try:
                js = journal_read.parse(data, name)
            except journal_read.NewerFormat as e:
                raise VagalError("%s (board firmware %s, this vagal %s reads journal format %d)"
                                 % (e, fw, _version(), journal_read.J.FORMAT)) from None
            except journal_read.JournalError as e:
                counts["skipped"] += 1
                notes.append("session %s skipped: %s" % (name, e))
                continue
            from vagal_host.library import date_journal_session, journal_row

            row = journal_row(js, board, date_journal_session(js, boot_now, uptime_now, host_now))
            _, added = lib.add_session(row, js.breaths, js.minutes)
            counts["added" if added else "held"] += 1
            for p in js.problems:
                if not p.startswith("no summary"):
                    notes.append("session %s: %s" % (name, p))
            if not js.complete():
                notes.append("session %s was cut short (a power cut or a reset): kept up to its last record"
                             % name)
        else:
            counts["held"] += 1
        link.ask("jdrop", boot, index)
        counts["dropped"] += 1
    counts["used"] = info["used_bytes"]
    counts["capacity"] = info["capacity_bytes"]
    counts["notes"] = notes
    counts["board"] = board
    return counts


def _version():
    import vagal

    return vagal.VERSION
