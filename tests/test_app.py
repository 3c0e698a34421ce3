"""The application on CPython with a fake board: fake clock, synthetic pulse, captured serial link."""

import asyncio
import json
import math
import os

import pytest

from vagal import app as app_mod
from vagal import pacer as pacer_mod
from vagal import protocol as P
from vagal import settings as S
from vagal.ticks import TICKS_MAX, ticks_add


class FakeBoard:
    """The Board contract with a clock the test advances and a PPG of a steady heart rate."""

    fs = 250
    board_id = "fake"

    def __init__(self, settings_path, start_us=0, hr_bpm=72.0):
        self.settings_path = settings_path
        self.now_us = start_us  # unwrapped; ticks_* wrap it
        self.hr_bpm = hr_bpm
        self.lost_samples = 0
        self.started = False
        self.fed = 0
        self.led = []
        self.motor = []
        self.out = bytearray()
        self.rx = bytearray()
        self.events = []
        self.contact = True
        self._next_sample_us = start_us
        self._noise = 1

    # clock
    def ticks_us(self):
        return self.now_us & TICKS_MAX

    def ticks_ms(self):
        return (self.now_us // 1000) & TICKS_MAX

    def advance(self, us):
        self.now_us += us

    def start(self):
        self.started = True

    def ppg(self, t_s):
        if not self.contact:
            return 0
        u = (t_s * self.hr_bpm / 60.0) % 1.0
        wave = math.exp(-((u - 0.2) / 0.07) ** 2) + 0.35 * math.exp(-((u - 0.5) / 0.08) ** 2)
        self._noise = (self._noise * 1103515245 + 12345) & 0x7FFFFFFF
        noise = (self._noise >> 16) % 161 - 80  # real sensors are never flat
        return int(30000 + 9000 * wave + 400 * math.sin(2 * math.pi * 0.1 * t_s)) + noise

    def read(self, xbuf, tbuf):
        n = 0
        period = 1000000 // self.fs
        while n < len(xbuf) and self._next_sample_us <= self.now_us:
            t = self._next_sample_us
            xbuf[n] = self.ppg(t / 1e6)
            tbuf[n] = t & TICKS_MAX
            self._next_sample_us += period
            n += 1
        return n

    def set_led(self, level):
        self.led.append(level)

    def set_motor(self, level):
        self.motor.append(level)

    def button(self):
        return self.events.pop(0) if self.events else 0

    def feed(self):
        self.fed += 1

    def serial_read(self, buf):
        n = min(len(buf), len(self.rx))
        buf[:n] = self.rx[:n]
        del self.rx[:n]
        return n

    def serial_write(self, data, n=-1):
        self.out += data.encode() if isinstance(data, str) else bytes(data[:n] if n >= 0 else data)

    # helpers
    def send(self, data):
        self.rx += data.encode() if isinstance(data, str) else data

    def messages(self):
        """Every line written so far, decoded (asserting each one is valid)."""
        lines = bytes(self.out).split(b"\n")
        assert lines[-1] == b""
        return [P.decode(line) for line in lines[:-1]]


def run_for(app, board, seconds, step_us=10000):
    for _ in range(int(seconds * 1e6 // step_us)):
        board.advance(step_us)
        app.step()


def new_app(tmp_path, **kw):
    board = FakeBoard(str(tmp_path / "settings.json"), **kw)
    app = app_mod.App(board)
    app.begin()
    return app, board


def replies(board, rid):
    return [m for m in board.messages() if m.kind in ("ok", "err") and m["id"] == rid]


def test_hello_comes_first_and_the_stream_is_clean(tmp_path):
    app, board = new_app(tmp_path)
    run_for(app, board, 3)
    msgs = board.messages()
    assert msgs[0].kind == "hello" and msgs[0].seq == 0
    assert msgs[0]["proto"] == P.PROTOCOL_VERSION and msgs[0]["fs"] == 250
    assert msgs[0]["board"] == "fake"
    assert [m.seq for m in msgs] == list(range(len(msgs)))
    assert b"\x03" not in board.out and b"\x04" not in board.out
    kinds = {m.kind for m in msgs}
    assert {"session", "pacer", "hrv", "stats", "quality"} <= kinds
    assert board.started and board.fed > 0


def test_commands_are_answered(tmp_path):
    app, board = new_app(tmp_path)
    board.send(P.encode_command("ping", 1))
    board.send("get 2\n")  # typed by a person: no checksum
    board.send(P.encode_command("stop", 3))
    board.send(P.encode_command("stop", 4))
    board.send(P.encode_command("start", 5))
    board.send(P.encode_command("hello", 6))
    run_for(app, board, 0.1)
    assert replies(board, 1)[0]["text"] == "pong"
    assert replies(board, 2)[0].kind == "ok"
    settings = {m["key"]: m["value"] for m in board.messages() if m.kind == "setting"}
    assert set(settings) == set(S.KEYS) and settings["rate_mbpm"] == "6000"
    assert replies(board, 3)[0]["text"] == "stopped"
    assert replies(board, 4)[0]["text"] == "not running"
    assert replies(board, 5)[0]["text"] == "started"
    assert replies(board, 6)[0].kind == "ok"
    assert [m.kind for m in board.messages()].count("hello") == 2
    sessions = [(m["state"], m["source"]) for m in board.messages() if m.kind == "session"]
    assert sessions == [("start", "boot"), ("stop", "host"), ("start", "host")]


def test_garbage_gets_errors_and_the_app_keeps_running(tmp_path):
    app, board = new_app(tmp_path)
    noise = bytes((i * 151 + 7) & 0xFF for i in range(700)).replace(b"\n", b"").replace(b"\r", b"")
    board.send(noise + b"\n")
    board.send("x" * 300 + "\n")
    board.send("frobnicate 11\n")
    board.send("set 12 rate_mbpm=99999\n")
    board.send("set 13 rate_mbpm\n")
    board.send("raw 14 maybe\n")
    board.send("ping 15*0000\n")
    board.send(b"\x00\xff\xfe\r\n")
    board.send("ping 16\n")
    run_for(app, board, 0.5)
    msgs = board.messages()
    errs = [m for m in msgs if m.kind == "err"]
    assert len(errs) == 8  # the noise (no newline inside) is one overlong line
    assert any("longer than" in m["reason"] for m in errs)
    assert "unknown command" in replies(board, 11)[0]["reason"]
    assert "3000..12000" in replies(board, 12)[0]["reason"]
    assert "key=value" in replies(board, 13)[0]["reason"]
    assert "on or off" in replies(board, 14)[0]["reason"]
    assert "checksum" in replies(board, 15)[0]["reason"]
    assert replies(board, 16)[0]["text"] == "pong"
    assert app.settings.get("rate_mbpm") == 6000
    run_for(app, board, 5)
    stats = [m for m in board.messages() if m.kind == "stats"]
    assert stats[-1]["rx_bad"] == len(errs)
    assert app.failure is None


def test_settings_set_by_command_persist_across_restart(tmp_path):
    app, board = new_app(tmp_path)
    board.send(P.encode_command("set", 21, "rate_mbpm=4500"))
    board.send(P.encode_command("set", 22, "haptics=off"))
    run_for(app, board, 0.1)
    assert replies(board, 21)[0]["text"] == "set rate_mbpm=4500"
    assert app.pacer.target_mbpm == 4500 and not app.pacer.haptics  # in force at once
    run_for(app, board, app_mod.SETTINGS_WRITE_MS / 1000 + 0.5)  # written within the write gap
    data = json.loads((tmp_path / "settings.json").read_text())
    assert data["rate_mbpm"] == 4500 and data["haptics"] is False
    app2, board2 = new_app(tmp_path)
    assert app2.pacer.rate_mbpm == 4500  # from boot, no ramp
    board2.send("get 1\n")
    run_for(app2, board2, 0.1)
    settings = {m["key"]: m["value"] for m in board2.messages() if m.kind == "setting"}
    assert settings["rate_mbpm"] == "4500" and settings["haptics"] == "0"
    board2.send("defaults 2\n")
    run_for(app2, board2, 0.1)
    assert replies(board2, 2)[0].kind == "ok"
    app3, _ = new_app(tmp_path)
    assert app3.settings.values == S.defaults()


def test_corrupt_settings_file_is_logged_and_the_app_runs(tmp_path):
    (tmp_path / "settings.json").write_text('{"rate_mbpm": 5000, "brightness": ')
    app, board = new_app(tmp_path)
    run_for(app, board, 1)
    msgs = board.messages()
    assert msgs[0].kind == "hello"
    errors = [m["text"] for m in msgs if m.kind == "log" and m["level"] == "error"]
    assert len(errors) == 1 and "not valid JSON" in errors[0]
    assert (tmp_path / "settings.json.bad").exists()
    assert app.settings.values == S.defaults() and app.running


def test_beats_and_summaries_follow_the_heart(tmp_path):
    app, board = new_app(tmp_path, hr_bpm=72.0)
    run_for(app, board, 30)
    msgs = board.messages()
    beats = [m for m in msgs if m.kind == "beat"]
    assert 28 <= len(beats) <= 38
    ibis = [b["ibi_us"] for b in beats[5:]]
    assert all(abs(i - 833333) < 20000 for i in ibis), ibis
    times = [b["t_ms"] for b in beats]
    assert times == sorted(times)
    hrv = [m for m in msgs if m.kind == "hrv"]
    assert 28 <= len(hrv) <= 32
    assert abs(hrv[-1]["hr_x10"] - 720) <= 10 and hrv[-1]["count"] >= 20
    assert [m["state"] for m in msgs if m.kind == "quality"][-1] == "ok"


def test_quality_change_and_raw_streaming(tmp_path):
    app, board = new_app(tmp_path)
    run_for(app, board, 8)
    board.contact = False
    run_for(app, board, 3)
    states = [m["state"] for m in board.messages() if m.kind == "quality"]
    assert states[-1] != "ok" and "ok" in states
    board.send("raw 7 on\n")
    run_for(app, board, 1)
    raw = [m for m in board.messages() if m.kind == "raw"]
    assert len(raw) == 25  # 250 samples in lines of 10
    assert all(len(m["x"]) == app_mod.RAW_BATCH and m["fs"] == 250 for m in raw)
    board.send("raw 8 off\n")
    run_for(app, board, 1)
    assert len([m for m in board.messages() if m.kind == "raw"]) == 25


def test_pacer_drives_the_led_and_button_toggles_the_session(tmp_path):
    app, board = new_app(tmp_path)
    run_for(app, board, 10)  # one 6/min breath
    top = pacer_mod.gamma(65535 * app.settings.get("brightness") // 100)
    assert top * 0.95 < max(board.led) <= top and min(board.led) < 100
    assert max(board.motor) > 0  # haptic cues at the turns
    pacer = [m for m in board.messages() if m.kind == "pacer"]
    dirs = [m["dir"] for m in pacer]
    assert "in" in dirs and "out" in dirs
    assert all(m["rate_mbpm"] == 6000 for m in pacer)
    board.events.append(1)
    run_for(app, board, 0.1)
    assert not app.running and board.led[-1] == 0 and board.motor[-1] == 0
    n = len(board.led)
    run_for(app, board, 1)
    assert len(board.led) == n  # idle: the pacer leaves the LED alone
    board.events.append(2)  # idle long press: next mode (practice -> assess), not saved as start-up
    board.events.append(1)
    run_for(app, board, 0.1)
    assert app.running and app.mode == "assess"
    modes = [(m["mode"], m["source"]) for m in board.messages() if m.kind == "mode"]
    assert modes == [("practice", "boot"), ("assess", "button")]
    assert app.settings.get("mode") == "practice"


def test_session_clock_and_beats_cross_the_ticks_wrap(tmp_path):
    app, board = new_app(tmp_path, start_us=TICKS_MAX - 5000000)
    run_for(app, board, 12)
    assert board.ticks_us() < 10000000  # wrapped
    msgs = board.messages()
    assert abs(app.t_ms - 12000) <= 20
    beats = [m for m in msgs if m.kind == "beat"]
    ibis = [b["ibi_us"] for b in beats[3:]]
    assert ibis and all(abs(i - 833333) < 20000 for i in ibis)
    times = [b["t_ms"] for b in beats]
    assert times == sorted(times) and times[-1] <= 12000


def test_watchdog_is_fed_only_while_every_task_checks_in(tmp_path):
    app, board = new_app(tmp_path)
    run_for(app, board, 1)
    assert app.supervise()
    fed = board.fed
    for _ in range(300):  # 3 s with the button task silent
        board.advance(10000)
        app._timed(app_mod.TASK_NAMES.index("serial"), app.poll_serial)
        app._timed(app_mod.TASK_NAMES.index("samples"), app.poll_samples)
        app._timed(app_mod.TASK_NAMES.index("pacer"), app.update_pacer)
        app._timed(app_mod.TASK_NAMES.index("summary"), app.periodic)
        app.supervise()
    assert board.fed - fed < 220  # fed for ~2 s, then stopped
    assert not app.supervise()
    app.step()
    assert app.supervise()


def test_asyncio_main_serves_and_stops_on_a_dead_task(tmp_path):
    class RealTimeBoard(FakeBoard):
        def __init__(self, path):
            super().__init__(path)
            self.t0 = None
            self.presses = 0

        def ticks_us(self):
            self.now_us = int(asyncio.get_event_loop().time() * 1e6) - self.t0
            return self.now_us & TICKS_MAX

        def ticks_ms(self):
            return (self.ticks_us() // 1000) & TICKS_MAX

        def button(self):
            self.presses += 1
            if self.presses > 10:
                raise RuntimeError("button wiring on fire")
            return 0

    async def scenario():
        board = RealTimeBoard(str(tmp_path / "s.json"))
        board.t0 = int(asyncio.get_event_loop().time() * 1e6)
        board.send("ping 1\n")
        app = app_mod.App(board)
        with pytest.raises(RuntimeError, match="on fire"):
            await app.main()
        return app, board

    app, board = asyncio.run(scenario())
    msgs = board.messages()
    assert msgs[0].kind == "hello"
    assert replies(board, 1)[0]["text"] == "pong"
    assert any(m.kind == "log" and "task button died" in m["text"] for m in msgs)
    assert isinstance(app.failure, RuntimeError)


def test_a_stalled_sampling_loop_starts_the_intervals_afresh(tmp_path):
    # 30 s without samples (a hung USB write, a flash write) while the signal stays good: the core
    # reports the first beat after it with no interval, and HRV must not pair the next interval
    # with the one before the stall
    app, board = new_app(tmp_path, hr_bpm=72.0)
    run_for(app, board, 20)
    gaps = []
    real_gap = app.hrv.gap
    app.hrv.gap = lambda: (gaps.append(board.now_us), real_gap())
    n_before = len([m for m in board.messages() if m.kind == "beat"])
    board.now_us += 30000000
    board._next_sample_us += 30000000
    run_for(app, board, 10)
    beats = [m for m in board.messages() if m.kind == "beat"][n_before:]
    assert beats and beats[0]["ibi_us"] == 0, [b["ibi_us"] for b in beats[:3]]
    assert all(abs(b["ibi_us"] - 833333) < 20000 for b in beats[1:]), [b["ibi_us"] for b in beats]
    assert gaps, "the beat with no interval did not tell HRV"
