"""Issue 13, items 5-7: the virtual board checks its arguments like `vagal demo`, its relay never
blocks in either direction (a flood of command lines is dropped and counted, the board answers again
at once), and no MicroPython process outlives `vagal virtual-board` on SIGTERM, SIGINT or SIGHUP."""

import os
import signal
import subprocess
import sys
import time

import pytest
import serial

from vagal import protocol
from vagal_host.virtual import VirtualBoard

VAGAL = os.path.join(os.path.dirname(sys.executable), "vagal")


@pytest.mark.parametrize("args, words", [
    (["--speed", "nan"], "--speed must be a number > 0, not 'nan'"),
    (["--speed", "inf"], "--speed must be a number > 0"),
    (["--speed", "0"], "--speed must be a number > 0"),
    (["--duration", "-1"], "--duration must be a number > 0, not '-1'"),
    (["--duration", "nan"], "--duration must be a number > 0, not 'nan'"),
])
def test_bad_speed_and_duration_are_refused_like_demo(args, words):
    r = subprocess.run([VAGAL, "virtual-board"] + args, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and words in r.stderr, r.stderr
    assert r.stdout == ""  # refused before any board was started
    with pytest.raises(Exception, match="--speed must be a number > 0"):
        VirtualBoard(speed=float("nan"))


def _ping_until_answered(ser, rid, limit_s):
    """Seconds until `ok` for ping `rid` (sent every 0.2 s) comes back, or None after limit_s."""
    t0 = time.monotonic()
    got = b""
    next_ping = 0.0
    want = b" %d pong*" % rid
    while time.monotonic() - t0 < limit_s:
        if time.monotonic() >= next_ping:
            ser.write(protocol.encode_command("ping", rid).encode())
            next_ping = time.monotonic() + 0.2
        got += ser.read(65536)
        if want in got:
            return time.monotonic() - t0
    return None


def _flood(lines_total, seconds, ser):
    """lines_total `ping` lines, all at once (seconds 0) or spread evenly over `seconds`."""
    t0 = time.monotonic()
    sent = 0
    chunk = lines_total if not seconds else max(1, lines_total // (seconds * 20))
    while sent < lines_total:
        n = min(chunk, lines_total - sent)
        ser.write(b"".join(b"ping %d\n" % ((sent + k) % 60000 + 1) for k in range(n)))
        sent += n
        ser.read(65536)  # the host reads its answers meanwhile, as vagal stream would
        if seconds:
            time.sleep(max(0.0, t0 + seconds * sent / lines_total - time.monotonic()))


def _flooded_board_answers(lines_total, seconds):
    with VirtualBoard(speed=1) as board:
        ser = serial.Serial(board.port, timeout=0.05, write_timeout=30)
        try:
            assert _ping_until_answered(ser, 60001, 20) is not None  # up and answering
            _flood(lines_total, seconds, ser)
            after = _ping_until_answered(ser, 60002, 10)
            dropped = board.dropped_input_lines
        finally:
            ser.close()
        assert board.proc.poll() is None  # alive, not respawned
    return after, dropped


def test_ten_thousand_lines_at_once_leave_the_board_answering():
    """It used to wedge for good: the relay's blocking write into the firmware's tty stopped it
    draining the firmware's replies, and the firmware, blocked writing them, stopped reading."""
    after, dropped = _flooded_board_answers(10000, 0)
    assert after is not None and after < 2.0, after
    assert 0 < dropped < 10000


@pytest.mark.skipif(not os.environ.get("VAGAL_LONG_TESTS"), reason="a minute long: make fuzz runs it")
def test_a_hundred_thousand_lines_over_a_minute_leave_the_board_answering():
    after, dropped = _flooded_board_answers(100000, 60)
    assert after is not None and after < 2.0, after
    assert dropped < 100000


def test_virtual_board_says_how_many_lines_it_dropped():
    p = subprocess.Popen([VAGAL, "virtual-board", "--duration", "6"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        port = p.stdout.readline().strip()
        with serial.Serial(port, timeout=0.05, write_timeout=30) as ser:
            _flood(10000, 0, ser)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    said = [x for x in out.splitlines() if "dropped" in x]
    assert said and "command lines" in said[-1], out


def _children(pid):
    """Process ids whose parent is pid (from /proc)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(name))
    return out


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_no_micropython_process_outlives_the_command(sig):
    p = subprocess.Popen([VAGAL, "virtual-board"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().startswith("/dev/")
        kids = _children(p.pid)
        assert kids, "no MicroPython process found"
        p.send_signal(sig)
        p.wait(timeout=15)
        t0 = time.monotonic()
        while any(_alive(k) for k in kids) and time.monotonic() - t0 < 5:
            time.sleep(0.1)
        left = [k for k in kids if _alive(k)]
    finally:
        if p.poll() is None:
            p.kill()
    for k in left:
        os.kill(k, signal.SIGKILL)
    assert not left, "still running after %s: %s" % (sig.name, left)
    assert p.returncode == 0
