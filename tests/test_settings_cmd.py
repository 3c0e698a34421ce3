"""`vagal settings` against the firmware on the virtual board: shows, changes (saved in the board's
settings file) and restores settings; a bad value is refused before anything reaches the board."""

import json
import os
import time

import pytest

from vagal import app as app_mod
from vagal_host.cli import main
from vagal_host.virtual import VirtualBoard


@pytest.fixture(scope="module")
def board():
    with VirtualBoard(speed=1, respawn=False) as vb:
        yield vb


def _saved(vb, want=None):
    """The board's settings file, once it holds `want` (key -> value): the board writes changes
    at most every app.SETTINGS_WRITE_MS, not at once."""
    deadline = time.monotonic() + app_mod.SETTINGS_WRITE_MS / 1000 + 3
    while True:
        with open(vb.settings_path) as f:
            data = json.load(f)
        if not want or all(data.get(k) == v for k, v in want.items()) or time.monotonic() > deadline:
            return data
        time.sleep(0.1)


def test_show_change_and_restore(board, capsys):
    assert main(["settings", "--port", board.port]) == 0
    out = capsys.readouterr().out
    assert "session_min" in out and "rate_mbpm" in out and "change: vagal settings KEY=VALUE" in out

    assert main(["settings", "--port", board.port, "session_min=20", "brightness=30"]) == 0
    out = capsys.readouterr().out
    assert "session_min=20, brightness=30" in out
    assert "session_min: from the next session" in out  # a running session keeps its length
    saved = _saved(board, {"session_min": 20, "brightness": 30})
    assert saved["session_min"] == 20 and saved["brightness"] == 30
    assert main(["settings", "--port", board.port]) == 0
    shown = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()[1:-1]}
    assert shown["session_min"] == ["20", "(default", "0)"]
    assert shown["rate_mbpm"] == ["6000", "(6.00", "breaths/min)"]  # the board's unit, and breaths/min

    assert main(["settings", "--port", board.port, "brightness=40"]) == 0
    assert "in force at once" in capsys.readouterr().out
    assert main(["settings", "--port", board.port, "--defaults"]) == 0
    assert "back to its default" in capsys.readouterr().out
    assert _saved(board, {"session_min": 0})["session_min"] == 0


def test_rates_can_be_given_in_breaths_per_minute():
    """Issue 17 item 7: breaths/min is the unit every command shows; the board's thousandths work too."""
    from vagal_host.commands.settings import parse_assignments

    assert parse_assignments(["rate_mbpm=5.5", "resonance_mbpm=5500", "winddown_start_mbpm=10.5",
                              "session_min=5"]) == [
        ("rate_mbpm", "5500"), ("resonance_mbpm", "5500"), ("winddown_start_mbpm", "10500"), ("session_min", "5")]
    from vagal_host.errors import VagalError

    with pytest.raises(VagalError, match="rate_mbpm"):
        parse_assignments(["rate_mbpm=2.5"])  # 2500: below the pacer's 3000


@pytest.mark.parametrize("args, words", [
    (["session_min=500"], "session_min=500: must be an integer 0..120; nothing was changed"),
    (["rate_mbpm=5500", "colour=red"], "unknown setting 'colour'"),
    (["session_min"], "'session_min' is not KEY=VALUE"),
    (["--defaults", "session_min=5"], "do one, then the other"),
])
def test_bad_values_are_refused_before_the_board_hears_of_them(board, capsys, args, words):
    before = os.path.getmtime(board.settings_path) if os.path.exists(board.settings_path) else None
    saved = _saved(board) if before is not None else None
    assert main(["settings", "--port", board.port] + args) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("vagal settings: error: ") and words in err[0], err
    if saved is not None:
        assert _saved(board) == saved


def test_a_port_without_the_app_times_out_with_a_hint(tmp_path, capsys, monkeypatch):
    import pty

    from vagal_host.commands import settings as cmd

    monkeypatch.setattr(cmd, "ANSWER_S", 0.5)
    master, slave = pty.openpty()
    try:
        assert main(["settings", "--port", os.ttyname(slave)]) == 2
    finally:
        os.close(master)
        os.close(slave)
    err = capsys.readouterr().err
    assert "no answer to `get`" in err and "vagal deploy" in err, err
