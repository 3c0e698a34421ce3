"""vagal stream against real pseudo-terminals whose writer is a child process, like a board on USB."""

import io
import math
import os
import pty
import re
import signal
import time
import tty

import pytest
from hypothesis import given, settings, strategies as st

from vagal import link, protocol
from vagal_host import stream as stream_mod
from vagal_host.cli import command_name
from vagal_host.errors import VagalError
from vagal_host.session import SessionWriter, read_session
from vagal_host.stream import LineSplitter, LiveState, Recorder, Streamer, render, resolve_port


HOST_HELLO = object()


class PtyWriter:
    """A child process owning a pty master: writes chunks, then exits. A chunk is bytes to write, a
    float to sleep, or HOST_HELLO to wait for the host's hello command (pyserial flushes the input
    when it opens a port, so a writer that starts before the host opens would lose its first lines).

    The slave is reachable through the symlink `link`, re-pointed for each new writer, as
    /dev/serial/by-id/... is for a real board that is unplugged and plugged in again.
    """

    def __init__(self, link, chunks, linger=False):
        master, slave = pty.openpty()
        tty.setraw(slave)  # no echo or CR/NL mapping: bytes pass exactly
        tmp = link + ".new"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, link)
        self.slave = slave  # kept open so the pty exists until the reader has opened it
        pid = os.fork()
        if pid == 0:  # child: write, then exit (closing the master = unplugging the board)
            try:
                os.close(slave)
                for c in chunks:
                    if c is HOST_HELLO:  # like the firmware: answer once the host has asked
                        got = b""
                        while b"hello" not in got:
                            got += os.read(master, 100)
                    elif isinstance(c, float):
                        time.sleep(c)
                    else:
                        os.write(master, c)
                while linger:
                    time.sleep(0.05)
            finally:
                os._exit(0)
        os.close(master)
        self.pid = pid

    def wait(self):
        if self.pid is not None:
            os.waitpid(self.pid, 0)
            os.close(self.slave)
            self.pid = None

    def kill(self):
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
        self.wait()


def lines(start_seq, specs):
    """Encoded lines from (kind, values...) specs with consecutive sequence numbers."""
    return [protocol.encode(spec[0], start_seq + i, *spec[1:]).encode() for i, spec in enumerate(specs)]


def corrupt(line):
    """Flip one digit of a line but keep its old checksum."""
    i = line.index(b" ", line.index(b" ") + 1) + 1
    return line[:i] + (b"8" if line[i:i + 1] != b"8" else b"7") + line[i + 1:]


BOARD1 = [("hello", "0.1.0", 1, 250, "virtual", "-"), ("session", 0, "start", "boot"),
          ("pacer", 0, 6000, 0, "in", 0), ("quality", 10, "ok"),
          ("beat", 900, 0, 1000, 80), ("beat", 1900, 1000000, 1000, 90),
          ("beat", 2900, 1000000, 1000, 90), ("hrv", 3000, 600, 20000, 25000, 2),
          ("beat", 3850, 950000, 1000, 90), ("pacer", 4000, 6000, 6710886, "out", 30000),
          ("log", "info", "hello from board 1")]
BOARD2 = [("hello", "0.1.0", 1, 250, "virtual", "-"), ("beat", 500, 0, 900, 70),
          ("beat", 1500, 1000000, 900, 90), ("beat", 2500, 1000000, 900, 90)]


def test_disconnect_and_reconnect_to_a_new_writer_counts_lost_and_corrupt(tmp_path):
    link = str(tmp_path / "ttyVAGAL")
    l1 = lines(0, BOARD1)
    # line 5 corrupted, lines 7 and 8 never sent (a gap of 2), then an unterminated tail as the
    # board is unplugged mid-line (after a pause: closing a pty master discards unread data)
    sent1 = l1[:5] + [corrupt(l1[5])] + l1[6:7] + l1[9:]
    w1 = PtyWriter(link, [HOST_HELLO] + sent1 + [b"beat 99 12", 0.3], linger=False)
    session = str(tmp_path / "s.vagal")
    streamer = Streamer(link, session, err=io.StringIO())
    writers = [w1]

    def stop(s):
        if not s.state.connected and len(writers) == 1:
            w1.wait()
            writers.append(PtyWriter(link, [HOST_HELLO] + lines(0, BOARD2) + [0.2], linger=True))
        return len(writers) == 2 and s.state.connected and s.state.beat_count >= 2 + 3

    try:
        streamer.run(duration=10, stop=stop)
    finally:
        for w in writers[1:]:
            w.kill()
    received, lost, corrupt_n, partial = streamer.counts()
    assert streamer.state.reconnections == 1
    assert lost == 2  # seq 7 and 8; the corrupt line (seq 5) arrived, so it is corrupt, not lost
    assert corrupt_n == 1
    assert partial == 1  # the unterminated "beat 99 12"
    assert received == len(sent1) - 1 + len(BOARD2)
    assert streamer.state.beat_count == 2 + 3
    assert "1 reconnection" in streamer.summary()

    s = read_session(session)
    assert (s.received, s.lost, s.corrupt, s.partial) == (received, lost, corrupt_n, partial)
    assert [e.name for e in s.events if e.name in ("connected", "disconnected", "reconnected")] == [
        "connected", "disconnected", "reconnected"]
    assert [b.t_ms for b in s.beats] == [900, 2900, 500, 1500, 2500]
    # every line the boards sent is in the file, byte for byte
    got = [r.line for r in s.lines]
    assert got == [x.rstrip(b"\n") for x in sent1] + [b"beat 99 12"] + [x.rstrip(b"\n") for x in lines(0, BOARD2)]
    assert s.logs[0].text == "hello from board 1"


def test_stream_ends_at_duration_and_session_has_counts_event(tmp_path):
    link = str(tmp_path / "tty")
    w = PtyWriter(link, [HOST_HELLO] + lines(0, BOARD1), linger=True)
    session = str(tmp_path / "d.vagal")
    try:
        st_ = Streamer(link, session, err=io.StringIO())
        t0 = time.monotonic()
        st_.run(duration=0.6)
        assert 0.55 < time.monotonic() - t0 < 3
    finally:
        w.kill()
    s = read_session(session)
    assert s.received == len(BOARD1) and s.lost == 0 and s.corrupt == 0
    assert s.events[-1].name == "end"
    assert s.events[-2].detail == "received=%d lost=0 corrupt=0 partial=0" % len(BOARD1)


def test_session_file_is_flushed_while_streaming(tmp_path):
    """A crash loses at most the last second: lines appear in the file within a second."""
    link = str(tmp_path / "tty")
    w = PtyWriter(link, [HOST_HELLO] + lines(0, BOARD1[:3]), linger=True)
    session = str(tmp_path / "f.vagal")
    try:
        st_ = Streamer(link, session, err=io.StringIO())
        seen = []  # (session seconds, file content) while the stream is still open

        def snapshot(s):
            seen.append((s.elapsed(), open(session, "rb").read()))
            return s.elapsed() > 1.5

        st_.run(stop=snapshot)
    finally:
        w.kill()
    on_disk = [t for t, data in seen if b"pacer 2 0 6000" in data]
    received_at = read_session(session).pacer[0].host_t
    assert on_disk, "never flushed while streaming"
    assert on_disk[0] - received_at <= 1.0
    # the check can fail: the line was received a while before it reached the file
    assert any(t >= received_at and b"pacer 2" not in data for t, data in seen)


def test_port_errors(tmp_path, monkeypatch):
    with pytest.raises(VagalError, match="does not exist"):
        resolve_port(str(tmp_path / "nope"))

    class P:
        def __init__(self, device, vid):
            self.device, self.vid, self.serial_number, self.description = device, vid, "E66", "Board"

    ports = []
    monkeypatch.setattr(stream_mod.serial.tools.list_ports, "comports", lambda: ports)
    with pytest.raises(VagalError, match=r"no Pico found .*`vagal virtual-board` prints one"):
        resolve_port("auto")
    ports[:] = [P("/dev/ttyACM1", 0x2E8A), P("/dev/ttyUSB0", 0x1234), P("/dev/ttyACM0", 0x2E8A)]
    with pytest.raises(VagalError, match=r"2 Picos found: /dev/ttyACM0 .*/dev/ttyACM1"):
        resolve_port("auto")
    ports[:] = ports[:2]
    assert resolve_port("auto") == "/dev/ttyACM1"


def test_existing_session_file_is_not_overwritten(tmp_path):
    link = str(tmp_path / "tty")
    w = PtyWriter(link, [], linger=True)
    session = tmp_path / "keep.vagal"
    session.write_text("precious")
    try:
        with pytest.raises(VagalError, match="already exists"):
            Streamer(link, str(session), err=io.StringIO())
    finally:
        w.kill()
    assert session.read_text() == "precious"


def test_headless_status_lines(tmp_path):
    link = str(tmp_path / "tty")
    w = PtyWriter(link, [HOST_HELLO] + lines(0, BOARD1), linger=True)
    err = io.StringIO()
    try:
        st_ = Streamer(link, str(tmp_path / "h.vagal"), err=err)
        st_.run(duration=0.7, view="headless", status_every=0.3)
    finally:
        w.kill()
    status = [x for x in err.getvalue().splitlines() if "HR" in x]
    assert len(status) >= 1
    assert "HR 60.0" in status[-1] and "beats 4" in status[-1] and "lost 0" in status[-1]


def _state_with_data():
    state = LiveState()
    for line in lines(0, BOARD1):
        state.update(protocol.decode(line))
    return state


def test_live_view_renders_heart_rate_beats_pacer_and_counts():
    from rich.console import Console

    state = _state_with_data()
    state.port = "/dev/ttyACM0"
    state.connected = True
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(render(state, (11, 2, 1, 0), 75.0, "s.vagal"))
    text = out.getvalue()
    assert "60.0 bpm" in text  # hrv hr_x10 600
    assert "Breathe" in text and "6.0 /min" in text
    assert "lost 2" in text and "corrupt 1" in text
    assert "950 ms" in text and "63.2 bpm" in text  # the last beat
    assert "0:01:15" in text and "connected" in text
    assert "hello from board 1" in text


def test_breathing_bar_follows_pacer_phase():
    now = [100.0]
    state = LiveState(clock=lambda: now[0])
    state.update(protocol.decode(protocol.encode("pacer", 0, 0, 6000, 0, "in", 0)))
    fills = []
    for _ in range(11):  # one 10 s breath at 6/min, 1 s steps
        fills.append(state.breath())
        now[0] += 1.0
    assert fills[0] == (0.0, True)
    assert fills[2][1] and fills[6][1] is False  # inhale 40 % by default
    assert abs(fills[4][0] - 1.0) < 0.03  # top of the breath at the turn
    assert fills[1][0] < fills[2][0] < fills[3][0]
    assert fills[5][0] > fills[7][0] > fills[9][0]
    assert fills[10][0] < 0.01


def _split_in_chunks(data, size, maxlen):
    sp = LineSplitter(maxlen)
    out = []
    for i in range(0, len(data), size):
        out += sp.feed(data[i:i + size])
    return out, sp.take_pending()


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000), st.integers(1, 64))
def test_splitter_reassembles_lines_across_chunks(data, size):
    data = data.replace(b"\n", b"\n" * 1)  # any bytes; lines end at "\n"
    parts = data.split(b"\n")
    short = all(len(p) <= 4096 for p in parts)
    out, tail = _split_in_chunks(data, size, 4096)
    if short:
        assert out == [p for p in parts[:-1] if p and p != b"\r"]
        assert tail == parts[-1]
    overlong = [len(p) for p in parts[:-1] if len(p) > 300]
    out, tail = _split_in_chunks(data, size, 300)
    assert [x for x in out if isinstance(x, int)] == overlong
    assert [x for x in out if isinstance(x, bytes)] == [p for p in parts[:-1] if 0 < len(p) <= 300 and p != b"\r"]
    assert tail == (len(parts[-1]) if len(parts[-1]) > 300 else parts[-1])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=300), st.sampled_from(lines(0, BOARD1))), max_size=20),
       st.integers(1, 64))
def test_fuzz_random_bytes_never_crash_and_are_counted(tmp_path_factory, chunks, chunk_size):
    """Random bytes through the host's line handling: nothing raises, every line is accounted for
    (received, corrupt, partial or overlong) and the session file reads back to the same counts."""
    data = b"".join(chunks)
    path = str(tmp_path_factory.mktemp("fuzz") / "z.vagal")
    writer = SessionWriter(path, "fuzz", "0", extra={})
    state = LiveState()
    rec = Recorder(writer, state)
    rec.splitter.maxlen = 256  # reach the overlong path with short inputs
    writer.event("connected", "fuzz")
    for i in range(0, len(data), chunk_size):
        rec.feed(data[i:i + chunk_size])
    rec.cut()
    writer.close()
    render(state, writer.counter.totals(), 1.0, path)  # the view copes with whatever arrived
    received, lost, corrupt_n, partial = writer.counter.totals()
    out, tail = _split_in_chunks(data, chunk_size, 256)
    good = [x for x in out if isinstance(x, bytes) and link.LinkStats().accept(x.rstrip(b"\r"))]
    overlong = len([x for x in out if isinstance(x, int)]) + isinstance(tail, int)
    n_lines = len([x for x in out if isinstance(x, bytes)])
    assert received == len(good)
    assert received + corrupt_n + partial == n_lines + overlong + (1 if isinstance(tail, bytes) and tail else 0)
    s = read_session(path)
    assert (s.received, s.lost, s.corrupt, s.partial) == (received, lost, corrupt_n, partial)
    assert [r.line for r in s.lines if r.error != "cut by disconnect"] == [
        x[:-1] if x.endswith(b"\r") else x for x in out if isinstance(x, bytes)]


def test_cli_live_view_in_a_terminal(tmp_path):
    """`vagal stream` as a user runs it: stdout is a terminal (a pty), so rich draws the Live view."""
    import subprocess
    import sys

    link = str(tmp_path / "tty")
    w = PtyWriter(link, [HOST_HELLO] + lines(0, BOARD1), linger=True)
    term_master, term_slave = pty.openpty()
    env = dict(os.environ, COLUMNS="100", LINES="40", TERM="xterm-256color")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vagal_host.cli", "stream", "--port", link, "--duration", "1.5",
             "--session", str(tmp_path / "cli.vagal")],
            stdin=term_slave, stdout=term_slave, stderr=term_slave, env=env, cwd=str(tmp_path))
        os.close(term_slave)
        out = b""
        while True:
            try:
                chunk = os.read(term_master, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            out += chunk
        assert proc.wait(timeout=20) == 0
    finally:
        w.kill()
        os.close(term_master)
    text = out.decode("utf-8", "replace")
    assert "vagal stream" in text and "Heart rate" in text and "Breathe" in text
    assert "\x1b[" in text  # drawn with terminal control sequences, not plain prints
    assert "60.0 bpm" in text
    assert "session: " in text and "4 beats" in text and "session file: " in text
    assert re.search(r"next: \S*vagal report ", text)  # what to do with the file (the launcher's path)


def test_headless_cli_ends_cleanly_on_sigterm(tmp_path):
    """Scripts stop `vagal stream --headless` with kill: the session is closed and summarised."""
    import subprocess
    import sys

    link = str(tmp_path / "tty")
    w = PtyWriter(link, [HOST_HELLO] + lines(0, BOARD1), linger=True)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vagal_host.cli", "stream", "--port", link, "--headless",
             "--session", "k.vagal"], cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        session = tmp_path / "k.vagal"
        deadline = time.monotonic() + 20
        while not (session.exists() and b"log 10 " in session.read_bytes()):  # all lines on disk
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    finally:
        w.kill()
    assert proc.returncode == 0, err
    assert "4 beats" in out and "session file: k.vagal" in out
    s = read_session(str(tmp_path / "k.vagal"))
    assert s.events[-1].name == "end" and s.received == len(BOARD1)


def test_auto_port_redetects_a_board_that_comes_back_on_another_path(tmp_path, monkeypatch):
    """--port auto: after an unplug the USB search runs again, and the board may be a new ttyACM."""

    class Port:
        def __init__(self, device):
            self.device, self.vid, self.serial_number, self.description = device, 0x2E8A, "E661", "Pico"

    ports = []
    monkeypatch.setattr(stream_mod.serial.tools.list_ports, "comports", lambda: list(ports))
    acm0, acm1 = str(tmp_path / "ttyACM0"), str(tmp_path / "ttyACM1")
    w1 = PtyWriter(acm0, [HOST_HELLO] + lines(0, BOARD1[:5]) + [0.3])
    ports.append(Port(acm0))
    streamer = Streamer("auto", str(tmp_path / "auto.vagal"), err=io.StringIO())
    assert streamer.path == acm0
    writers = [w1]

    def stop(s):
        if not s.state.connected and len(writers) == 1:
            ports.clear()  # unplugged: nothing found for a while
            w1.wait()
            if s.elapsed() > 1.0:
                writers.append(PtyWriter(acm1, [HOST_HELLO] + lines(0, BOARD2), linger=True))
                ports.append(Port(acm1))
        return s.state.connected and s.path == acm1 and s.state.beat_count >= 1 + 3

    try:
        streamer.run(duration=10, stop=stop)
    finally:
        for w in writers[1:]:
            w.kill()
    assert streamer.path == acm1 and streamer.state.reconnections == 1
    s = read_session(str(tmp_path / "auto.vagal"))
    assert [(e.name, e.detail) for e in s.events if e.name.endswith("connected") and e.name != "disconnected"] == [
        ("connected", acm0), ("reconnected", acm1)]
    assert s.received == 5 + len(BOARD2) and s.lost == 0 and s.corrupt == 0


def _board_pty():
    """A pty whose master the test plays the board on; -> (master fd, slave path)."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    return master, slave, os.ttyname(slave)


def _read_commands(master, want, timeout_s=5.0):
    got = b""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s and got.count(b"\n") < want:
        try:
            got += os.read(master, 1000)
        except BlockingIOError:
            time.sleep(0.02)
    return [protocol.decode_command(x) for x in got.split(b"\n") if x]


def test_stream_tells_the_board_the_date_and_tolerates_old_firmware(tmp_path):
    import datetime

    master, slave, path = _board_pty()
    os.set_blocking(master, False)
    try:
        st = Streamer(path, str(tmp_path / "d.vagal"), err=io.StringIO())
        cmds = _read_commands(master, 3)
        assert [c.kind for c in cmds] == ["hello", "date", "status"]
        assert cmds[1]["day"] == datetime.date.today().isoformat()
        date_id = cmds[1].seq
        # firmware from before the date command: an err for it, nothing else wrong
        old = lines(0, [("hello", "0.0.9", 1, 250, "pico", "-"), ("err", date_id, "unknown command 'date'"),
                        ("err", 99, "something else failed")])
        os.write(master, b"".join(old))
        t0 = time.monotonic()
        while len(st.state.logs) < 1 and time.monotonic() - t0 < 3:
            st.poll()
        assert list(st.state.logs) == ["error: something else failed"]
        assert st.state.firmware == "0.0.9"
        rid = st.command("mode", "practice")
        assert _read_commands(master, 1)[0].kind == "mode" and rid != date_id
        st.close()
    finally:
        os.close(master)
        os.close(slave)


def test_live_view_and_status_show_mode_breath_swing_and_coherence():
    from rich.console import Console

    state = _state_with_data()
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(render(state, (11, 0, 0, 0), 5.0, "s.vagal"))
    assert "Coherence" not in out.getvalue()  # older firmware: no empty rows
    for spec in [("mode", 100, "practice", "host"), ("breath", 10000, 1, 123, 110, -12, 650, 5500),
                 ("coherence", 10500, 245, 92)]:
        state.update(protocol.decode(protocol.encode(spec[0], 50, *spec[1:])))
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(render(state, (14, 0, 0, 0), 15.0, "s.vagal"))
    text = out.getvalue()
    assert "practice" in text and "12.3 bpm" in text and "71% in one wave" in text
    line = stream_mod.status_line(state, (14, 0, 0, 0), 15.0)
    assert "mode practice" in line and "swing 12.3 bpm" in line and "coherence 71% in one wave" in line  # 2.45 / 3.45
    state.update(protocol.decode(protocol.encode("breath", 51, 20000, 0, 0, 0, 0, 0, 5500)))
    state.update(protocol.decode(protocol.encode("coherence", 52, 20500, -1, 0)))
    line = stream_mod.status_line(state, (16, 0, 0, 0), 25.0)
    assert "not judged" in line and "coherence (settling)" in line


def test_live_view_shows_the_assessment_in_the_report_s_words():
    # issue 15: the live view showed nothing of an assessment; now each step's swing level (the
    # tallest bold) and the result sentence of vagal_host.assessment_text, as the report
    from rich.console import Console

    from vagal_host.assessment_text import result_text

    state = _state_with_data()
    for i, (rate, level) in enumerate(((6500, 80), (6000, 101), (5500, 95))):
        state.update(protocol.decode(protocol.encode("assess_step", 60 + i, 120000 * (i + 1), rate, 9, level + 5,
                                                     level, -10, 150, level, 6)))
    state.update(protocol.decode(protocol.encode("assess_result", 70, 370000, "done", 5850, 6000, "-",
                                                 "curve", 110, -35)))
    out = io.StringIO()
    Console(file=out, width=400, color_system=None).print(render(state, (14, 0, 0, 0), 15.0, "s.vagal"))
    text = " ".join(out.getvalue().split())
    assert "6.50: 8.0" in text and "6.00: 10.1" in text and "5.50: 9.5" in text
    sentence = " ".join(result_text(state.assess_result).split())
    assert sentence.startswith("Your resonance rate: 5.85 breaths per minute (+-0.11)")
    assert "tallest bar is at 6.00" in sentence
    assert sentence[:60] in text


def test_summary_says_what_to_do_next_and_a_piped_live_view_ends_its_line(tmp_path, monkeypatch):
    """With stdout a pipe (`vagal demo --live | tee`), the last frame must not run into the summary."""
    import sys

    link = str(tmp_path / "tty")
    w = PtyWriter(link, [HOST_HELLO] + lines(0, BOARD1), linger=True)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    try:
        st_ = Streamer(link, str(tmp_path / "my run.vagal"), err=io.StringIO())
        st_.run(duration=0.5, view="live")
    finally:
        w.kill()
    assert out.getvalue().endswith("\n"), out.getvalue()[-100:]
    summary = st_.summary().splitlines()
    assert summary[-1].startswith("next: %s report '%s'" % (command_name(), tmp_path / "my run.vagal"))


def test_a_folder_or_a_plain_file_as_port_is_named_as_not_a_serial_port(tmp_path):
    with pytest.raises(VagalError, match="is a folder, not a serial port"):
        Streamer(str(tmp_path), str(tmp_path / "a.vagal"), err=io.StringIO())
    plain = tmp_path / "notes.txt"
    plain.write_text("x")
    with pytest.raises(VagalError, match="notes.txt is not a serial port"):
        Streamer(str(plain), str(tmp_path / "b.vagal"), err=io.StringIO())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # no session file left behind


def test_status_answer_fills_in_the_mode_of_a_session_already_running():
    state = LiveState()
    state.update(protocol.decode(protocol.encode("status", 7, 125000, 1, "practice", "ok", 5500, 640, 0)))
    assert state.mode == "practice" and state.quality == "ok" and state.session_state == "start"
    out = io.StringIO()
    from rich.console import Console

    Console(file=out, width=100, color_system=None).print(render(state, (1, 0, 0, 0), 1.0, "s.vagal"))
    assert "practice" in out.getvalue()


@pytest.mark.parametrize("answer, warned", [
    ([b"hello 1*ABCD\r\n", b"Traceback (most recent call last):\r\n",
      b"NameError: name 'hello' isn't defined\r\n", b">>> "], True),  # a board at the REPL
    (lines(0, BOARD1), False),  # the app
])
def test_a_board_without_the_app_is_pointed_to_vagal_deploy(tmp_path, monkeypatch, answer, warned):
    monkeypatch.setattr(stream_mod, "NO_APP_S", 0.4)
    link = str(tmp_path / "tty")
    w = PtyWriter(link, [HOST_HELLO] + answer, linger=True)
    err = io.StringIO()
    try:
        st_ = Streamer(link, str(tmp_path / "r.vagal"), err=err)
        st_.run(duration=1.0, view="headless", status_every=5)
    finally:
        w.kill()
    said = "no valid vagal line from %s in 0.4 s: is the vagal app running on it? (`vagal deploy`" % link
    assert (said in err.getvalue()) == warned, err.getvalue()
    assert any("vagal deploy" in x for x in st_.state.logs) == warned  # the live view's Log row


def test_the_app_check_can_be_off_for_the_virtual_board(tmp_path, monkeypatch):
    monkeypatch.setattr(stream_mod, "NO_APP_S", 0.2)
    link = str(tmp_path / "tty")
    w = PtyWriter(link, [HOST_HELLO, b">>> "], linger=True)
    err = io.StringIO()
    try:
        st_ = Streamer(link, str(tmp_path / "v.vagal"), err=err, app_check=False)
        st_.run(duration=0.6, view="headless", status_every=5)
    finally:
        w.kill()
    assert "vagal deploy" not in err.getvalue()


def test_samples_the_board_lost_are_in_the_summary_across_its_restarts(tmp_path):
    stats = [("stats", 5000, 0, 800, 9000, 20000, 0, 0), ("stats", 10000, 120, 900, 9000, 20000, 0, 0),
             ("stats", 15000, 300, 900, 9000, 20000, 0, 0)]
    after_reset = [("hello", "0.1.0", 1, 250, "virtual", "-"), ("stats", 5000, 40, 900, 9000, 20000, 0, 0)]
    link = str(tmp_path / "tty")
    w = PtyWriter(link, [HOST_HELLO] + lines(0, BOARD1 + stats) + lines(0, after_reset), linger=True)
    try:
        st_ = Streamer(link, str(tmp_path / "l.vagal"), err=io.StringIO())
        st_.run(duration=0.8)
    finally:
        w.kill()
    assert st_.state.board_lost == 340
    assert "board: 340 samples lost to overrun" in st_.summary()


def test_no_lost_samples_no_board_line():
    state = LiveState()
    state.update(protocol.decode(protocol.encode("stats", 1, 5000, 0, 800, 9000, 20000, 0, 0)))
    assert state.board_lost == 0


def test_a_port_held_by_another_stream_is_named_as_busy(tmp_path):
    link = str(tmp_path / "tty")
    w = PtyWriter(link, [HOST_HELLO] + lines(0, BOARD1), linger=True)
    try:
        first = Streamer(link, str(tmp_path / "one.vagal"), err=io.StringIO())
        try:
            with pytest.raises(VagalError, match="is in use by another program"):
                Streamer(link, str(tmp_path / "two.vagal"), err=io.StringIO())
        finally:
            first.close()
    finally:
        w.kill()
    assert not (tmp_path / "two.vagal").exists()


def test_live_view_shows_the_sensor_signal_keys_steer_the_board_and_outliers_keep_the_scale(tmp_path):
    """Issue 17 item 5: --signal asks the board for raw samples (off again at the end) and the view
    draws them with the pulse size; + / - and m send the pace rate and the next mode; one outlier
    does not flatten the HR trend; a beat without an interval mid-session reads 'after a gap'."""
    from rich.console import Console

    master, slave, path = _board_pty()
    os.set_blocking(master, False)
    try:
        st = Streamer(path, str(tmp_path / "k.vagal"), err=io.StringIO(), signal=True)
        cmds = _read_commands(master, 4)
        assert [c.kind for c in cmds] == ["hello", "date", "status", "raw"] and cmds[3]["state"] == "on"
        st.state.update(protocol.decode(lines(0, [("mode", 100, "practice", "host")])[0]))
        st.state.rate_mbpm = 5500
        assert "5.6 breaths/min" in st.key("+") and "m changes mode" in st.key("+")
        assert st.key("-").startswith("pace rate 5.6")
        assert st.key("m") == "mode assess" and st.key("x") is None
        sent = _read_commands(master, 4)
        assert [(c.kind, c.values[0]) for c in sent] == [("set", "rate_mbpm=5600"), ("set", "rate_mbpm=5700"),
                                                       ("set", "rate_mbpm=5600"), ("mode", "assess")]
        st.close()
        assert _read_commands(master, 1)[-1].kind == "raw"  # raw off on the way out
    finally:
        os.close(master)
        os.close(slave)
    state = _state_with_data()
    x = [30000 + int(8000 * math.sin(2 * math.pi * k / 250.0)) for k in range(1000)]
    for k in range(0, 1000, 10):
        state.update(protocol.decode(lines(0, [("raw", k * 4, 250, x[k:k + 10])])[0]))
    state.update(protocol.decode(lines(0, [("beat", 99000, 0, 7000, 80)])[0]))  # after a lost pulse
    out = io.StringIO()
    Console(file=out, width=120, color_system=None).print(render(state, (1, 0, 0, 0), 5.0, "s.vagal"))
    text = out.getvalue()
    assert "Sensor" in text and "range 22001..37999" in text and "pulse 7000" in text
    assert "after a gap" in text and "+/- pace rate" in text
    trend = stream_mod._sparkline([60.0 + (k % 5) for k in range(40)] + [190.0])
    assert len(set(trend[:40])) >= 4  # the wave still spans the scale; 190 sits on the top
