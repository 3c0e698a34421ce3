"""Issue 13, item 4: the protocol can grow (docs/protocol.md, Versioning) and old session files stay
readable by new code (tests/session_corpus, read in every test run)."""

import io
import os
import time
from pathlib import Path

import pytest

from vagal import protocol
from vagal_host.errors import VagalError
from vagal_host.export import load
from vagal_host.session import read_session
from vagal_host.stream import Streamer

from test_stream import _board_pty, _read_commands

CORPUS = Path(__file__).resolve().parent / "session_corpus"


def _line(body):
    return b"%s*%04X" % (body, protocol.crc16(body))


def _session_file(path, bodies):
    out = [b"# vagal session 1", b"# tool vagal test", b"0.000\t#connected /dev/x"]
    out += [b"%.3f\t%s" % (0.01 * i, _line(b)) for i, b in enumerate(bodies)]
    path.write_bytes(b"\n".join(out) + b"\n")


@pytest.mark.parametrize("name, beats, lines", [("v1-demo.vagal", 63, 446), ("v1-raw-assess.vagal", 350, 2946)])
def test_session_files_from_earlier_versions_still_read(name, beats, lines):
    s = read_session(str(CORPUS / name))
    assert (s.received, s.lost, s.corrupt, s.partial, s.skipped) == (lines, 0, 0, 0, [])
    assert len(s.beats) == beats
    _, parts, part = load(str(CORPUS / name))
    assert part.of("beat") and part.of("pacer")
    if "assess" in name:
        assert [a.rate_mbpm for a in part.of("assess_step")] == [6500, 6000, 5500, 5000, 4500]
        assert part.of("assess_result")[0].state == "done"
        assert len(part.of("raw")) > 400


def test_a_newer_firmware_session_reads_as_far_as_this_version_knows(tmp_path):
    path = tmp_path / "new.vagal"
    _session_file(path, [b"hello 0 0.9.0 1 250 pico", b"session 1 0 start boot",
                         b"beat 2 900 0 1000 80 77 extra_token",  # a field added later
                         b"heartbeat_v9 3 1 2 3",  # a kind added later
                         b"beat 4 1900 1000000 1000 90 78 x", b"pacer 5 0 6000 0 in 0"])
    s = read_session(str(path))
    assert (s.received, s.lost, s.corrupt) == (6, 0, 0)
    assert [(b.t_ms, b.ibi_us, b.conf) for b in s.beats] == [(900, 0, 80), (1900, 1000000, 90)]
    assert len(s.records) == 5  # the unknown kind is skipped, its seq counted


def test_a_session_of_an_unsupported_protocol_version_is_refused_by_name(tmp_path):
    path = tmp_path / "v2.vagal"
    _session_file(path, [b"hello 0 2.0.0 2 250 pico", b"beat 1 900 0 1000 80"])
    with pytest.raises(VagalError, match="protocol version 2 .*this vagal reads version 1"):
        read_session(str(path))


def test_stream_stops_on_a_board_of_an_unsupported_protocol_version(tmp_path):
    master, slave, port = _board_pty()
    os.set_blocking(master, False)
    try:
        st = Streamer(port, str(tmp_path / "d.vagal"), err=io.StringIO())
        _read_commands(master, 3)
        os.write(master, _line(b"hello 0 2.0.0 2 250 pico") + b"\n" + _line(b"beat 1 900 0 1000 80") + b"\n")
        t0 = time.monotonic()
        with pytest.raises(VagalError, match="protocol version 2"):
            while time.monotonic() - t0 < 3:
                st.poll()
        assert st.closed
    finally:
        os.close(master)
        os.close(slave)
    assert b"hello 0 2.0.0 2" in (tmp_path / "d.vagal").read_bytes()  # kept, for a newer vagal
