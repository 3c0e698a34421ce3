"""The journal end to end: sessions made on a virtual board without a host, `vagal sync` into the
library (once, twice, interrupted at random points), and the library's own faults."""

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest
import serial

from vagal import journal as J
from vagal_host import sync as sync_mod
from vagal_host.errors import VagalError
from vagal_host.library import SCHEMA_VERSION, Library, import_file, journal_row
from vagal_host.stream import open_checked
from vagal_host.virtual import VirtualBoard, person_spec

SESSIONS = 20
# The virtual board's 64-bit heap with its fakes (~51 KB a Pico does not carry) is tight at the
# default 256K once sessions of every mode have run (a long press then fails on main too): 512K here.
HEAP = "512K"


def _button_script(n, cycle_s=50, length_s=40):
    """n sessions without a host: a long press (next mode) then a short press to start and one to stop."""
    presses = []
    for k in range(n):
        t = 2 + k * cycle_s
        presses += ["%g:1.2" % t, "%g:0.2" % (t + 4), "%g:0.2" % (t + 4 + length_s)]
    return ",".join(presses)


def _wait_summaries(ser, n, timeout_s=240):
    """Read the board's lines until its n-th summary (the sessions run by themselves; the host only
    listens, so nothing it does shapes them)."""
    from vagal_host.stream import LineSplitter

    split = LineSplitter()
    seen = 0
    t0 = time.monotonic()
    while seen < n:
        assert time.monotonic() - t0 < timeout_s, "only %d of %d sessions in %d s" % (seen, n, timeout_s)
        for line in split.feed(ser.read(ser.in_waiting or 1)):
            if not isinstance(line, int) and line.startswith(b"summary "):
                seen += 1


def _made_board(tmp_path, name="board"):
    folder = tmp_path / name
    folder.mkdir()
    settings = folder / "settings.json"
    settings.write_text(json.dumps({"autostart": False, "mode": "pace"}))
    return VirtualBoard(speed="max", heapsize=HEAP, respawn=False, settings_path=str(settings),
                        person=person_spec(seed=3, hr=66), buttons=_button_script(SESSIONS)), folder


def _sync(port, lib):
    ser = open_checked(port)
    try:
        return sync_mod.sync(sync_mod.BoardLink(ser, port), lib, out=lambda *a: None)
    finally:
        ser.close()


class _Unplugged(serial.SerialException):
    pass


class _CutSerial:
    """The port, unplugged after `budget` bytes have passed either way."""

    def __init__(self, ser, budget):
        self.ser = ser
        self.budget = budget

    @property
    def in_waiting(self):
        return self.ser.in_waiting

    def _spend(self, n):
        self.budget -= n
        if self.budget < 0:
            raise _Unplugged("unplugged")

    def read(self, n):
        data = self.ser.read(n)
        self._spend(len(data))
        return data

    def write(self, data):
        self._spend(len(data))
        return self.ser.write(data)


def _library_snapshot(lib):
    rows = [(r["board"], r["boot"], r["journal_index"], r["mode"], r["breaths"], r["complete"],
             len(lib.breaths(r["id"])), tuple(lib.breaths(r["id"]))) for r in lib.sessions()]
    return sorted(rows)


def test_twenty_sessions_without_a_host_one_sync_then_again_then_interrupted_syncs(tmp_path):
    vb, folder = _made_board(tmp_path)
    with vb:
        listen = serial.Serial(vb.port, timeout=0.2)
        try:
            _wait_summaries(listen, SESSIONS)
        finally:
            listen.close()
        journal = folder / "journal"
        files = sorted(p.name for p in journal.iterdir() if J.parse_name(p.name))
        assert len(files) == SESSIONS
        copy = tmp_path / "copy"
        copy.mkdir()
        shutil.copytree(journal, copy / "journal")  # the same journal, for the interrupted syncs
        (copy / "settings.json").write_text(json.dumps({"autostart": False}))

        with Library(tmp_path / "one.sqlite") as lib:
            t0 = time.monotonic()
            first = _sync(vb.port, lib)
            took = time.monotonic() - t0
            assert (first["added"], first["dropped"], first["skipped"]) == (SESSIONS, SESSIONS, 0), first
            rows = lib.sessions()
            assert len(rows) == SESSIONS
            modes = {r["mode"] for r in rows}
            assert modes == {"pace", "practice", "assess", "winddown"}, modes
            for r in rows:
                assert r["complete"] and r["dated_by"] == "host clock" and r["started_at"], r
                assert len(lib.breaths(r["id"])) >= 2, r  # 40 s at 4.5-10.5 breaths/min
            second = _sync(vb.port, lib)
            assert (second["added"], second["dropped"]) == (0, 0)
            assert len(lib.sessions()) == SESSIONS
            want = _library_snapshot(lib)
            assert not [p for p in journal.iterdir() if J.parse_name(p.name)]  # freed on the board
        print("sync of %d sessions: %.2f s" % (SESSIONS, took))

    # The same journal on a board started again (a new boot): syncs unplugged at 50 random moments,
    # then one to the end: the same 20 sessions, none twice.
    settings = copy / "settings.json"
    with VirtualBoard(speed="max", heapsize=HEAP, respawn=False, settings_path=str(settings),
                      person=person_spec(seed=3, hr=66)) as vb2:
        with Library(tmp_path / "two.sqlite") as lib:
            rng = random.Random(18)
            cuts = 0
            for _ in range(50):
                # cut somewhere within what is left to do (the board's journal folder is visible here)
                total = _bytes_of_a_whole_sync(copy / "journal")
                ser = open_checked(vb2.port)
                try:
                    sync_mod.sync(sync_mod.BoardLink(_CutSerial(ser, rng.randrange(total)), vb2.port), lib)
                except VagalError as e:
                    assert "unplugged" in str(e) or "no answer" in str(e), e
                    cuts += 1
                finally:
                    ser.close()
                time.sleep(0.05)  # answers to the cut requests drain before the next sync
            final = _sync(vb2.port, lib)
            got = _library_snapshot(lib)
            assert [g[1:] for g in got] == [w[1:] for w in want]  # same sessions, breaths, no duplicates
            assert final["dropped"] == final["added"] + final["held"]
            assert cuts >= 30, cuts  # most of the 50 syncs were cut (the rest had little left to do)
            print("%d of 50 syncs cut part-way; the last one completed" % cuts)
            for r in lib.sessions():
                assert r["dated_by"] == "undated"  # an earlier boot, never told the date


def _bytes_of_a_whole_sync(journal):
    """About the bytes one full sync moves: each file as hex in lines, and the commands around it."""
    files = [p for p in journal.iterdir() if J.parse_name(p.name)]
    return sum(os.path.getsize(p) for p in files) * 3 + len(files) * 200 + 400


def test_a_session_streamed_and_then_synced_is_one_row(tmp_path):
    """`vagal demo --board-dir` records a session (file imported into the library); `vagal sync`
    of that board's journal adds nothing new: the stream file carried the journal's key."""
    lib_path = tmp_path / "lib.sqlite"
    board_dir = tmp_path / "pico"
    env = dict(os.environ, VAGAL_LIBRARY=str(lib_path))
    session = tmp_path / "s.vagal"
    r = subprocess.run([sys.executable, "-m", "vagal_host.cli", "demo", "--duration", "50", "--speed", "25",
                        "--session", str(session), "--board-dir", str(board_dir), "--mode", "pace"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "library: 1 session added" in r.stdout, r.stdout
    with Library(lib_path) as lib:
        before = lib.sessions()
        assert len(before) == 1 and before[0]["boot"] is not None and before[0]["source"] == "stream"
    # demo stops the board mid-session (no summary on flash); `vagal sync` on that board's next start
    settings = board_dir / "settings.json"
    kept = json.loads(settings.read_text())
    kept["autostart"] = False
    settings.write_text(json.dumps(kept))
    with VirtualBoard(speed="max", heapsize=HEAP, respawn=False, settings_path=str(settings)) as vb:
        r = subprocess.run([sys.executable, "-m", "vagal_host.cli", "sync", "--port", vb.port],
                           capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "0 new sessions, 1 already in the library" in r.stdout and "1 freed on the board" in r.stdout, r.stdout
    assert "cut short" not in r.stdout  # the library's row is the streamed one
    with Library(lib_path) as lib:
        rows = lib.sessions()
    keys = [(r["boot"], r["journal_index"]) for r in rows]
    assert len(keys) == len(set(keys))
    assert (before[0]["boot"], before[0]["journal_index"]) in keys
    demo_row = [r for r in rows if r["boot"] == before[0]["boot"]][0]
    assert demo_row["source"] == "stream" and demo_row["id"] == before[0]["id"]  # the same row


def _row(k, day, minutes=10):
    """A journal-like session row for the library (through journal_row, the sync's own code)."""
    from vagal.journal_read import JournalSession

    s = JournalSession("x")
    s.boot, s.index, s.mode = 1 + k // 500, 1 + k % 500, ("practice", "pace", "assess", "winddown")[k % 4]
    s.settings = {"rate_mbpm": 6000, "resonance_mbpm": 5500 + (k // 30) * 100}
    s.breaths = [(10000 * i, 1, 40 + k % 20, 35, -10, 650, 5500) for i in range(minutes * 5)]
    s.minutes = [(60000 * i, 650 - k % 30, 40000 + 300 * (k % 17), 50000, 120, 95, 5500) for i in range(1, minutes)]
    s.summary = (minutes * 60000, s.mode, 650, 40 + k % 20, 30 + k % 50, 5500, minutes * 5, "auto")
    return journal_row(s, "b", (day + "T07:%02d:00" % (k % 60), day, "host clock")), s.breaths, s.minutes


def _ninety_days(path):
    import datetime

    d0 = datetime.date(2026, 9, 1)
    with Library(path) as lib:
        k = 0
        for day in range(90):
            for _ in range(1 + day % 3 if day % 7 != 5 else 0):  # some days none, some 3
                row, b, m = _row(k, (d0 + datetime.timedelta(days=day)).isoformat())
                lib.add_session(row, b, m)
                k += 1
    return k


def test_history_of_ninety_days_renders_its_trend_figures(tmp_path):
    from vagal_host.history import build

    n = _ninety_days(tmp_path / "lib.sqlite")
    t0 = time.monotonic()
    with Library(tmp_path / "lib.sqlite", write=False) as lib:
        index, drawn, dated, undated = build(lib, str(tmp_path / "history"))
    took = time.monotonic() - t0
    print("vagal history of %d sessions over 90 days: %.2f s" % (n, took))
    assert dated == n and undated == 0
    assert drawn == ["minutes.png", "rate.png", "swing.png", "heart.png"]
    page = open(index).read()
    assert "days practised" in page and page.count("<img") == 4
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium is not installed (apt-get install chromium): no screenshot")
    shot = tmp_path / "shot.png"
    r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--window-size=1100,2600", "--screenshot=%s" % shot, "file://" + os.path.abspath(index)],
                       capture_output=True, text=True, timeout=120)
    assert shot.exists(), r.stderr
    from matplotlib.image import imread

    img = imread(str(shot))
    # the figures are there: many distinct colours (bars, lines, dots), not a blank page
    h, w = img.shape[:2]
    body = img[int(h * 0.2):, :, :3]
    distinct = len({tuple((px * 16).astype(int)) for px in body[::17, ::13].reshape(-1, 3)})
    assert distinct > 40, distinct


def test_cli_sessions_and_report_by_library_id(tmp_path):
    _ninety_days(tmp_path / "lib.sqlite")
    env = dict(os.environ, VAGAL_LIBRARY=str(tmp_path / "lib.sqlite"))
    r = subprocess.run([sys.executable, "-m", "vagal_host.cli", "sessions", "--last", "3"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["id", "date", "mode"] and len(lines) == 5
    sid = lines[-2].split()[0]
    out = tmp_path / "rep"
    r = subprocess.run([sys.executable, "-m", "vagal_host.cli", "report", sid, "--out", str(out), "--quiet"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    page = (out / "index.html").read_text()
    assert "swing" in page.lower() and (out / "swing.png").exists()
    r = subprocess.run([sys.executable, "-m", "vagal_host.cli", "report", "99999"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and "no session 99999" in r.stderr


def test_import_of_a_file_twice_adds_it_once(tmp_path):
    from vagal import protocol

    lines = ["# vagal session 1", "# started 2026-12-01T08:00:00+00:00"]
    msgs = [("hello", "0.1.0", 1, 250, "b", "-"), ("session", 0, "start", "button"), ("mode", 0, "pace", "button"),
            ("jsession", 4, 2, 0, 0), ("breath", 10000, 1, 50, 45, -5, 660, 6000),
            ("hrv", 60000, 660, 41000, 52000, 32), ("summary", 61000, "pace", 660, 50, 0, 6000, 1),
            ("session", 61000, "stop", "button")]
    for i, m in enumerate(msgs):
        lines.append("%.3f\t%s" % (i * 0.5, protocol.encode(m[0], i, *m[1:]).rstrip("\n")))
    f = tmp_path / "a.vagal"
    f.write_text("\n".join(lines) + "\n")
    with Library(tmp_path / "lib.sqlite") as lib:
        assert import_file(lib, f) == (1, 0)
        assert import_file(lib, f) == (0, 1)
        (row,) = lib.sessions()
        assert (row["boot"], row["journal_index"], row["swing_x10"], row["breaths"]) == (4, 2, 50, 1)
        assert row["day"] == "2026-12-01" and len(lib.breaths(row["id"])) == 1
        assert lib.minutes(row["id"])[0][:3] == (60000, 660, 41000)


def _cli(args, lib):
    env = dict(os.environ, VAGAL_LIBRARY=str(lib))
    return subprocess.run([sys.executable, "-m", "vagal_host.cli"] + args, capture_output=True, text=True,
                          env=env, timeout=60)


def test_a_library_from_a_newer_vagal_read_only_or_locked_is_one_line_exit_2_nothing_changed(tmp_path):
    f = tmp_path / "a.vagal"
    f.write_text("# vagal session 1\n# started 2026-12-01T08:00:00+00:00\n")
    newer = tmp_path / "newer.sqlite"
    db = sqlite3.connect(newer)
    db.execute("PRAGMA user_version = %d" % (SCHEMA_VERSION + 1))
    db.commit()
    db.close()
    before = newer.read_bytes()
    for args in (["sessions"], ["import", str(f)], ["history", "--out", str(tmp_path / "h")]):
        r = _cli(args, newer)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
        assert "newer vagal" in r.stderr and str(SCHEMA_VERSION + 1) in r.stderr
    assert newer.read_bytes() == before
    ro = tmp_path / "ro.sqlite"
    Library(ro).close()
    os.chmod(ro, 0o444)
    before = ro.read_bytes()
    r = _cli(["import", str(f)], ro)
    if os.geteuid() != 0:  # root writes read-only files anyway
        assert r.returncode == 2 and "read-only" in r.stderr and ro.read_bytes() == before
    locked = tmp_path / "locked.sqlite"
    Library(locked).close()
    holder = sqlite3.connect(locked, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        t0 = time.monotonic()
        r = _cli(["sessions"], locked)
        assert r.returncode == 2 and "locked" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_the_board_killed_at_random_moments_keeps_every_finished_session_and_appends_after(tmp_path):
    """The virtual board's process killed (SIGKILL: no clean-up, like a power cut) at random moments
    while sessions run and are written; each restart is a new boot. Every session whose summary the
    host saw reads back whole with every breath the host saw; the journal still appends."""
    from vagal.journal_read import JournalError, parse
    from vagal_host.stream import LineSplitter

    folder = tmp_path / "board"
    folder.mkdir()
    settings = folder / "settings.json"
    settings.write_text(json.dumps({"autostart": False, "mode": "pace"}))
    script = ",".join("%d:0.2" % t for t in (2, 22, 24, 44, 46, 66, 68, 88))  # 4 sessions of 20 s
    rng = random.Random(7)
    finished = {}  # (boot, index) -> breaths seen on the wire
    kills = 6
    for k in range(kills + 1):
        with VirtualBoard(speed="max", heapsize=HEAP, respawn=False, settings_path=str(settings),
                          person=person_spec(seed=k, hr=70), buttons=script) as vb:
            ser = serial.Serial(vb.port, timeout=0.05)
            split = LineSplitter()
            key, breaths = None, 0
            until = time.monotonic() + (rng.uniform(0.3, 3.0) if k < kills else 30)
            try:
                while time.monotonic() < until:
                    for line in split.feed(ser.read(ser.in_waiting or 1)):
                        if isinstance(line, int):
                            continue
                        parts = line.split(b"*")[0].split()
                        if parts[0] == b"jsession":
                            key, breaths = (int(parts[2]), int(parts[3])), 0
                        elif parts[0] == b"breath" and key:
                            breaths += 1
                        elif parts[0] == b"summary" and key:
                            finished[key] = breaths
                            if k == kills:
                                until = 0  # the last boot: one whole session after all the cuts
                if k < kills:
                    vb.proc.kill()  # mid-session or mid-write: whatever the moment is
                    vb.proc.wait()
            finally:
                ser.close()
    sessions = {}
    for p in (folder / "journal").iterdir():
        if J.parse_name(p.name):
            try:
                s = parse(p.read_bytes(), p.name)
            except JournalError:
                continue  # cut as its header was written
            sessions[(s.boot, s.index)] = s
    assert finished and max(finished)[0] == kills + 1  # the last boot's session is there
    for key, n in finished.items():
        s = sessions[key]
        assert s.complete() and len(s.breaths) == n and not s.problems, (key, n, s.problems)
    cut = [s for key, s in sessions.items() if key not in finished]
    print("%d kills: %d whole sessions kept, %d cut short (kept up to their last record)"
          % (kills, len(finished), len(cut)))


class _FakeJournalLink:
    """jread answers from a byte string, the line unplugged after `fail_after` requests."""

    def __init__(self, data, fail_after=None):
        self.data = data
        self.fail_after = fail_after
        self.offsets = []
        self.answers = {}
        self.rid = 0

    def send(self, kind, boot, index, offset):
        from vagal import protocol

        if self.fail_after is not None and len(self.offsets) >= self.fail_after:
            raise VagalError("lost the board (unplugged)")
        self.offsets.append(offset)
        self.rid += 1
        part = self.data[offset:offset + 256]
        msgs = [protocol.decode(protocol.encode("jchunk", 0, boot, index, offset + a, part[a:a + 64].hex().upper()))
                for a in range(0, len(part), 64)]
        self.answers[self.rid] = ("ok", "%d bytes" % len(part), msgs)
        return self.rid

    def wait(self, rid):
        return self.answers.pop(rid)


def test_a_long_session_cut_part_way_resumes_from_the_bytes_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(sync_mod, "SAVE_EVERY", 1024)
    data = bytes(random.Random(1).randrange(256) for _ in range(9000))
    with Library(tmp_path / "lib.sqlite") as lib:
        cut = _FakeJournalLink(data, fail_after=21)
        with pytest.raises(VagalError):
            sync_mod._download(cut, lib, "b", 3, 7, len(data), lambda n: None)
        kept = lib.partial("b", 3, 7, len(data))
        assert 4096 <= len(kept) <= 21 * 256 and data.startswith(kept)
        again = _FakeJournalLink(data)
        assert sync_mod._download(again, lib, "b", 3, 7, len(data), lambda n: None) == data
        assert again.offsets[0] == len(kept)  # resumed, not read again from the start
        assert lib.partial("b", 3, 7, len(data) + 1) == b""  # a file that changed size starts over
