"""The virtual board's inputs end to end: a recording on the ADC (--recording/--column), scripted
button presses (--press), a reboot mid-session on the same settings file, and a simulated person who
breathes with the pacer light (or does not)."""

import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import serial

from test_virtual_board import _lines
from vagal import protocol
from vagal_host.virtual import VirtualBoard, person_spec

VAGAL = os.path.join(os.path.dirname(sys.executable), "vagal")


def _write_csv(path, hr_bpm, seconds=90, fs=250):
    """A clean synthetic PPG in ADC counts at hr_bpm, plus an unrelated column, with a header row."""
    rng = np.random.default_rng(1)  # sensor noise: a noiseless flat stretch looks like clipping
    with open(path, "w") as f:
        f.write("time,accel,ppg\n")
        for i in range(seconds * fs):
            t = i / fs
            u = (t * hr_bpm / 60.0) % 1.0
            wave = math.exp(-((u - 0.2) / 0.07) ** 2) + 0.35 * math.exp(-((u - 0.5) / 0.08) ** 2)
            code = int(1800 + 700 * wave + 60 * math.sin(0.3 * t) + rng.normal(0, 6))  # 12-bit ADC counts
            f.write("%.4f,%.3f,%d\n" % (t, math.sin(t), code))


def _beat_rate(lines, t_from_ms):
    beats = [int(p[2]) for p in lines if p[0] == b"beat" and int(p[2]) >= t_from_ms]
    assert len(beats) > 10, len(beats)
    return 60000.0 * (len(beats) - 1) / (beats[-1] - beats[0])


def test_recording_column_feeds_the_adc(tmp_path):
    csv_path = tmp_path / "rec.csv"
    _write_csv(csv_path, hr_bpm=84)
    proc = subprocess.Popen([VAGAL, "virtual-board", "--recording", str(csv_path), "--column", "ppg",
                             "--fs", "250", "--speed", "40", "--duration", "2400"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = proc.stdout.readline().strip()
        assert port.startswith("/dev/"), (port, proc.stderr.read() if proc.poll() is not None else "")
        lines = _lines(port, lambda p: p[0] == b"pacer" and int(p[2]) >= 80000, 40)
    finally:
        proc.terminate()
        proc.wait(10)
    assert abs(_beat_rate(lines, 20000) - 84) < 2


def test_recording_with_a_missing_column_is_a_clear_error(tmp_path):
    csv_path = tmp_path / "rec.csv"
    _write_csv(csv_path, hr_bpm=70, seconds=2)
    r = subprocess.run([VAGAL, "virtual-board", "--recording", str(csv_path), "--column", "spo2",
                        "--fs", "250", "--duration", "1"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "spo2" in r.stderr, r.stderr


@pytest.mark.parametrize("bad", ["x", "10,5", "3:0", "-1", "4:abc"])
def test_bad_press_schedule_is_refused(bad):
    r = subprocess.run([VAGAL, "virtual-board", "--press", bad, "--duration", "1"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--press" in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_short_presses_stop_and_start_the_session():
    from vagal_host.commands.virtual_board import parse_presses

    with VirtualBoard(speed="max", respawn=False, buttons=parse_presses("20,40")) as vb:
        lines = _lines(vb.port, _second_start, 40)
    sessions = [(p[3], p[4], int(p[2])) for p in lines if p[0] == b"session"]
    assert [s[:2] for s in sessions] == [(b"start", b"boot"), (b"stop", b"button"), (b"start", b"button")]
    # released at 20.2 s (virtual seconds since power-up; the boot session starts right away)
    assert 19500 <= sessions[1][2] <= 21500, sessions
    stopped = lines.index(next(p for p in lines if p[:1] == [b"session"] and p[3] == b"stop"))
    restarted = lines.index(next(p for p in lines if p[:1] == [b"session"] and p[3] == b"start"
                                 and p[4] == b"button"))
    assert not any(p[0] == b"pacer" for p in lines[stopped + 1:restarted])  # idle between


def _second_start(p):
    return p[0] == b"session" and p[3] == b"start" and p[4] == b"button"


def _parts(line):
    """[kind, seq, field, ...] of a valid device line, [] for a cut or corrupt one (at speed "max"
    the relay drops output a slow host does not take, as a Pico's USB CDC does)."""
    try:
        protocol.decode(line)
    except protocol.ProtocolError:
        return []
    return line.split(b"*")[0].split()


def _send(s, kind, rid, *args):
    s.write(protocol.encode_command(kind, rid, *args).encode())


def test_reboot_mid_session_keeps_settings_and_restarts_the_session(tmp_path):
    settings = tmp_path / "settings.json"
    with VirtualBoard(speed="max", settings_path=str(settings), respawn=True) as vb:
        s = serial.Serial(vb.port, timeout=0.2)
        try:
            _send(s, "set", 7, "rate_mbpm=5000")
            seen = []
            t0 = time.monotonic()
            while time.monotonic() - t0 < 20:
                parts = _parts(s.readline())
                if parts:
                    seen.append(parts)
                if parts[:1] == [b"ok"] and parts[2:3] == [b"7"]:
                    break
            assert [b"ok", b"7"] in [p[:3:2] for p in seen], seen[-5:]
            time.sleep(0.5)
            vb.proc.kill()  # power cut mid-session
            after = []
            t0 = time.monotonic()
            while time.monotonic() - t0 < 30:
                parts = _parts(s.readline())
                if parts and (after or parts[0] == b"hello"):
                    after.append(parts)
                if sum(1 for p in after if p[0] == b"pacer") >= 3:
                    break
        finally:
            s.close()
        assert vb.spawns == 2 and vb.exit_codes, (vb.spawns, vb.exit_codes)
    assert after and after[0][0] == b"hello" and after[0][1] == b"0", after[:3]
    assert [p[3:5] for p in after if p[0] == b"session"][:1] == [[b"start", b"boot"]]
    pacer = [p for p in after if p[0] == b"pacer"]
    assert pacer and all(p[3] == b"5000" for p in pacer), pacer[:3]  # no ramp from 6000: stored
    assert not any(p[0] == b"log" and p[2] == b"error" for p in after), after
    assert json.loads(settings.read_text())["rate_mbpm"] == 5000
    assert not os.path.exists(str(settings) + ".tmp")


def _breathing_peak_hz(lines, t_from_ms):
    """Frequency of the biggest heart-rate oscillation (0.04-0.4 Hz) in the beats after t_from_ms."""
    beats = np.array([int(p[2]) for p in lines if p[0] == b"beat" and int(p[2]) >= t_from_ms]) / 1000.0
    ibi = np.diff(beats)
    keep = np.abs(ibi - np.median(ibi)) < 0.3 * np.median(ibi)
    t, hr = beats[1:][keep], 60.0 / ibi[keep]
    grid = np.arange(t[0], t[-1], 0.25)
    x = np.interp(grid, t, hr)
    x = (x - x.mean()) * np.hanning(len(x))
    spec = np.abs(np.fft.rfft(x, 4096)) ** 2
    f = np.fft.rfftfreq(4096, 0.25)
    band = (f >= 0.04) & (f <= 0.4)
    return f[band][np.argmax(spec[band])]


@pytest.mark.parametrize("adherence, expect_hz", [(1.0, 0.1), (0.0, 0.25)])
def test_person_breathes_with_the_pacer_light_only_when_adherent(adherence, expect_hz):
    # pacer at 6/min (0.1 Hz); the person's own breathing 0.25 Hz; resonance between the two
    spec = person_spec(seed=4, hr=66, resonance=0.09, adherence=adherence, noise=0.003,
                       artefacts=0, ectopics=0, rsa=16, breath=0.25)
    with VirtualBoard(speed="max", respawn=False, person=spec) as vb:
        lines = _lines(vb.port, lambda p: p[0] == b"pacer" and int(p[2]) >= 190000, 40)
    peak = _breathing_peak_hz(lines, 40000)
    assert abs(peak - expect_hz) < 0.02, peak


def test_virtual_board_prints_its_port_first_then_how_to_connect():
    r = subprocess.run([VAGAL, "virtual-board", "--duration", "1"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0].startswith("/dev/") and " " not in out[0], out  # the path alone, for scripts
    assert any(line.startswith("next, in another terminal: vagal stream --port %s" % out[0]) for line in out), out


@pytest.mark.parametrize("args, name", [(["--fs", "100"], "--fs"), (["--column", "PPG"], "--column"),
                                        (["--adc-bits", "12"], "--adc-bits")])
def test_recording_options_without_a_recording_are_refused(args, name):
    r = subprocess.run([VAGAL, "virtual-board", "--duration", "1"] + args, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert ("%s needs --recording" % name) in r.stderr and r.stdout == "", r.stdout


def test_duration_counts_board_seconds_as_in_demo():
    """Issue 17 item 7: --duration is board time in both commands (S / N real seconds at --speed N)."""
    t0 = time.monotonic()
    r = subprocess.run([VAGAL, "virtual-board", "--speed", "20", "--duration", "40"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 15  # 40 board seconds at 20x: 2 s, not 40
    r = subprocess.run([VAGAL, "virtual-board", "--speed", "max", "--duration", "5"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "board seconds" in r.stderr and r.stderr.count("\n") == 1, r.stderr
