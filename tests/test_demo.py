"""End to end: the firmware on the virtual board (MicroPython unix port behind a pty), read by vagal stream."""

import io
import os
import shlex
import subprocess
import sys
import time

import pytest

from vagal_host.errors import VagalError
from vagal_host.session import read_session
from vagal_host.stream import Streamer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def vagal(*args, cwd):
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "vagal_host.cli"] + list(args), cwd=cwd,
                       capture_output=True, text=True, timeout=120)
    return r, time.monotonic() - t0


def breath_turns_s(s):
    """Board times (s) at which the pacer turned from exhale to inhale."""
    return [b.t_ms / 1000 for a, b in zip(s.pacer, s.pacer[1:]) if a.dir == "out" and b.dir == "in"]


def host_fell_behind(stdout):
    """True when vagal demo says the virtual board's relay dropped output this computer did not
    read in time (a busy CI machine): then lines are lost by design, as from a Pico's USB."""
    return "fell behind the virtual board" in stdout


def check_demo_session(path, hr_bpm, rate_mbpm, stdout):
    s = read_session(path)
    if not host_fell_behind(stdout):
        assert s.lost == 0 and s.corrupt == 0 and s.partial == 0
    assert s.beats[-1].t_ms >= 55000  # a minute of board time
    assert abs(s.mean_hr_bpm() - hr_bpm) <= 2.0
    assert {p.rate_mbpm for p in s.pacer} == {rate_mbpm}
    turns = breath_turns_s(s)
    period = 60000.0 / rate_mbpm
    assert len(turns) >= int(55 / period)
    for a, b in zip(turns, turns[1:]):
        assert abs((b - a) - period) < 0.25  # pacer messages come every 0.2 s and at each turn
    return s


def test_acceptance_demo_one_minute_at_speed_20(tmp_path):
    r, wall = vagal("demo", "--duration", "60", "--speed", "20", "--session", "s.log", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert wall < 20, "a 60 s demo at speed 20 took %.1f s" % wall
    assert "session file: s.log" in r.stdout
    assert "0 lost, 0 corrupt" in r.stdout or host_fell_behind(r.stdout), r.stdout
    check_demo_session(str(tmp_path / "s.log"), 65.0, 6000, r.stdout)  # the default person and pacer


def test_demo_follows_the_person_and_the_pacer_setting(tmp_path):
    r, wall = vagal("demo", "--duration", "60", "--speed", "20", "--session", "x.vagal", "--hr", "78",
                    "--rate", "5.5", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    s = check_demo_session(str(tmp_path / "x.vagal"), 78.0, 5500, r.stdout)
    assert s.header["person"].startswith("seed=1,hr=78,")
    assert "HR " in r.stderr  # the headless status lines
    assert "lost 0" in r.stderr or host_fell_behind(r.stdout), r.stderr
    assert abs(s.mean_hr_bpm() - 65.0) > 8  # the HR check above can fail


def test_demo_rejects_bad_options_before_starting_anything(tmp_path):
    for args, message in ((["--speed", "0"], "--speed must be a number > 0"),
                          (["--rate", "20"], "--rate 20 outside 3..12"),
                          (["--hr", "fast"], "--hr must be a number"),
                          (["--resonance", "8"], "--resonance 8 outside 4.5..6.6 breaths per minute"),
                          (["--resonance", "0.09"], "0.09 looks like Hz, which is 5.40 breaths per minute")):
        r, _ = vagal("demo", "--duration", "1", "--session", "n.vagal", *args, cwd=str(tmp_path))
        assert r.returncode == 2 and message in r.stderr, (args, r.stderr)
        assert r.stderr.count("\n") == 1
    assert not (tmp_path / "n.vagal").exists()


def test_stream_survives_the_virtual_board_being_unplugged_and_replugged(tmp_path):
    """A stable path (like /dev/serial/by-id) re-pointed at a new virtual board after the first one
    is stopped mid-stream: one session file, lines from both boards, nothing lost or corrupt."""
    from vagal_host.virtual import VirtualBoard

    link = str(tmp_path / "ttyPico")

    def plug(board):
        board.start()
        if os.path.lexists(link + ".new"):
            os.unlink(link + ".new")
        os.symlink(board.port, link + ".new")
        os.replace(link + ".new", link)
        return board

    boards = [plug(VirtualBoard(speed=20))]
    session = str(tmp_path / "replug.vagal")
    marks = {}
    try:
        streamer = Streamer(link, session, speed=20, err=io.StringIO())

        def stop(s):
            if len(boards) == 1 and s.state.board_ms >= 15000:
                marks["unplug"] = s.elapsed()
                boards[0].stop()  # mid-stream: the pty goes away under the reader
            if len(boards) == 1 and not s.state.connected:
                time.sleep(0.3)
                boards.append(plug(VirtualBoard(speed=20)))
            if len(boards) == 2 and s.state.connected:
                marks.setdefault("beats_at_replug", s.state.beat_count)
                return s.state.beat_count - marks["beats_at_replug"] >= 10
            return s.elapsed() > 30

        streamer.run(stop=stop)
    finally:
        for b in boards:
            b.stop()
    assert streamer.state.reconnections == 1
    s = read_session(session)
    names = [e.name for e in s.events]
    assert names[:4] == ["connected", "disconnected", "counts", "reconnected"]
    if not any(b.dropped_bytes for b in boards):   # else this computer fell behind (by design)
        assert s.lost == 0 and s.corrupt == 0
    assert s.partial <= 2  # at most the line cut by each end of the unplugging
    # the second board booted before the port was reopened; the hello it sent then may be gone,
    # but the host asks for one on every connection
    assert [h for h in s.hello if h.host_t > s.events[3].host_t]
    before = [b for b in s.beats if b.host_t < marks["unplug"]]
    after = [b for b in s.beats if b.host_t > s.events[3].host_t]
    assert len(before) >= 12 and len(after) >= 8
    assert abs(s.mean_hr_bpm() - 65) <= 3


def test_stream_needs_a_board(tmp_path):
    with pytest.raises(VagalError, match="does not exist"):
        Streamer(str(tmp_path / "ttyNothing"), str(tmp_path / "none.vagal"))
    assert not (tmp_path / "none.vagal").exists()


def test_demo_raw_samples_and_mode(tmp_path):
    r, _ = vagal("demo", "--duration", "20", "--speed", "20", "--session", "m.vagal", "--raw",
                 "--mode", "practice", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    s = read_session(str(tmp_path / "m.vagal"))
    assert s.header["mode"] == "practice" and s.header["raw"] == "on"
    raw = s.raw
    assert raw and all(x.fs == 250 and len(x.x) == 10 for x in raw)
    n = sum(len(x.x) for x in raw)
    assert n > 250 * 10  # most of the 20 board seconds, drawn sample by sample
    assert max(max(x.x) for x in raw) - min(min(x.x) for x in raw) > 2000  # a pulse, not a flat line
    assert "mode practice" in [m.text for m in s.of_kind("ok")], s.of_kind("ok")
    assert [m.mode for m in s.of_kind("mode")][-1] == "practice"
    assert (s.lost == 0 and s.corrupt == 0) or host_fell_behind(r.stdout), r.stdout


def test_demo_rejects_an_unknown_mode(tmp_path):
    r, _ = vagal("demo", "--duration", "1", "--session", "n.vagal", "--mode", "sleep", cwd=str(tmp_path))
    assert r.returncode == 2 and "--mode 'sleep'" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "n.vagal").exists()


def test_a_board_falling_behind_its_speed_is_reported_with_what_to_do(tmp_path):
    """At --speed 1000 the virtual board cannot keep up and its firmware counts lost samples."""
    r, _ = vagal("demo", "--duration", "30", "--speed", "1000", "--session", "f.vagal", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    stats = read_session(str(tmp_path / "f.vagal")).stats
    lost = max([s.lost for s in stats] or [0])
    if not lost:
        pytest.skip("this computer kept the virtual board up at --speed 1000: nothing was lost")
    assert "board: %d samples lost to overrun" % lost in r.stdout, r.stdout
    assert "use a lower --speed" in r.stdout


def test_demo_says_when_this_computer_fell_behind_the_board(tmp_path, monkeypatch, capsys):
    """A host that stops reading (a stalled, busy computer) loses output the virtual board's relay
    drops, as a Pico's USB does: vagal demo says so, and the session counts the loss."""
    from vagal_host.cli import main

    run = Streamer.run

    def stalled(self, *a, **kw):
        time.sleep(4)               # the board keeps talking; nobody reads
        return run(self, *a, **kw)

    monkeypatch.setattr(Streamer, "run", stalled)
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--duration", "300", "--speed", "100", "--raw", "--session", "f.vagal"]) == 0
    out = capsys.readouterr().out
    assert host_fell_behind(out), out
    s = read_session(str(tmp_path / "f.vagal"))
    assert s.lost > 0, out


def test_the_printed_next_step_runs_as_printed_in_a_shell_after_make_setup(tmp_path):
    """make setup installs .venv/bin/vagal and puts nothing on PATH: the summary's `next:` line must
    name the command the way that works in the shell it was typed in (issue 17, item 6)."""
    launcher = os.path.join(ROOT, ".venv", "bin", "vagal")
    if not os.path.isfile(launcher):
        pytest.skip("no .venv/bin/vagal: run make setup")
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if os.path.realpath(p) != os.path.realpath(os.path.dirname(launcher)))
    env.pop("VIRTUAL_ENV", None)
    session = str(tmp_path / "first run.vagal")
    r = subprocess.run(["bash", "-c", ".venv/bin/vagal demo --duration 20 --speed 40 --session %s"
                        % shlex.quote(session)], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    nxt = [ln for ln in r.stdout.splitlines() if ln.startswith("next: ")]
    assert nxt, r.stdout
    command = nxt[-1][len("next: "):].split(" (a page")[0]
    assert command.startswith(".venv/bin/vagal report "), command
    pasted = subprocess.run(["bash", "-c", command + " --out %s --quiet" % shlex.quote(str(tmp_path / "r"))],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert pasted.returncode == 0, pasted.stderr
    assert os.path.isfile(str(tmp_path / "r" / "index.html"))
