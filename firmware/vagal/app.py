"""The vagal application: asyncio tasks around a Board object (never machine/rp2 directly).

Tasks: samples -> BeatDetector/HRV, pacer -> LED and motor, serial commands, button, summaries,
and a supervisor that feeds the watchdog only while every task keeps checking in, so a stalled or
dead task resets the board. Each task body is a plain method (poll_samples, update_pacer, ...) so
tests can drive the app step by step with a fake board and a fake clock; step() runs them all once.
Bad input from the serial line is answered with an `err` line and never raises out of the app.
"""

import asyncio
from array import array

import vagal
from vagal import protocol
from vagal import settings as settings_mod
from vagal.hrv import HRV
from vagal.pacer import Pacer
from vagal.pulse import OK, QUALITY_NAMES, BeatDetector
from vagal.ticks import ticks_add, ticks_diff

try:
    import gc
except ImportError:  # pragma: no cover
    gc = None

if hasattr(asyncio, "sleep_ms"):
    _sleep_ms = asyncio.sleep_ms
else:  # CPython

    def _sleep_ms(ms):
        return asyncio.sleep(ms / 1000)


SAMPLE_BUF = 64  # samples drained per board.read
RAW_BATCH = 10  # samples per `raw` line
RX_BUF = 64  # serial bytes read per call

SAMPLE_MS = 10
PACER_MS = 20  # ~50 Hz LED update
SERIAL_MS = 10
BUTTON_MS = 20
SUPERVISOR_MS = 250
PACER_MSG_MS = 200  # pacer state lines, plus one at every turn of the breath
SUMMARY_MS = 1000
STATS_MS = 5000
STALL_MS = 2000  # a task silent this long stops the watchdog feeding

TASK_NAMES = ("samples", "pacer", "serial", "button", "summary")
_T_SAMPLES = 0
_T_PACER = 1
_T_SERIAL = 2
_T_BUTTON = 3
_T_SUMMARY = 4


class App:
    """The firmware application around one board; begin() then main() (or step() in tests)."""

    def __init__(self, board, settings_path=None):
        self.board = board
        self.fs = board.fs
        self.seq = 0
        self.det = BeatDetector(board.fs)
        self.hrv = HRV(32)
        self.pacer = Pacer()
        self.settings = settings_mod.Settings(
            settings_path if settings_path is not None else board.settings_path, self.log)
        self.xbuf = array("H", bytes(2 * SAMPLE_BUF))
        self.tbuf = array("i", bytes(4 * SAMPLE_BUF))
        self.rxbuf = bytearray(RX_BUF)
        self.assembler = protocol.LineAssembler(protocol.MAX_LINE)
        self.raw_buf = array("H", bytes(2 * RAW_BATCH))
        self.raw_n = 0
        self.raw_t_ms = 0
        self.raw = False
        self.running = False  # a breathing session is on
        self.quality = -1
        self.rx_bad = 0  # command lines rejected (garbage, overlong, unknown, bad values)
        self.jitter_us = 0  # worst |sample interval - nominal| since the last stats line (the board's
        # own jitter_us_min/max, if it has them, are folded in when reporting)
        self.loop_us = 0  # longest task body since the last stats line
        self.failure = None
        self.stopping = False
        self._period_us = 1000000 // board.fs
        self._prev_t = 0
        self._have_prev_t = False
        self._overlong_seen = 0
        self._checkin = array("i", bytes(4 * len(TASK_NAMES)))
        # session clock: t_ms advanced from accumulated ticks_diff, remainder carried in us
        self.t_ms = 0
        self._rem_us = 0
        self._anchor_us = 0
        self._was_inhaling = True
        now_ms = board.ticks_ms()
        self._next_pacer_msg = now_ms
        self._next_summary = now_ms
        self._next_stats = now_ms

    # ------------------------------------------------------------------ output
    def send(self, kind, *values):
        """Encode one message with the next sequence number and write it to the serial link."""
        line = protocol.encode(kind, self.seq, *values)
        self.seq = (self.seq + 1) % protocol.SEQ_MOD
        self.board.serial_write(line)

    def log(self, level, text):
        self.send("log", level, text)

    def reply_ok(self, req_id, text=""):
        self.send("ok", req_id, text)

    def reply_err(self, req_id, reason):
        self.rx_bad += 1
        self.send("err", req_id, reason)

    def send_hello(self):
        board_id = getattr(self.board, "board_id", "unknown")
        self.send("hello", vagal.VERSION, protocol.PROTOCOL_VERSION, self.fs, board_id)

    # ------------------------------------------------------------------ time
    def _clock(self):
        """Advance the session clock to now; returns the current us tick."""
        now = self.board.ticks_us()
        d = ticks_diff(now, self._anchor_us)
        if d > 0:
            self._anchor_us = now
            acc = self._rem_us + d
            ms = acc // 1000
            self.t_ms += ms
            self._rem_us = acc - ms * 1000
        return now

    def session_ms(self, t_us):
        """Session time in ms of tick t_us (near now)."""
        return self.t_ms + (self._rem_us + ticks_diff(t_us, self._anchor_us)) // 1000

    # ------------------------------------------------------------------ start-up
    def begin(self):
        """Hello first, then settings (problems logged), then the board and an autostart session."""
        self._anchor_us = self.board.ticks_us()
        self.send_hello()
        self.settings.load()
        self.apply_settings()
        self.raw = self.settings.get("raw")
        self.board.start()
        now_ms = self.board.ticks_ms()
        for k in range(len(TASK_NAMES)):
            self._checkin[k] = now_ms
        if self.settings.get("autostart"):
            self.start_session("boot")

    def apply_settings(self):
        s = self.settings
        self.pacer.set_rate(s.get("rate_mbpm"), self.running)
        self.pacer.set_ratio(s.get("inhale_pct"))
        self.pacer.set_brightness(s.get("brightness"))
        self.pacer.set_haptics(s.get("haptics"), s.get("haptic_pct"))

    def start_session(self, source):
        now = self._clock()
        self.t_ms = 0
        self._rem_us = 0
        self._anchor_us = now
        self.hrv.reset()
        self.pacer.start(now)
        self._was_inhaling = True
        self.running = True
        self.send("session", 0, "start", source)
        self._send_pacer()
        self._next_pacer_msg = self.board.ticks_ms()

    def stop_session(self, source):
        self._clock()
        self.running = False
        self.board.set_led(0)
        self.board.set_motor(0)
        self.send("session", self.t_ms, "stop", source)

    # ------------------------------------------------------------------ task bodies
    def poll_samples(self):
        """Drain the board's samples into the detector; beats, quality changes and raw lines out."""
        self._clock()
        board = self.board
        det = self.det
        xbuf = self.xbuf
        tbuf = self.tbuf
        period = self._period_us
        while True:
            n = board.read(xbuf, tbuf)
            for i in range(n):
                x = xbuf[i]
                t = tbuf[i]
                if self._have_prev_t:
                    j = ticks_diff(t, self._prev_t) - period
                    if j < 0:
                        j = -j
                    if j > self.jitter_us:
                        self.jitter_us = j
                self._prev_t = t
                self._have_prev_t = True
                if det.push(x, t):
                    self._on_beat()
                if det.quality != self.quality:
                    self._on_quality(det.quality)
                if self.raw:
                    if self.raw_n == 0:
                        self.raw_t_ms = self.session_ms(t)
                    self.raw_buf[self.raw_n] = x
                    self.raw_n += 1
                    if self.raw_n == RAW_BATCH:
                        self.raw_n = 0
                        self.send("raw", self.raw_t_ms, self.fs, self.raw_buf)
            if n < len(xbuf):
                return

    def _on_beat(self):
        det = self.det
        ibi = det.beat_ibi_us
        if ibi > 0:
            self.hrv.add(ibi)
        self.send("beat", self.session_ms(det.beat_t_us), ibi, det.beat_amp, det.beat_conf)

    def _on_quality(self, q):
        self.quality = q
        if q != OK:
            self.hrv.gap()
        name = QUALITY_NAMES[q] if 0 <= q < len(QUALITY_NAMES) else "unknown"
        self.send("quality", self.t_ms, name)

    def _send_pacer(self):
        p = self.pacer
        self.send("pacer", self.t_ms, p.rate_mbpm, p.phase, "in" if p.inhaling else "out", p.led)

    def update_pacer(self):
        """Advance the pacer to now and drive the LED and motor (~50 Hz)."""
        if not self.running:
            return
        now = self._clock()
        p = self.pacer
        p.update(now)
        self.board.set_led(p.led)
        self.board.set_motor(p.motor)
        now_ms = self.board.ticks_ms()
        due = ticks_diff(now_ms, self._next_pacer_msg) >= 0
        if due or p.inhaling != self._was_inhaling:
            self._was_inhaling = p.inhaling
            if due:
                self._next_pacer_msg = ticks_add(now_ms, PACER_MSG_MS)
            self._send_pacer()

    def poll_serial(self):
        """Read command bytes, answer every complete line; overlong lines get an error."""
        asm = self.assembler
        for _ in range(8):  # bounded, so a flood cannot starve the other tasks
            n = self.board.serial_read(self.rxbuf)
            if not n:
                return
            asm.feed(self.rxbuf, n)
            while True:
                line = asm.next_line()
                if asm.overlong != self._overlong_seen:
                    self._overlong_seen = asm.overlong
                    self.reply_err(protocol.NO_ID, "line longer than %d bytes dropped" % protocol.MAX_LINE)
                if line is None:
                    break
                self.handle_line(line)

    def handle_line(self, line):
        """Answer one command line with ok/err; never raises."""
        try:
            msg = protocol.decode_command(line)
        except protocol.ProtocolError as e:
            self.reply_err(protocol.request_id(line), str(e))
            return
        try:
            self.command(msg)
        except Exception as e:  # a bug must not take the link down: report it, keep running
            self.reply_err(msg.seq, "internal error in %s: %s" % (msg.kind, e))

    def command(self, msg):
        kind = msg.kind
        rid = msg.seq
        if kind == "ping":
            self.reply_ok(rid, "pong")
        elif kind == "hello":
            self.send_hello()
            self.reply_ok(rid, "hello")
        elif kind == "get":
            self._send_settings()
            self.reply_ok(rid, "%d settings" % len(settings_mod.KEYS))
        elif kind == "set":
            self._set(rid, msg["assign"])
        elif kind == "defaults":
            try:
                self.settings.reset()
            except OSError as e:
                self.reply_err(rid, "could not save settings: %s" % (e,))
                return
            self.apply_settings()
            self._send_settings()
            self.reply_ok(rid, "defaults restored")
        elif kind == "start":
            if self.running:
                self.reply_ok(rid, "already running")
            else:
                self.start_session("host")
                self.reply_ok(rid, "started")
        elif kind == "stop":
            if self.running:
                self.stop_session("host")
                self.reply_ok(rid, "stopped")
            else:
                self.reply_ok(rid, "not running")
        elif kind == "raw":
            state = msg["state"]
            if state in ("on", "1"):
                self.raw = True
            elif state in ("off", "0"):
                self.raw = False
                self.raw_n = 0
            else:
                self.reply_err(rid, "raw takes on or off, not %r" % state)
                return
            self.reply_ok(rid, "raw " + ("on" if self.raw else "off"))
        else:
            self.reply_err(rid, "command %r not handled" % kind)

    def _send_settings(self):
        for key in settings_mod.KEYS:
            self.send("setting", key, settings_mod.format_value(self.settings.get(key)))

    def _set(self, rid, assign):
        eq = assign.find("=")
        if eq <= 0:
            self.reply_err(rid, "set needs key=value, got %r" % assign)
            return
        key = assign[:eq]
        try:
            value = self.settings.set(key, assign[eq + 1:])
        except settings_mod.SettingsError as e:
            self.reply_err(rid, str(e))
            return
        except OSError as e:
            self.reply_err(rid, "could not save settings: %s" % (e,))
            return
        self.apply_settings()
        text = settings_mod.format_value(value)
        self.send("setting", key, text)
        self.reply_ok(rid, "set %s=%s" % (key, text))

    def poll_button(self):
        ev = self.board.button()
        if ev == 1:
            if self.running:
                self.stop_session("button")
            else:
                self.start_session("button")
        elif ev == 2:
            self.log("info", "long press: mode change is reserved")

    def periodic(self):
        """HR/HRV summary about every second, link/timing stats every few seconds."""
        self._clock()
        now_ms = self.board.ticks_ms()
        if ticks_diff(now_ms, self._next_summary) >= 0:
            self._next_summary = ticks_add(now_ms, SUMMARY_MS)
            h = self.hrv
            self.send("hrv", self.t_ms, h.hr_x10, h.rmssd_us, h.sdnn_us, h.count)
        if ticks_diff(now_ms, self._next_stats) >= 0:
            self._next_stats = ticks_add(now_ms, STATS_MS)
            free = gc.mem_free() if gc is not None and hasattr(gc, "mem_free") else -1
            jitter = self.jitter_us
            for j in (getattr(self.board, "jitter_us_min", 0), getattr(self.board, "jitter_us_max", 0)):
                j = -j if j < 0 else j
                jitter = j if j > jitter else jitter
            self.send("stats", self.t_ms, self.board.lost_samples, jitter, self.loop_us, free,
                      self.rx_bad)
            self.jitter_us = 0
            self.loop_us = 0

    def supervise(self):
        """Feed the watchdog only if every task checked in within STALL_MS. Returns True if fed."""
        now_ms = self.board.ticks_ms()
        for k in range(len(TASK_NAMES)):
            if ticks_diff(now_ms, self._checkin[k]) > STALL_MS:
                return False
        self.board.feed()
        return True

    def _timed(self, k, body):
        t0 = self.board.ticks_us()
        body()
        d = ticks_diff(self.board.ticks_us(), t0)
        if d > self.loop_us:
            self.loop_us = d
        self._checkin[k] = self.board.ticks_ms()

    def step(self):
        """Run every task body once (tests and simple loops); the watchdog is fed if all is well."""
        self._timed(_T_SERIAL, self.poll_serial)
        self._timed(_T_SAMPLES, self.poll_samples)
        self._timed(_T_PACER, self.update_pacer)
        self._timed(_T_BUTTON, self.poll_button)
        self._timed(_T_SUMMARY, self.periodic)
        return self.supervise()

    # ------------------------------------------------------------------ asyncio
    async def _task(self, k, body, period_ms):
        try:
            while not self.stopping:
                self._timed(k, body)
                await _sleep_ms(period_ms)
        except Exception as e:
            if self.failure is None:
                self.failure = e
            try:
                self.log("error", "task %s died: %s: %s" % (TASK_NAMES[k], type(e).__name__, e))
            except Exception:
                pass

    async def _supervisor(self):
        while not self.stopping and self.failure is None:
            self.supervise()
            await _sleep_ms(SUPERVISOR_MS)

    async def main(self):
        """begin(), then run the tasks until stop() or a task fails (whose exception is raised)."""
        self.begin()
        tasks = [
            asyncio.create_task(self._task(_T_SAMPLES, self.poll_samples, SAMPLE_MS)),
            asyncio.create_task(self._task(_T_PACER, self.update_pacer, PACER_MS)),
            asyncio.create_task(self._task(_T_SERIAL, self.poll_serial, SERIAL_MS)),
            asyncio.create_task(self._task(_T_BUTTON, self.poll_button, BUTTON_MS)),
            asyncio.create_task(self._task(_T_SUMMARY, self.periodic, SUMMARY_MS // 4)),
            asyncio.create_task(self._supervisor()),
        ]
        while not self.stopping and self.failure is None:
            await _sleep_ms(100)
        self.stopping = True
        for t in tasks:
            t.cancel()
        if self.failure is not None:
            raise self.failure

    def stop(self):
        """Ask main() to end (tests, clean shutdown on the virtual board)."""
        self.stopping = True


def run(board, settings_path=None):
    """Start the application on board and run it until it stops or fails."""
    app = App(board, settings_path)
    asyncio.run(app.main())
    return app
