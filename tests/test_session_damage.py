"""Issue 13, item 3: a damaged session file costs its damaged lines, never the session.

Every received line carries its own CRC, so the reader skips what it cannot read and counts it. The
property test damages a real session file (tests/session_corpus) by truncation, byte flips, inserted
and appended garbage, and checks that every undamaged line's data comes back and that `vagal export`
gives its tables and says how many lines it skipped, never a traceback. `make test` repeats the same
examples; `make fuzz` draws fresh ones.
"""

import collections
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from vagal import protocol
from vagal_host.cli import main
from vagal_host.errors import VagalError
from vagal_host.session import describe_skipped, read_session

CORPUS = Path(__file__).resolve().parent / "session_corpus"
GOOD = (CORPUS / "v1-demo.vagal").read_bytes()
GOOD_LINES = GOOD.split(b"\n")[:-1]


def _data(lines, keep):
    """Multiset of (kind, seq, values) of the protocol lines among lines[i] for i in keep."""
    out = collections.Counter()
    for i in keep:
        _, tab, rest = lines[i].partition(b"\t")
        if not tab or rest.startswith(b"#"):
            continue
        try:
            m = protocol.decode(rest)
        except protocol.ProtocolError:
            continue
        out[(m.kind, m.seq, m.values)] += 1
    return out


def _read_data(session):
    return collections.Counter((type(r).__name__, r.seq, tuple(r[2:])) for r in session.records)


def _named(counter):
    from vagal_host.session import RECORD_TYPES

    return collections.Counter({(RECORD_TYPES[k].__name__, s, v): n for (k, s, v), n in counter.items()})


def test_one_non_ascii_byte_costs_one_line(tmp_path, capsys):
    lines = list(GOOD_LINES)
    lines[100] = lines[100][:3] + b"\xe9" + lines[100][4:]
    path = tmp_path / "one.vagal"
    path.write_bytes(b"\n".join(lines) + b"\n")
    s = read_session(str(path))
    assert [(n, why) for n, _, why in s.skipped] == [(101, "not ASCII text")]
    assert s.lost == 0  # the skipped line's sequence number is not counted as lost
    assert _read_data(s) == _named(_data(GOOD_LINES, [i for i in range(len(GOOD_LINES)) if i != 100]))
    assert main(["export", str(path), "--format", "kubios", "--out", str(tmp_path / "rr.txt"), "--quiet"]) == 0
    assert "1 damaged line skipped at 0:" in capsys.readouterr().out


def test_skipped_lines_are_told_by_time_and_runs():
    assert describe_skipped([]) == ""
    assert describe_skipped([(10, 252.2, "x"), (11, 253.0, "x"), (12, 253.9, "x")]) == \
        "3 damaged lines skipped at 4:12-4:13"
    assert describe_skipped([(5, 1.0, "x"), (90, 3725.0, "x")]) == "2 damaged lines skipped at 0:01, 1:02:05"


def test_a_report_of_a_damaged_file_says_what_was_skipped(tmp_path, capsys):
    lines = list(GOOD_LINES)
    for k in (200, 201, 202):
        lines[k] = b"\x00garbage\xff"
    path = tmp_path / "d.vagal"
    path.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "rep"
    assert main(["report", str(path), "--out", str(out), "--quiet"]) == 0
    said = capsys.readouterr().out
    assert "3 damaged lines skipped at" in said
    assert "3 damaged lines skipped at" in (out / "index.html").read_text()


def test_a_file_that_is_not_a_session_is_still_refused(tmp_path):
    for content in (b"hello world\n", b"\x89PNG\r\n\x1a\n\x00\x00", b"1.0\tnot a line\n"):
        path = tmp_path / "x.vagal"
        path.write_bytes(content)
        with pytest.raises(VagalError, match="not a vagal session file"):
            read_session(str(path))
    path.write_bytes(GOOD.replace(b"# vagal session 1", b"# vagal session 7", 1))
    with pytest.raises(VagalError, match="session format '7'"):
        read_session(str(path))


DAMAGE = st.lists(st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10 ** 6), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10 ** 6), st.binary(min_size=1, max_size=40)),
    st.tuples(st.just("append"), st.just(0), st.binary(min_size=1, max_size=200)),
    st.tuples(st.just("truncate"), st.integers(0, 10 ** 6), st.just(0)),
), min_size=1, max_size=5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(DAMAGE)
def test_damaged_files_keep_every_undamaged_line(tmp_path, capsys, damage):
    """Byte positions are taken modulo the file; the original lines an edit touches are marked."""
    data = bytearray(GOOD)
    owner = []  # original line index of every byte (-1: garbage)
    for i, line in enumerate(GOOD_LINES):
        owner += [i] * (len(line) + 1)
    damaged = set()
    for op, pos, arg in damage:
        if op == "append":
            data += arg
            owner += [-1] * len(arg)
            continue
        if not data:
            continue
        pos %= len(data)
        if op == "flip":
            if data[pos] == 10:  # a line end lost: the line after it is joined to this one
                damaged.add(owner[pos + 1] if pos + 1 < len(owner) else -1)
            data[pos] ^= arg
            damaged.add(owner[pos])
        elif op == "insert":
            data[pos:pos] = arg
            owner[pos:pos] = [-1] * len(arg)
            damaged.add(owner[pos + len(arg)] if pos + len(arg) < len(owner) else -1)
        else:
            damaged.update(owner[pos:])
            del data[pos:]
            del owner[pos:]
    undamaged = [i for i in range(len(GOOD_LINES)) if i not in damaged]
    want = _named(_data(GOOD_LINES, undamaged))
    path = tmp_path / "d.vagal"
    path.write_bytes(bytes(data))
    try:
        s = read_session(str(path))
    except VagalError as e:  # only when nothing of the session is left to read
        assert not want, e
        return
    got = _read_data(s)
    assert not want - got  # every undamaged line's data is there
    assert s.skipped_text() == describe_skipped(s.skipped)
    out = tmp_path / "csv"
    status = main(["export", str(path), "--format", "csv", "--out", str(out), "--quiet", "--force"])
    said = capsys.readouterr()
    if not any(k in ("Beat", "Pacer", "Raw", "SessionState") for k, _, _ in want):
        assert status in (0, 2), said
        return
    assert status == 0, said
    if s.skipped:
        assert "damaged line" in said.out
