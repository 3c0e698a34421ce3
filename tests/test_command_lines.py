"""Issue 13, item 8: a stray byte on the port never spoils the next command. The firmware drops an
unfinished line after RX_QUIET_MS without a line end and takes CR, LF or CRLF as a line end; the
host sends a line end before its first command."""

import os
import time

from vagal import app as app_mod
from vagal_host.cli import main
from vagal_host.virtual import VirtualBoard

from test_app import new_app, replies, run_for


def test_a_stray_byte_is_dropped_after_a_quiet_second(tmp_path):
    app, board = new_app(tmp_path)
    board.send(b"\x03")  # an earlier client's Ctrl-C, never followed by a line end
    run_for(app, board, app_mod.RX_QUIET_MS / 1000 + 0.1)
    board.send(b"ping 5\n")
    run_for(app, board, 0.1)
    assert [m.kind for m in replies(board, 5)] == ["ok"]
    dropped = [m for m in replies(board, -1)]
    assert len(dropped) == 1 and "unfinished line dropped" in dropped[0]["reason"]
    assert app.rx_bad == 1


def test_a_slow_typist_within_the_quiet_gap_is_not_cut(tmp_path):
    app, board = new_app(tmp_path)
    for c in b"ping 6\n":
        board.send(bytes([c]))
        run_for(app, board, app_mod.RX_QUIET_MS / 1000 * 0.8)
    assert [m.kind for m in replies(board, 6)] == ["ok"]
    assert not replies(board, -1)


def test_cr_lf_and_crlf_all_end_a_line(tmp_path):
    app, board = new_app(tmp_path)
    board.send(b"ping 1\rping 2\nping 3\r\nping 4\r")
    run_for(app, board, 0.1)
    for rid in (1, 2, 3, 4):  # ping 4 answered at once: a lone CR is not held as an unfinished line
        assert [m.kind for m in replies(board, rid)] == ["ok"], rid
    assert app.rx_bad == 0


def test_vagal_settings_right_after_a_stray_byte(tmp_path, capsys):
    """It used to fail once with `non-printable byte 0x03`: the byte joined its first command."""
    with VirtualBoard(speed=1, respawn=False) as vb:
        assert main(["settings", "--port", vb.port]) == 0  # up and answering
        capsys.readouterr()
        for stray in (b"\x03", b"abc", b"\r"):
            fd = os.open(vb.port, os.O_RDWR | os.O_NOCTTY)
            os.write(fd, stray)
            os.close(fd)
            time.sleep(0.05)
            assert main(["settings", "--port", vb.port, "brightness=41"]) == 0, capsys.readouterr().err
            assert "brightness=41" in capsys.readouterr().out
