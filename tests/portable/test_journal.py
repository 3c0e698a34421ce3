"""The session journal: records written and read back, bounded size, damage and power cuts.

Plain functions and bare asserts: these also run on the MicroPython unix and WebAssembly ports.
"""

import os

from portable import assert_raises, no_alloc, tmp_dir
from vagal import journal as J
from vagal import journal_files as F
from vagal import journal_read as R
from vagal import settings as S


_N = [0]


def _rmtree(path):
    try:
        names = os.listdir(path)
    except OSError:
        return
    for n in names:
        try:
            os.remove(path + "/" + n)
        except OSError:
            pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def _folder():
    """A fresh, empty journal folder, unique within this run."""
    _N[0] += 1
    p = "%s/vagal_test_journal_%d_%d" % (tmp_dir(), os.getpid() if hasattr(os, "getpid") else 0, _N[0])
    _rmtree(p)
    return p


class _Settings:
    def __init__(self, **kw):
        self.values = S.defaults()
        for k in kw:
            self.values[k] = kw[k]

    def get(self, key):
        return self.values[key]


def _read_all(folder):
    out = []
    for name in sorted(os.listdir(folder)):
        if J.parse_name(name) is None:
            continue
        with open(folder + "/" + name, "rb") as f:
            data = f.read()
        try:
            out.append(R.parse(data, name))
        except R.JournalError:
            assert len(data) < R.HEADER_LEN + 4  # only a session whose header was cut is unreadable
    return out


def _session(j, k, breaths=5, minutes=1, date="2026-12-08"):
    """One session of k-dependent numbers; -> the breath tuples written."""
    j.start(S.MODES[k % 4], "button", _Settings(rate_mbpm=5000 + k), date)
    rows = []
    for b in range(breaths):
        row = (10000 * (b + 1), b % 2, 30 + k + b, 25 + b, -40 + b, 650 + k, 5500 + b)
        j.breath(row[0], row[1], row[2], row[3], row[4], row[5], row[6])
        rows.append(row)
        if b % 6 == 5:
            j.minute(row[0], 700, 42000 + k, 51000, 150, 90, 5500)
    for _ in range(minutes):
        j.minute(60000, 700, 42000 + k, 51000, -1, 100, 5500)
    j.end(10000 * breaths + 500, S.MODES[k % 4], 700, 35 + k, 40, 5500 + k, breaths, "auto")
    return rows


def test_sessions_round_trip_with_header_breaths_minutes_and_summary():
    folder = _folder()
    j = J.Journal(folder)
    j.open(0)
    assert j.ok and j.boot == 1
    rows = _session(j, 3, breaths=7)
    j.start("assess", "host", _Settings(resonance_mbpm=5600, resonance_date="2026-11-30"), "")
    j.end(2000, "practice", 0, 0, 0, 5600, 0, "host")
    got = _read_all(folder)
    assert len(got) == 2
    s = got[0]
    assert (s.boot, s.index, s.format) == (1, 1, J.FORMAT)
    assert s.mode == "winddown" and s.source == "button" and s.date == "2026-12-08"
    assert s.settings["rate_mbpm"] == 5003
    assert s.breaths == rows
    assert len(s.minutes) == 2 and s.minutes[0][2] == 42003 and s.minutes[1][4] == -1
    assert s.summary == (70500, "winddown", 700, 38, 40, 5503, 7, "auto")
    assert s.complete() and s.problems == []
    s = got[1]
    assert s.index == 2 and s.date == "" and s.resonance_date == "2026-11-30"
    assert s.settings["resonance_mbpm"] == 5600
    assert s.summary[1] == "practice" and s.mode == "assess"  # it ended in the mode it went on in
    _rmtree(folder)


def test_boot_count_grows_and_never_reuses_a_name_even_without_its_boot_file():
    folder = _folder()
    for want in (1, 2, 3):
        j = J.Journal(folder)
        j.open(0)
        assert j.boot == want
        _session(j, want)
    os.remove(folder + "/boot")
    j = J.Journal(folder)
    j.open(0)
    assert j.boot == 4  # from the newest session file's name
    _rmtree(folder)


def _breath7(j, b):
    j.breath(1000 * b, 1, 30, 20, -10, 700, 6000)


def test_breath_records_allocate_nothing():
    folder = _folder()
    j = J.Journal(folder)
    j.open(0)
    j.start("practice", "boot", _Settings(), "")
    per_batch = J.BATCH // (R.BREATH_LEN + 4)
    for b in range(per_batch):  # a breath between the writes (once a minute) allocates nothing
        no_alloc(_breath7, j, b)
    j.end(5000, "practice", 0, 0, 0, 6000, 0, "host")
    assert len(_read_all(folder)[0].breaths) == per_batch >= 12
    _rmtree(folder)


def test_the_journal_stays_within_its_capacity_dropping_the_oldest_sessions():
    folder = _folder()
    j = J.Journal(folder, capacity=4000)
    j.open(0)
    for k in range(30):
        _session(j, k, breaths=12)
        assert j.used <= 4000
    got = _read_all(folder)
    assert got and got[-1].index == 30 and got[0].index > 1  # the newest kept, the oldest dropped
    assert j.dropped == 30 - len(got) and j.sessions == len(got)
    size = 0
    for name in os.listdir(folder):
        if J.parse_name(name) is not None:
            size += os.stat(folder + "/" + name)[6]
    assert size == j.used
    _rmtree(folder)


def test_damaged_and_torn_records_keep_everything_before_them():
    folder = _folder()
    j = J.Journal(folder)
    j.open(0)
    rows = _session(j, 1, breaths=10)
    name = folder + "/" + J.file_name(1, 1)
    with open(name, "rb") as f:
        data = bytearray(f.read())
    whole = R.parse(data)
    assert whole.breaths == rows
    # a torn last record: every breath kept, no summary, said so
    torn = R.parse(data[:-5])
    assert torn.breaths == rows and torn.summary is None
    assert "torn" in torn.problems[0] and "cut short" in torn.problems[-1]
    # a flipped bit in the 4th breath: the three before it kept, the damage named
    at = 48 + 2 + 19 * 3 + 5  # header record, then breaths of 19 bytes (a minute record after 6)
    data[at] ^= 0x10
    bad = R.parse(data)
    assert bad.breaths == rows[:3] and "damaged" in bad.problems[0]
    _rmtree(folder)


def test_a_newer_format_is_refused_naming_both_versions_and_unknown_kinds_are_skipped():
    folder = _folder()
    j = J.Journal(folder)
    j.open(0)
    _session(j, 1)
    with open(folder + "/" + J.file_name(1, 1), "rb") as f:
        data = bytearray(f.read())
    newer = bytearray(data)
    newer[2] = J.FORMAT + 1
    crc = J.crc16_range(newer, 0, 2 + R.HEADER_LEN)
    newer[2 + R.HEADER_LEN] = crc >> 8
    newer[3 + R.HEADER_LEN] = crc & 0xFF
    e = assert_raises(R.NewerFormat, R.parse, newer, "x.vj")
    assert ("format %d" % (J.FORMAT + 1)) in str(e) and ("format %d" % J.FORMAT) in str(e)
    # a record kind this reader does not know (a later firmware of the same format): skipped
    extra = bytearray(b"Z\x02ab\x00\x00")
    crc = J.crc16_range(extra, 0, 4)
    extra[4] = crc >> 8
    extra[5] = crc & 0xFF
    cut = 2 + R.HEADER_LEN + 2
    s = R.parse(data[:cut] + extra + data[cut:])
    assert len(s.breaths) == 5 and s.complete() and "unknown kind" in s.problems[0]
    _rmtree(folder)


class PowerCut(BaseException):
    """The power going: raised from inside a write, nothing after it runs."""


class _CutFile:
    """A file whose writes stop (part-way) once the budget of bytes is spent: a power cut."""

    def __init__(self, f, budget):
        self.f = f
        self.budget = budget

    def write(self, data):
        n = len(data)
        if n > self.budget[0]:
            self.f.write(data[:self.budget[0]])
            self.f.close()
            self.budget[0] = 0
            raise PowerCut()
        self.budget[0] -= n
        return self.f.write(data)

    def close(self):
        self.f.close()

    def read(self):
        return self.f.read()


def _history(folder, budget):
    """Boots with sessions; -> the breaths of each session whose end() returned (in order)."""
    done = []

    def cut_open(path, mode="r"):
        return _CutFile(open(path, mode), budget)

    J.open = cut_open  # the modules' open: every flash write of the journal goes through it
    F.open = cut_open
    try:
        for boot in range(2):
            j = J.Journal(folder)
            j.open(0)
            for k in range(3):
                rows = _session(j, k, breaths=7)
                done.append((j.boot, j.index, rows))
    except PowerCut:
        pass
    finally:
        del J.open
        del F.open
    return done


def test_power_cuts_at_100_moments_lose_no_completed_session_and_the_journal_still_appends():
    folder = _folder()
    total = [1 << 30]
    _history(folder, total)
    written = (1 << 30) - total[0]
    _rmtree(folder)
    seed = 12345
    for _ in range(100):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        cut = seed % written
        folder = _folder()
        done = _history(folder, [cut])
        j = J.Journal(folder)  # power back: the next boot
        j.open(0)
        rows = _session(j, 9, breaths=3)
        by_key = {}
        for s in _read_all(folder):
            by_key[(s.boot, s.index)] = s
        for boot, index, want in done:
            s = by_key[(boot, index)]
            assert s.complete() and s.breaths == want, (cut, boot, index)
        last = by_key[(j.boot, j.index)]
        assert last.complete() and last.breaths == rows
        _rmtree(folder)
