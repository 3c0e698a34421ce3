"""Issue 13, items 8 and 10: a stray byte on the port never spoils the next command (the firmware
drops an unfinished line after RX_QUIET_MS without a line end and takes CR, LF or CRLF as a line
end; the host sends a line end before its first command), and a flood of commands does not wear the
flash (settings writes are coalesced to one per SETTINGS_WRITE_MS, counted in `stats`)."""

import json
import os
import time

from vagal import app as app_mod
from vagal import protocol
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


# ---- item 10: settings writes are coalesced

def test_a_flood_of_set_lines_costs_a_handful_of_flash_writes(tmp_path):
    app, board = new_app(tmp_path)
    writes = []
    real_save = app.settings.save

    def counted_save(*a, **kw):
        writes.append(board.ticks_ms())
        return real_save(*a, **kw)

    app.settings.save = counted_save
    for i in range(1000):  # a host loop: 1,000 `set` lines over 2 s
        board.send(protocol.encode_command("set", i % 60000 + 1, "rate_mbpm=%d" % (4000 + i)))
        if i % 50 == 49:
            run_for(app, board, 0.1)
    run_for(app, board, 6)
    assert len([m for m in board.messages() if m.kind == "ok"]) == 1000
    assert app.pacer.target_mbpm == 4999  # every value was in force at once
    assert json.loads((tmp_path / "settings.json").read_text())["rate_mbpm"] == 4999
    assert 1 <= len(writes) <= 3, writes  # 1,000 writes before
    gaps = [b - a for a, b in zip(writes, writes[1:])]
    assert all(g >= app_mod.SETTINGS_WRITE_MS for g in gaps), gaps
    stats = [m for m in board.messages() if m.kind == "stats"]
    assert stats[-1]["flash_writes"] == len(writes) == app.flash_writes


def test_settings_are_written_at_session_end_and_when_the_app_stops(tmp_path):
    app, board = new_app(tmp_path)
    board.send(protocol.encode_command("set", 1, "brightness=50"))  # written at once (first change)
    board.send(protocol.encode_command("set", 2, "brightness=51"))  # within the gap: waits
    run_for(app, board, 0.1)
    path = tmp_path / "settings.json"
    assert json.loads(path.read_text())["brightness"] == 50
    board.send(protocol.encode_command("stop", 3))
    run_for(app, board, 0.1)
    assert json.loads(path.read_text())["brightness"] == 51  # session end writes it
    board.send(protocol.encode_command("set", 4, "brightness=52"))
    run_for(app, board, 0.1)
    assert json.loads(path.read_text())["brightness"] == 51
    app.save_settings(True)  # what app.run() does when the app stops (a reset, Ctrl-C)
    assert json.loads(path.read_text())["brightness"] == 52
    assert app.flash_writes == 3
