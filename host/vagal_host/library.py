"""The session library: every session kept on the laptop, in one SQLite file a user can query.

Why SQLite: one file, transactions (a session goes in whole or not at all, so killing `vagal sync`
or unplugging the board never leaves half a session), and anyone can read it with `sqlite3`. The
tables are documented in docs/journal.md. Sessions come from the board's journal (`vagal sync`) and
from session files (`vagal stream`/`vagal demo` import theirs at the end, `vagal import FILE...`).
The same session streamed and later synced is one row: the stream file carries the journal's key
(the `jsession` line), and the key is unique.

The schema has a version (PRAGMA user_version); MIGRATIONS take an older library up to it inside
one transaction. A library from a newer vagal, a locked or a read-only file: one line, nothing
changed (VagalError).
"""

import datetime
import hashlib
import os
import sqlite3
from pathlib import Path

from vagal_host.errors import VagalError

SCHEMA_VERSION = 1
ENV = "VAGAL_LIBRARY"
FILE_NAME = "library.sqlite"
BUSY_MS = 2000  # wait this long for another vagal's transaction before saying the file is locked

SESSION_COLUMNS = (
    "source", "board", "boot", "journal_index", "file", "file_key", "started_at", "day", "dated_by",
    "mode", "end_mode", "duration_s", "rate_mbpm", "resonance_mbpm", "swing_x10", "coherent_pct",
    "hr_x10", "rmssd_us", "breaths", "complete", "notes", "imported_at")
BREATH_COLUMNS = ("t_ms", "valid", "swing_x10", "fit_x10", "phase_deg", "hr_x10", "rate_mbpm")
MINUTE_COLUMNS = ("t_ms", "hr_x10", "rmssd_us", "sdnn_us", "coherence_x100", "quality_pct", "rate_mbpm")

# Each entry takes the library from version i to i + 1 (index i), run in one transaction.
MIGRATIONS = (
    """
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,            -- 'journal' (vagal sync) or 'stream' (a session file)
        board TEXT NOT NULL DEFAULT '',  -- the board's id from its hello line
        boot INTEGER,                    -- the journal's key: boot count and session number of that boot
        journal_index INTEGER,
        file TEXT,                       -- the session file it came from (or that holds it too)
        file_key TEXT UNIQUE,            -- sha256 of that file's bytes : part number
        started_at TEXT,                 -- ISO 8601 local time; NULL when only the day (or nothing) is known
        day TEXT,                        -- YYYY-MM-DD; NULL: undated
        dated_by TEXT NOT NULL,          -- 'host clock', 'board date' or 'undated'
        mode TEXT, end_mode TEXT,        -- pace, practice, assess, winddown: at the start / the end
        duration_s REAL,
        rate_mbpm INTEGER,               -- the pacer's rate at the end (milli-breaths/min)
        resonance_mbpm INTEGER,          -- the stored resonance rate when it started (0: none)
        swing_x10 INTEGER,               -- mean heart-rate swing of the valid breaths, bpm x 10
        coherent_pct INTEGER,            -- % of coherence updates with a ratio >= 1
        hr_x10 INTEGER,                  -- mean heart rate, bpm x 10
        rmssd_us INTEGER,                -- mean RMSSD over its minutes, microseconds
        breaths INTEGER,                 -- valid breaths
        complete INTEGER NOT NULL,       -- 1: it has its summary; 0: cut short (power cut, file ended)
        notes TEXT NOT NULL DEFAULT '',  -- what was skipped reading it
        imported_at TEXT NOT NULL,
        UNIQUE (board, boot, journal_index)
    );
    CREATE TABLE breaths (
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        t_ms INTEGER, valid INTEGER, swing_x10 INTEGER, fit_x10 INTEGER, phase_deg INTEGER,
        hr_x10 INTEGER, rate_mbpm INTEGER
    );
    CREATE INDEX breaths_session ON breaths(session_id);
    CREATE TABLE minutes (
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        t_ms INTEGER, hr_x10 INTEGER, rmssd_us INTEGER, sdnn_us INTEGER, coherence_x100 INTEGER,
        quality_pct INTEGER, rate_mbpm INTEGER
    );
    CREATE INDEX minutes_session ON minutes(session_id);
    CREATE TABLE sync_parts (          -- journal files part-way downloaded: a sync resumes from here
        board TEXT NOT NULL, boot INTEGER NOT NULL, journal_index INTEGER NOT NULL, size INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (board, boot, journal_index)
    );
    """,
)


def _statements(script):
    """The statements of a migration script (comments removed), for one execute() each: executescript
    would commit the transaction the migration must run in."""
    code = "\n".join(line.split("--", 1)[0] for line in script.splitlines())
    return [stmt for stmt in code.split(";") if stmt.strip()]


def default_path():
    """VAGAL_LIBRARY, else library.sqlite in the user's data folder (platformdirs)."""
    env = os.environ.get(ENV)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("vagal", appauthor=False)) / FILE_NAME


def now_iso():
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


class Library:
    """An open library. write=False opens it read-only (a missing file reads as empty)."""

    def __init__(self, path=None, write=True):
        self.path = Path(path) if path else default_path()
        self.write = write
        self.db = None
        p = self.path
        if p.exists() and p.is_dir():
            raise VagalError("library %s is a folder, not a file" % p)
        if write:
            if p.exists() and not os.access(p, os.W_OK):
                raise VagalError("library %s is read-only: nothing changed" % p)
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise VagalError("cannot make the library's folder %s: %s" % (p.parent, e.strerror or e)) from None
            if not os.access(p.parent, os.W_OK):
                raise VagalError("library folder %s is read-only: nothing changed" % p.parent)
        elif not p.exists():
            self.db = sqlite3.connect(":memory:")
            self._migrate()
            return
        try:
            if write:
                self.db = sqlite3.connect(str(p), timeout=BUSY_MS / 1000, isolation_level=None)
            else:
                self.db = sqlite3.connect("file:%s?mode=ro" % p, uri=True, timeout=BUSY_MS / 1000,
                                          isolation_level=None)
            self.db.execute("PRAGMA foreign_keys = ON")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as e:
            self.close()
            raise VagalError(self._why(e)) from None
        if version > SCHEMA_VERSION:
            self.close()
            raise VagalError("library %s is version %d, from a newer vagal (this one reads up to %d): "
                             "update vagal; nothing changed" % (p, version, SCHEMA_VERSION))
        if version < SCHEMA_VERSION:
            if not write:
                self.close()
                raise VagalError("library %s is version %d: run `vagal sync` or `vagal import` once "
                                 "to bring it up to version %d" % (p, version, SCHEMA_VERSION))
            self._migrate()

    def _why(self, e):
        text = str(e)
        if "locked" in text or "busy" in text:
            return "library %s is locked by another program (another vagal?): nothing changed" % self.path
        if "readonly" in text or "read-only" in text:
            return "library %s is read-only: nothing changed" % self.path
        if "not a database" in text or "malformed" in text:
            return "library %s is not a vagal library (%s): nothing changed" % (self.path, text)
        return "library %s: %s" % (self.path, text)

    def _migrate(self):
        db = self.db
        db.isolation_level = None
        try:
            db.execute("BEGIN IMMEDIATE")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                db.execute("ROLLBACK")
                raise VagalError("library %s is version %d, from a newer vagal (this one reads up to %d): "
                                 "update vagal; nothing changed" % (self.path, version, SCHEMA_VERSION))
            for v in range(version, SCHEMA_VERSION):
                for stmt in _statements(MIGRATIONS[v]):
                    db.execute(stmt)
            db.execute("PRAGMA user_version = %d" % SCHEMA_VERSION)
            db.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise VagalError(self._why(e)) from None

    def close(self):
        if self.db is not None:
            self.db.close()
            self.db = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ---------------------------------------------------------------- writing
    def _tx(self, fn):
        """fn(db) inside one transaction (BEGIN IMMEDIATE ... COMMIT); -> its result."""
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                out = fn(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return out
        except sqlite3.DatabaseError as e:
            raise VagalError(self._why(e)) from None

    def add_session(self, row, breaths=(), minutes=()):
        """One session with its breaths and minutes, in one transaction. A session already held
        (the same journal key or the same file part) adds nothing; a file part of a synced session
        fills in its file. -> (id, added)."""

        def add(db):
            found = None
            if row.get("boot") is not None:
                found = db.execute("SELECT id, file FROM sessions WHERE board=? AND boot=? AND journal_index=?",
                                   (row.get("board", ""), row["boot"], row["journal_index"])).fetchone()
            if found is None and row.get("file_key"):
                found = db.execute("SELECT id, file FROM sessions WHERE file_key=?",
                                   (row["file_key"],)).fetchone()
            if found is not None:
                if row.get("file") and not found[1]:
                    db.execute("UPDATE sessions SET file=?, file_key=? WHERE id=?",
                               (row["file"], row.get("file_key"), found[0]))
                return found[0], False
            r = dict(row)
            r.setdefault("imported_at", now_iso())
            r.setdefault("notes", "")
            r.setdefault("board", "")
            cols = [c for c in SESSION_COLUMNS if c in r]
            cur = db.execute("INSERT INTO sessions (%s) VALUES (%s)" % (",".join(cols), ",".join("?" * len(cols))),
                             [r[c] for c in cols])
            sid = cur.lastrowid
            db.executemany("INSERT INTO breaths (session_id,%s) VALUES (?,%s)"
                           % (",".join(BREATH_COLUMNS), ",".join("?" * len(BREATH_COLUMNS))),
                           [(sid,) + tuple(b) for b in breaths])
            db.executemany("INSERT INTO minutes (session_id,%s) VALUES (?,%s)"
                           % (",".join(MINUTE_COLUMNS), ",".join("?" * len(MINUTE_COLUMNS))),
                           [(sid,) + tuple(m) for m in minutes])
            if row.get("boot") is not None:
                db.execute("DELETE FROM sync_parts WHERE board=? AND boot=? AND journal_index=?",
                           (row.get("board", ""), row["boot"], row["journal_index"]))
            return sid, True

        return self._tx(add)

    def has_journal(self, board, boot, index):
        return self.db.execute("SELECT 1 FROM sessions WHERE board=? AND boot=? AND journal_index=?",
                               (board, boot, index)).fetchone() is not None

    def partial(self, board, boot, index, size):
        """Bytes of a journal file already downloaded (an interrupted sync), b"" if none or stale."""
        r = self.db.execute("SELECT size, data FROM sync_parts WHERE board=? AND boot=? AND journal_index=?",
                            (board, boot, index)).fetchone()
        if r is None or r[0] != size or len(r[1]) > size:
            return b""
        return bytes(r[1])

    def save_partial(self, board, boot, index, size, data):
        self._tx(lambda db: db.execute(
            "INSERT OR REPLACE INTO sync_parts (board, boot, journal_index, size, data) VALUES (?,?,?,?,?)",
            (board, boot, index, size, bytes(data))))

    # ---------------------------------------------------------------- reading
    def sessions(self):
        """Every session as a dict, oldest first (undated ones first, in the order they came)."""
        cur = self.db.execute("SELECT id, %s FROM sessions ORDER BY COALESCE(started_at, day, ''), id"
                              % ",".join(SESSION_COLUMNS))
        names = ("id",) + SESSION_COLUMNS
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def session(self, sid):
        cur = self.db.execute("SELECT id, %s FROM sessions WHERE id=?" % ",".join(SESSION_COLUMNS), (sid,))
        r = cur.fetchone()
        return dict(zip(("id",) + SESSION_COLUMNS, r)) if r else None

    def breaths(self, sid):
        return self.db.execute("SELECT %s FROM breaths WHERE session_id=? ORDER BY t_ms" % ",".join(BREATH_COLUMNS),
                               (sid,)).fetchall()

    def minutes(self, sid):
        return self.db.execute("SELECT %s FROM minutes WHERE session_id=? ORDER BY t_ms" % ",".join(MINUTE_COLUMNS),
                               (sid,)).fetchall()

    def count(self):
        return self.db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]


# -------------------------------------------------------------------- rows from the two sources
def _mean(values):
    values = [v for v in values if v]
    return int(round(sum(values) / len(values))) if values else None


def journal_row(js, board, dating):
    """A library row from a vagal.journal_read.JournalSession; dating = (started_at, day, dated_by)."""
    started_at, day, dated_by = dating
    s = js.summary
    valid = [b for b in js.breaths if b[1]]
    row = {
        "source": "journal", "board": board, "boot": js.boot, "journal_index": js.index,
        "started_at": started_at, "day": day, "dated_by": dated_by, "mode": js.mode,
        "end_mode": s[1] if s else js.mode,
        "duration_s": js.duration_ms() / 1000.0,
        "rate_mbpm": s[5] if s else (js.breaths[-1][6] if js.breaths else js.settings.get("rate_mbpm")),
        "resonance_mbpm": js.settings.get("resonance_mbpm"),
        "swing_x10": s[3] if s else _mean(b[2] for b in valid),
        "coherent_pct": s[4] if s else None,
        "hr_x10": (s[2] or None) if s else _mean(m[1] for m in js.minutes),
        "rmssd_us": _mean(m[2] for m in js.minutes if m[1]),
        "breaths": s[6] if s else len(valid),
        "complete": 1 if s else 0,
        "notes": "; ".join(js.problems),
    }
    return row


def date_journal_session(js, boot_now, uptime_now_s, host_now):
    """(started_at, day, dated_by): a session of the board's current boot from its uptime at the sync
    (host clock); an older one by the date the host had told the board, else undated."""
    if js.boot == boot_now and 0 <= js.uptime_s <= uptime_now_s:
        t = host_now - datetime.timedelta(seconds=uptime_now_s - js.uptime_s)
        return t.isoformat(timespec="seconds"), t.date().isoformat(), "host clock"
    if js.date:
        return None, js.date, "board date"
    return None, None, "undated"


def file_key(path, part_index):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "%s:%d" % (h.hexdigest(), part_index)


def file_rows(path):
    """[(row, breaths, minutes)] for every device session in a session file (vagal stream/demo)."""
    from vagal_host.export import split_parts
    from vagal_host.session import read_session

    session = read_session(path)
    parts = split_parts(session)
    try:
        t0 = datetime.datetime.fromisoformat(session.header.get("started", ""))
    except ValueError:
        t0 = None
    hellos = session.hello
    board = hellos[0].board if hellos else ""
    out = []
    digest = file_key(path, 0).rsplit(":", 1)[0]
    for part in parts:
        start = None
        if t0 is not None:
            start = t0 + datetime.timedelta(seconds=part.first_host_t or 0.0)
        modes = part.of("mode")
        summary = part.of("summary")
        summary = summary[-1] if summary else None
        js = part.of("jsession")
        breaths = [(b.t_ms, b.valid, b.swing_x10, b.fit_x10, b.phase_deg, b.hr_x10, b.rate_mbpm)
                   for b in part.of("breath")]
        minutes = _file_minutes(part)
        valid = [b for b in breaths if b[1]]
        pacers = part.of("pacer")
        coh = [c.ratio_x100 for c in part.of("coherence") if c.ratio_x100 >= 0]
        row = {
            "source": "stream", "board": board, "file": str(Path(path).resolve()),
            "file_key": "%s:%d" % (digest, part.index),
            "started_at": start.isoformat(timespec="seconds") if start else None,
            "day": start.date().isoformat() if start else None,
            "dated_by": "host clock" if start else "undated",
            "mode": modes[0].mode if modes else session.header.get("mode"),
            "end_mode": summary.mode if summary else (modes[-1].mode if modes else None),
            "duration_s": part.duration_s,
            "rate_mbpm": summary.rate_mbpm if summary else (pacers[-1].rate_mbpm if pacers else None),
            "swing_x10": summary.swing_x10 if summary else _mean(b[2] for b in valid),
            "coherent_pct": summary.coherent_pct if summary else (
                int(round(100 * sum(1 for c in coh if c >= 100) / len(coh))) if coh else None),
            "hr_x10": (summary.hr_x10 or None) if summary else _mean(m[1] for m in minutes),
            "rmssd_us": _mean(m[2] for m in minutes if m[1]),
            "breaths": summary.breaths if summary else len(valid),
            "complete": 1 if summary else 0,
            "notes": "" if summary else "no summary: the recording ended before the session did",
        }
        if js:
            row["boot"] = js[0].boot
            row["journal_index"] = js[0].index
        out.append((row, breaths, minutes))
    return out


def _file_minutes(part):
    """Per-minute rows like the journal's, from a file's hrv / coherence / pacer / quality lines."""
    hrvs = part.of("hrv")
    if not hrvs:
        return []
    cohs = part.of("coherence")
    pacers = part.of("pacer")
    end = max(h.t_ms for h in hrvs)
    rows = []
    m = 60000
    hi = ci = pi = 0
    last_h = last_c = last_p = None
    ok_n = all_n = 0
    while m <= end:
        while hi < len(hrvs) and hrvs[hi].t_ms <= m:
            last_h = hrvs[hi]
            all_n += 1
            ok_n += 1 if hrvs[hi].hr_x10 > 0 else 0
            hi += 1
        while ci < len(cohs) and cohs[ci].t_ms <= m:
            last_c = cohs[ci]
            ci += 1
        while pi < len(pacers) and pacers[pi].t_ms <= m:
            last_p = pacers[pi]
            pi += 1
        if last_h is not None:
            rows.append((m, last_h.hr_x10, last_h.rmssd_us, last_h.sdnn_us,
                         last_c.ratio_x100 if last_c is not None else -1,
                         ok_n * 100 // all_n if all_n else 0, last_p.rate_mbpm if last_p else 0))
        ok_n = all_n = 0
        m += 60000
    return rows


def import_file(library, path):
    """Import a session file's sessions -> (added, already held) counts."""
    added = held = 0
    for row, breaths, minutes in file_rows(path):
        _, new = library.add_session(row, breaths, minutes)
        added += new
        held += not new
    return added, held


def import_recorded(path, library=None, out=print):
    """After `vagal stream` / `vagal demo`: the session file into the library. A library problem
    never costs the file: it is said in one line, with the command that adds the file later."""
    import sys

    try:
        with Library(library) as lib:
            added, held = import_file(lib, path)
            out("library: %d session%s added to %s (vagal sessions, vagal history)"
                % (added, "" if added == 1 else "s", lib.path))
    except VagalError as e:
        print("not added to the library (%s); the file is kept: vagal import %s" % (e, path), file=sys.stderr)


def session_file_of(lib, sid, folder):
    """A session file for library session sid -> (path, part number or None): its own file when the
    library has it, else one written into folder from the journal's records (breaths, minutes and
    summary: what the device kept), so `vagal report` draws it the same way."""
    from vagal import protocol

    row = lib.session(sid)
    if row is None:
        raise VagalError("no session %d in the library %s (vagal sessions lists them)" % (sid, lib.path))
    if row["file"] and os.path.isfile(row["file"]):
        part = int(row["file_key"].rsplit(":", 1)[1]) if row["file_key"] else None
        return row["file"], part
    seq = [0]

    def line(kind, *values):
        text = protocol.encode(kind, seq[0], *values).rstrip("\n")
        seq[0] += 1
        return text

    start = row["started_at"] or (row["day"] + "T00:00:00" if row["day"] else now_iso())
    events = [(0, line("hello", "journal", protocol.PROTOCOL_VERSION, 250, row["board"] or "unknown", "-")),
              (0, line("session", 0, "start", "boot")), (0, line("mode", 0, row["mode"] or "pace", "boot"))]
    for b in lib.breaths(sid):
        events.append((b[0], line("breath", *[int(v) for v in b])))
    for m in lib.minutes(sid):
        t, hr, rmssd, sdnn, coh, _q, rate = m
        events.append((t, line("hrv", t, hr, rmssd, sdnn, 32 if hr else 0)))
        if coh is not None and coh >= 0:
            events.append((t, line("coherence", t, coh, 0)))
    end = int((row["duration_s"] or 0) * 1000)
    if row["complete"]:
        events.append((end, line("summary", end, row["end_mode"] or row["mode"] or "pace", row["hr_x10"] or 0,
                                 row["swing_x10"] or 0, row["coherent_pct"] or 0, row["rate_mbpm"] or 0,
                                 row["breaths"] or 0)))
        events.append((end, line("session", end, "stop", "auto")))
    events.sort(key=lambda e: e[0])
    path = os.path.join(folder, "library-session-%d.vagal" % sid)
    with open(path, "w") as f:
        f.write("# vagal session 1\n# started %s\n# port library\n# tool vagal library session %d\n"
                % (start, sid))
        for t, text in events:
            f.write("%.3f\t%s\n" % (max(t, 0) / 1000.0, text))
    return path, None
