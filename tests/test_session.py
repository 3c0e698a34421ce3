"""Session files: written as lines arrive, read back into typed records; damage is named, not guessed."""

import pytest

from vagal import protocol
from vagal_host.errors import VagalError
from vagal_host.session import (Beat, Hrv, Log, Pacer, Quality, Raw, SessionWriter, default_path,
                                read_session)


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def enc(kind, seq, *values):
    return protocol.encode(kind, seq, *values).encode().rstrip(b"\n")


def write_example(path):
    clock = FakeClock()
    w = SessionWriter(str(path), "/dev/ttyACM0", "0.1.0", extra={"source": "test"}, clock=clock)
    w.event("connected", "/dev/ttyACM0")
    sent = [
        enc("hello", 0, "0.1.0", 1, 250, "pico", "-"),
        enc("quality", 1, 0, "ok"),
        enc("beat", 2, 812, 0, 1500, 70),
        enc("beat", 3, 1795, 983000, 1480, 91) + b"\r",  # USB CDC line ending
        enc("pacer", 4, 2000, 6000, 3355443, "in", 20000),
        enc("hrv", 5, 2000, 610, 31000, 40000, 2),
        enc("raw", 6, 2004, 250, (31000, 31010, 31020)),
        enc("log", 7, "warn", "a # and a \\ and a\ttab-free text"),
        b"beat 8 garbage*0000",  # corrupt
        b"\xff\x00beat 9\x1b[2J",  # binary noise
        b"#not an event",  # a board line that starts like a host event
        enc("beat", 12, 2790, 995000, 1490, 92),  # seq 10 and 11 lost... 9 arrived as noise
    ]
    for i, line in enumerate(sent):
        clock.t += 0.25
        w.received(line)
    clock.t += 0.1
    w.cut(b"beat 13 37")
    w.event("disconnected", "unplugged")
    clock.t += 1.0
    w.event("reconnected", "/dev/ttyACM0")
    w.received(enc("beat", 40, 9000, 1000000, 1500, 90))  # no loss counted across the reconnection
    w.overlong(5000)
    w.close()
    return sent, w


def test_round_trip_typed_records_and_counts(tmp_path):
    path = tmp_path / "a.vagal"
    sent, w = write_example(path)
    s = read_session(str(path))
    assert s.header["port"] == "/dev/ttyACM0"
    assert s.header["tool"] == "vagal 0.1.0"
    assert s.header["source"] == "test"
    assert s.header["format"] == "1"
    assert "started" in s.header
    assert not s.truncated
    # every line exactly as received (only the "\r" of "\r\n" dropped), with its receive time
    assert [r.line for r in s.lines[:len(sent)]] == [x.rstrip(b"\r") for x in sent]
    assert [round(r.host_t, 3) for r in s.lines[:3]] == [0.25, 0.5, 0.75]
    assert s.beats == [Beat(0.75, 2, 812, 0, 1500, 70), Beat(1.0, 3, 1795, 983000, 1480, 91),
                       Beat(3.0, 12, 2790, 995000, 1490, 92), Beat(4.1, 40, 9000, 1000000, 1500, 90)]
    assert s.quality == [Quality(0.5, 1, 0, "ok")]
    assert s.pacer == [Pacer(1.25, 4, 2000, 6000, 3355443, "in", 20000)]
    assert s.hrv == [Hrv(1.5, 5, 2000, 610, 31000, 40000, 2)]
    assert s.raw == [Raw(1.75, 6, 2004, 250, (31000, 31010, 31020))]
    assert s.logs == [Log(2.0, 7, "warn", "a # and a \\ and a\ttab-free text".replace("\t", "?"))]
    assert s.hello[0].fs == 250
    # counts: the 3 bad lines are corrupt (and fill seq 8, 9, 10), so only seq 11 is lost
    assert (s.received, s.lost, s.corrupt, s.partial) == (10, 1, 3 + 1, 1)
    assert (s.received, s.lost, s.corrupt, s.partial) == w.counter.totals()
    assert [e.name for e in s.events] == ["connected", "disconnected", "reconnected", "overlong",
                                          "counts", "end"]
    assert s.events[-2].detail == "received=10 lost=1 corrupt=4 partial=1"
    assert abs(s.duration - 4.1) < 1e-6
    assert abs(s.mean_hr_bpm() - 60e6 * 3 / (983000 + 995000 + 1000000)) < 1e-9
    noise = [r for r in s.lines if r.line.startswith(b"\xff")][0]
    assert noise.msg is None and "non-printable" in noise.error


def test_file_is_plain_text(tmp_path):
    path = tmp_path / "a.vagal"
    write_example(path)
    text = path.read_bytes().decode("ascii")  # binary noise is stored as hex, never raw
    assert "\t#line ff00" in text and "\t#line 236e6f74" in text
    assert "\t#cut 62656174203133203337" in text


def test_truncated_last_line_is_skipped(tmp_path):
    path = tmp_path / "a.vagal"
    write_example(path)
    data = path.read_bytes()
    full = read_session(str(path))
    lines = data.split(b"\n")
    # a crash in the middle of writing the line of the last beat before the reconnection
    idx = next(i for i, x in enumerate(lines) if b"beat 12 " in x)
    cut = b"\n".join(lines[:idx]) + b"\n" + lines[idx][:9]
    (tmp_path / "t.vagal").write_bytes(cut)
    s = read_session(str(tmp_path / "t.vagal"))
    assert s.truncated
    assert len(s.beats) == 2
    assert len(s.lines) == 11
    assert [(r.host_t, r.line, r.error) for r in s.lines] == [
        (r.host_t, r.line, r.error) for r in full.lines[:len(s.lines)]]
    assert s.events[-1].name == "connected"  # no end event: the writer died


@pytest.mark.parametrize("damage, lineno, why", [
    (lambda d: d.replace(b"\t", b" ", 1), 6, "no time field"),
    (lambda d: d.replace(b"0.500\t", b"0.5x0\t"), 8, "no time field"),
    (lambda d: d.replace(b"\t#line ff00", b"\t#line fg00"), 16, "bad hex in #line record"),
    (lambda d: d.replace(b"\t#disconnected", b"\t#exploded"), 20, "unknown host event"),
    (lambda d: d.replace(b"\tquality 1", b"\tqu\xe4lity 1"), 8, "not ASCII text"),
])
def test_a_damaged_line_is_skipped_and_named(tmp_path, damage, lineno, why):
    """Issue 13: one damaged line costs that line, not the session (it used to refuse the file)."""
    path = tmp_path / "a.vagal"
    write_example(path)
    full = read_session(str(path))
    bad = tmp_path / "bad.vagal"
    bad.write_bytes(damage(path.read_bytes()))
    s = read_session(str(bad))
    assert [(n, w) for n, _, w in s.skipped] == [(lineno, why)]
    assert len(s.lines) + len(s.events) == len(full.lines) + len(full.events) - 1


def test_a_time_going_backwards_keeps_its_line(tmp_path):
    path = tmp_path / "a.vagal"
    write_example(path)
    bad = tmp_path / "bad.vagal"
    bad.write_bytes(path.read_bytes().replace(b"0.750\t", b"0.100\t"))
    s = read_session(str(bad))
    assert not s.skipped
    assert [r.line for r in s.lines] == [r.line for r in read_session(str(path)).lines]
    assert [r.host_t for r in s.lines] == sorted(r.host_t for r in s.lines)


@pytest.mark.parametrize("damage, message", [
    (lambda d: d.replace(b"# vagal session 1", b"# vagal session 9"), "line 1: session format '9'"),
    (lambda d: b"time,ppg\n0,1\n", "is not a vagal session file"),
    (lambda d: b"", "is empty: not a vagal session file"),
])
def test_a_file_that_is_no_session_is_refused(tmp_path, damage, message):
    path = tmp_path / "a.vagal"
    write_example(path)
    bad = tmp_path / "bad.vagal"
    bad.write_bytes(damage(path.read_bytes()))
    with pytest.raises(VagalError) as e:
        read_session(str(bad))
    assert message in str(e.value)
    assert str(bad) in str(e.value)


def test_missing_file_and_no_overwrite(tmp_path):
    with pytest.raises(VagalError, match="cannot read session file"):
        read_session(str(tmp_path / "none.vagal"))
    (tmp_path / "x.vagal").write_text("keep")
    with pytest.raises(VagalError, match="already exists"):
        SessionWriter(str(tmp_path / "x.vagal"), "p", "0")
    assert (tmp_path / "x.vagal").read_text() == "keep"
    w = SessionWriter(str(tmp_path / "x.vagal"), "p", "0", overwrite=True)
    w.close()
    assert read_session(str(tmp_path / "x.vagal")).header["port"] == "p"


def test_default_path_is_unique(tmp_path):
    a = default_path(str(tmp_path / "sessions"))
    SessionWriter(a, "p", "0").close()
    b = default_path(str(tmp_path / "sessions"))
    assert a != b and b.endswith(".vagal") and a.startswith(str(tmp_path / "sessions"))


def test_flush_is_due_after_half_a_second(tmp_path):
    clock = FakeClock()
    path = tmp_path / "f.vagal"
    w = SessionWriter(str(path), "p", "0", clock=clock)
    size0 = path.stat().st_size
    w.received(enc("beat", 0, 1, 0, 1, 1))
    w.tick()
    assert path.stat().st_size == size0  # buffered
    clock.t += 0.5
    w.tick()
    assert path.stat().st_size > size0
    w.close()


_EXAMPLE = {}


def _example_bytes(tmp_path_factory):
    if "data" not in _EXAMPLE:
        path = tmp_path_factory.mktemp("example") / "e.vagal"
        write_example(path)
        _EXAMPLE["data"] = path.read_bytes()
    return _EXAMPLE["data"]


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10 ** 6), st.binary(max_size=8)), min_size=1, max_size=4),
       st.booleans())
def test_damaged_files_give_a_session_or_a_vagal_error(tmp_path_factory, edits, cut):
    """Random overwrites/cuts of a good file: read back, or a VagalError naming the file - nothing else."""
    data = bytearray(_example_bytes(tmp_path_factory))
    for pos, junk in edits:
        pos %= len(data)
        data[pos:pos + len(junk)] = junk
    if cut:
        data = data[: edits[0][0] % len(data)]
    path = tmp_path_factory.mktemp("damaged") / "d.vagal"
    path.write_bytes(bytes(data))
    try:
        s = read_session(str(path))
    except VagalError as e:
        assert str(path) in str(e)
        return
    assert s.received + s.corrupt + s.partial == len(s.lines) + len([e for e in s.events if e.name == "overlong"])


def test_an_empty_file_is_called_empty(tmp_path):
    path = tmp_path / "empty.vagal"
    path.write_bytes(b"\n")
    with pytest.raises(VagalError, match="empty.vagal is empty"):
        read_session(str(path))


def test_a_folder_as_session_file_is_named_even_with_overwrite(tmp_path):
    for overwrite in (False, True):
        with pytest.raises(VagalError, match="is a folder; give a file name"):
            SessionWriter(str(tmp_path), "/dev/x", "0.1.0", overwrite=overwrite)
    assert list(tmp_path.iterdir()) == []


def test_the_example_session_in_docs_streaming_reads_back_without_damage(tmp_path):
    """A user may copy the documented example to try the tools: its checksums must be real."""
    import os
    import re

    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "streaming.md")).read()
    block = re.search(r"```\n(# vagal session 1\n.*?)```", doc, re.S).group(1)
    path = tmp_path / "example.vagal"
    path.write_text("".join(l + "\n" for l in block.splitlines() if l != "..."))
    s = read_session(str(path))
    assert s.corrupt == 0 and s.partial == 0, [r.error for r in s.lines if r.error]
    assert len(s.beats) == 1 and s.hello[0].fw == "0.1.0"
    assert [e.name for e in s.events] == ["connected", "disconnected", "counts", "reconnected"]
