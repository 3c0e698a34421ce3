"""The journal's folder work, loaded only when needed (a full journal, `vagal sync`).

Why apart from vagal.journal: the app keeps the writer in memory for every session, while this code
runs only when the journal is full and while a host syncs; the app drops it from memory again
(App._load), as it does a mode's controller. The commands (journal, jlist, jread, jdrop) are
answered here too (docs/protocol.md, docs/journal.md).
"""

import os

from vagal.journal import _join, file_name, parse_name

LIST_ROWS = 8  # `jsession` lines per jlist
CHUNK = 64  # bytes per `jchunk` line (128 hex digits)
CHUNKS = 4  # `jchunk` lines per jread: a short task step


def names(folder):
    """Session file names on flash, oldest first."""
    out = [n for n in os.listdir(folder) if parse_name(n) is not None]
    out.sort()
    return out


def size(folder, name):
    return os.stat(_join(folder, name))[6]


def make_room(j, need):
    """Drop the oldest finished sessions until `need` more bytes fit. -> True if they fit."""
    for name in names(j.folder):
        if name == j.current:
            continue
        n = size(j.folder, name)
        os.remove(_join(j.folder, name))
        j.used -= n
        j.sessions -= 1
        j.dropped += 1
        if j.used + need <= j.capacity:
            return True
    return False


def drop(j, boot, index):
    """Remove a finished session the host has kept (`jdrop`). -> error text or None."""
    name = file_name(boot, index)
    if name == j.current:
        return "session %d-%d is still running" % (boot, index)
    try:
        n = size(j.folder, name)
    except OSError:
        return None  # already gone: dropping twice is fine
    try:
        os.remove(_join(j.folder, name))
    except OSError as e:
        return "could not remove %s: %s" % (name, e)
    j.used -= n
    j.sessions -= 1
    return None


def listing(j, start, count):
    """[(boot, index, bytes, closed)] of at most count sessions from position start, oldest first."""
    out = []
    try:
        for name in names(j.folder)[start:start + count]:
            bi = parse_name(name)
            out.append((bi[0], bi[1], size(j.folder, name), 0 if name == j.current else 1))
    except OSError:
        pass
    return out


def read(j, boot, index, offset, buf):
    """A session file's bytes at offset into buf -> bytes read (0 at the end); OSError if there is
    no such session. The running session's last records reach flash at its next write."""
    f = open(_join(j.folder, file_name(boot, index)), "rb")
    try:
        f.seek(offset)
        return f.readinto(buf)
    finally:
        f.close()


def command(app, kind, msg, rid):
    """Answer journal / jlist / jread / jdrop for the app (what `vagal sync` reads with)."""
    j = app.journal
    if kind == "journal":
        j.advance(app.board.ticks_ms())
        app.send("journal", 1 if j.ok else 0, j.boot, j.uptime_s, j.used, j.capacity, j.sessions)
        app.reply_ok(rid, "journal")
    elif kind == "jlist":
        rows = listing(j, msg["start"], LIST_ROWS) if msg["start"] >= 0 else []
        for boot, index, n, closed in rows:
            app.send("jsession", boot, index, n, closed)
        app.reply_ok(rid, "%d sessions" % len(rows))
    elif kind == "jread":
        import binascii

        boot = msg["boot"]
        index = msg["index"]
        offset = msg["offset"]
        if offset < 0:
            app.reply_err(rid, "offset %d: must be >= 0" % offset)
            return
        buf = bytearray(CHUNK * CHUNKS)
        try:
            n = read(j, boot, index, offset, buf)
        except (OSError, ValueError) as e:
            app.reply_err(rid, "no journal session %d-%d: %s" % (boot, index, e))
            return
        mv = memoryview(buf)
        for a in range(0, n, CHUNK):
            b = a + CHUNK if a + CHUNK < n else n
            app.send("jchunk", boot, index, offset + a, binascii.hexlify(mv[a:b]).decode())
        app.reply_ok(rid, "%d bytes" % n)
    else:  # jdrop
        err = drop(j, msg["boot"], msg["index"])
        if err:
            app.reply_err(rid, err)
        else:
            app.reply_ok(rid, "dropped")
