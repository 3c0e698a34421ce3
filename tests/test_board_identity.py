"""Issue 13, item 9: the board says who it is (the RP2040's flash unique id, and an id of this boot)
in `hello`, and a host that finds a different board on the same port after a disconnect starts a new
session part instead of appending that board's data to the old one."""

import io
import re

from vagal.protocol import decode
from vagal_host.export import load
from vagal_host.session import read_session
from vagal_host.stream import Streamer
from vagal_host.virtual import VirtualBoard

from test_stream import HOST_HELLO, PtyWriter, lines
from test_virtual_board import _lines

FAKE_UNIQUE_ID = "e6605838832b1c2f"  # host/virtual_board/fakes/machine.py unique_id()


def _hello(vb):
    got = _lines(vb.port, lambda p: p[0] == b"hello", 20)
    hello = [p for p in got if p[0] == b"hello"]
    assert hello, got
    return [x.decode() for x in hello[0]]


def test_hello_carries_the_flash_id_and_a_new_boot_id_at_every_start():
    boots = []
    for _ in range(2):
        with VirtualBoard(speed=1, respawn=False) as vb:
            kind, seq, fw, proto, fs, board, boot = _hello(vb)
        assert board == FAKE_UNIQUE_ID  # not "unknown"
        assert re.fullmatch("[0-9a-f]{8}", boot), boot
        boots.append(boot)
    assert boots[0] != boots[1]


def test_an_old_hello_without_a_boot_id_still_reads():
    m = decode("hello 0 0.1.0 1 250 pico*37F7")
    assert (m["board"], m["boot"]) == ("pico", "-")


BOARD_A = [("hello", "0.1.0", 1, 250, "aaaa0000aaaa0000", "11111111"), ("session", 0, "start", "boot"),
           ("pacer", 0, 6000, 0, "in", 0), ("beat", 900, 0, 1000, 80), ("beat", 1900, 1000000, 1000, 90),
           ("beat", 2900, 1000000, 1000, 90)]
# another board, mid-session (its hello answers the host's `hello` command: seq not 0)
BOARD_B = [("hello", "0.1.0", 1, 250, "bbbb0000bbbb0000", "22222222"), ("pacer", 70000, 6000, 0, "in", 0),
           ("beat", 70500, 800000, 900, 90), ("beat", 71300, 800000, 900, 90),
           ("beat", 72100, 800000, 900, 90)]


def test_a_different_board_on_the_same_port_starts_a_new_part(tmp_path):
    link = str(tmp_path / "ttyVAGAL")
    w1 = PtyWriter(link, [HOST_HELLO] + lines(0, BOARD_A) + [0.3], linger=False)
    session = str(tmp_path / "s.vagal")
    streamer = Streamer(link, session, err=io.StringIO())
    writers = [w1]

    def stop(s):
        if not s.state.connected and len(writers) == 1:
            w1.wait()
            writers.append(PtyWriter(link, [HOST_HELLO] + lines(412, BOARD_B) + [0.2], linger=True))
        return len(writers) == 2 and s.state.connected and s.state.beat_count >= 6

    try:
        streamer.run(duration=10, stop=stop)
    finally:
        for w in writers[1:]:
            w.kill()
    assert any("a different board (id bbbb0000bbbb0000" in x for x in streamer.state.logs)
    s = read_session(session)
    assert [e.detail for e in s.events if e.name == "note"] == [
        "a different board (id bbbb0000bbbb0000, boot 22222222) on %s: its data starts a new session "
        "part" % link]
    _, parts, _ = load(session)
    assert [[b.t_ms for b in p.of("beat")] for p in parts] == [[900, 1900, 2900], [70500, 71300, 72100]]
    assert "board bbbb0000bbbb0000" in " ".join(t for _, _, t in parts[1].annotations)


def test_the_same_board_reconnecting_stays_in_its_part(tmp_path):
    path = tmp_path / "same.vagal"
    from vagal import protocol

    body = ["hello 0 0.1.0 1 250 aaaa 1111", "session 1 0 start boot", "beat 2 900 0 1000 80",
            "hello 3 0.1.0 1 250 aaaa 1111", "beat 4 1900 1000000 1000 90",
            "hello 5 0.1.0 1 250 aaaa 2222", "beat 6 2900 1000000 1000 90"]
    text = "# vagal session 1\n" + "".join("%.3f\t%s*%04X\n" % (i * 0.1, b, protocol.crc16(b))
                                           for i, b in enumerate(body))
    path.write_text(text)
    _, parts, _ = load(str(path))  # a new boot (seq not 0: the host asked) is a new part too
    assert [[b.t_ms for b in p.of("beat")] for p in parts] == [[900, 1900], [2900]]
