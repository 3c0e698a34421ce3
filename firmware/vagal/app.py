"""The vagal application: asyncio tasks around a Board object (never machine/rp2 directly).

Tasks: samples -> BeatDetector/HRV/ResonanceMeter, pacer -> LED and motor, serial commands, button,
summaries, and a supervisor that feeds the watchdog only while every task keeps checking in, so a
stalled or dead task resets the board. Each task body is a plain method (poll_samples, update_pacer, ...) so
tests can drive the app step by step with a fake board and a fake clock; step() runs them all once.
Bad input from the serial line is answered with an `err` line and never raises out of the app.

A session runs in one of four modes (settings.MODES): pace (fixed rate), practice (the stored
resonance rate, closed-loop Tuner), assess (the stepped Assessment; its result is stored) and
winddown (WindDown to darkness, then the session ends by itself). Every mode change goes through
the pacer's glide and a brightness glide, so the light never jumps. Short blink/buzz patterns
(indicate) say what happened without a screen: they fade the breathing light out and back in.
"""

import asyncio
import sys
from array import array

import vagal
from vagal import protocol
from vagal import settings as settings_mod
from vagal.journal import Journal
from vagal.pacer import LEVEL_MAX, RATE_MIN, gamma, rise
from vagal.pipeline import Pipeline
from vagal.pulse import OK, QUALITY_NAMES, BeatDetector
from vagal.resonance import ABS_MAX_MBPM, ABS_MIN_MBPM
from vagal.ticks import ticks_add, ticks_diff



def max_jitter(tbuf, n, prev, have_prev, period, jitter):
    """The largest |ticks_diff(tbuf[i], tbuf[i - 1]) - period| over tbuf[:n] and jitter, the first
    sample paired with prev when have_prev: the samples' timing check, once per batch."""
    for i in range(n):
        t = tbuf[i]
        if have_prev:
            j = ticks_diff(t, prev) - period
            if j < 0:
                j = -j
            if j > jitter:
                jitter = j
        prev = t
        have_prev = True
    return jitter


try:  # the same in viper where the port compiles it (the RP2040; tests/portable/test_native.py)
    from vagal.native import max_jitter as _max_jitter
except (ImportError, SyntaxError, ValueError):
    _max_jitter = max_jitter

try:
    import gc
except ImportError:  # pragma: no cover
    gc = None
try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


if hasattr(asyncio, "sleep_ms"):
    _sleep_ms = asyncio.sleep_ms
else:  # CPython

    def _sleep_ms(ms):
        return asyncio.sleep(ms / 1000)


SAMPLE_BUF = const(64)  # samples drained per board.read
RAW_BATCH = const(10)  # samples per `raw` line
_RX_BUF = const(64)  # serial bytes read per call
RX_QUIET_MS = const(1000)  # an unfinished command line older than this is dropped
SETTINGS_WRITE_MS = const(3000)  # the settings file is written at most this often (flash wear)

# Task periods. Every wake-up costs the scheduler more than a short body, so samples (5 a wake-up at
# 250 Hz; the board buffers 128 ms), the serial link (8 x 64 bytes a wake-up) and the button share
# the LED's 20 ms, in one asyncio task (_task).
PACER_MS = const(20)  # ~50 Hz LED update
_SUPERVISOR_MS = const(250)
_PACER_MSG_MS = const(200)  # pacer state lines, plus one at every turn of the breath
_SUMMARY_MS = const(1000)
_STATS_MS = const(5000)
_MINUTE_MS = const(60000)  # a journal minute record (and the batch written to flash)
_STALL_US = const(2000000)  # a task silent this long stops the watchdog feeding (check-ins are us
# ticks: ticks_diff reaches 537 s, and the watchdog resets 8 s after feeding stops)

_BRIGHT_STEP_MS = const(100)  # the brightness glides by 1 % per step (10 %/s): a mode change never jumps
_PULSE_LOST_MS = const(5000)  # the pulse must be gone this long before the user is told (a 1 s drop-out
# keeps the detector off "ok" for ~4 s)
_NO_PULSE_MS = const(15000)  # a session with no pulse found by then says so once

# Indicator patterns (pulses, period_ms, motor_ms): dim raised-cosine blinks over the faded-out
# breathing light, plus a buzz per pulse when motor_ms > 0 (and haptics are on).
_IND_FADE_MS = const(250)
IND_PCT = const(35)  # blink height, % of the perceptual scale (capped by the brightness setting)
IND_MODE = (0, 600, 80)  # pulses = 1 + the mode's index: pace 1, practice 2, assess 3, winddown 4
IND_PULSE_OK = (1, 800, 0)  # one slow blink: pulse found
IND_PULSE_LOST = (2, 300, 0)  # two quick blinks: no pulse (the pacer goes on without it)
IND_DONE = (2, 900, 400)  # two long buzzes: assessment done, rate stored
IND_FAILED = (3, 300, 150)  # three short buzzes: assessment failed, nothing stored

_UNLOAD = sys.implementation.name == "micropython"  # free a mode's code when leaving it (heap)
# The controllers' modules are imported when their mode starts (not at boot), to keep the heap small.
_CONTROLLER_MODULES = ("vagal.assessment", "vagal.tuner", "vagal.winddown", "vagal.journal_files")
ASSESS_RUNNING = const(1)  # Assessment.RUNNING / DONE (copied: vagal.assessment is loaded on demand)
ASSESS_DONE = const(2)

TASK_NAMES = ("samples", "pacer", "serial", "button", "summary")
_T_SAMPLES = const(0)
_T_PACER = const(1)
_T_SERIAL = const(2)
_T_BUTTON = const(3)
_T_SUMMARY = const(4)


class App:
    """The firmware application around one board; begin() then main() (or step() in tests)."""

    def __init__(self, board, settings_path=None, journal_path=None):
        self.board = board
        self.fs = board.fs
        self.seq = 0
        self.det = BeatDetector(board.fs)
        self.pipe = Pipeline()  # the core's wiring: HRV, meter, controller, pacer (vagal.pipeline)
        self.hrv = self.pipe.hrv
        self.pacer = self.pipe.pacer
        self.meter = self.pipe.meter
        self.settings = settings_mod.Settings(
            settings_path if settings_path is not None else board.settings_path, self.log)
        if journal_path is None:  # beside the settings: /journal on the Pico, the virtual board's folder
            sp = self.settings.path
            journal_path = sp[:sp.rfind("/") + 1] + "journal" if "/" in sp else "journal"
        self.journal = Journal(journal_path, self.log)
        self._minute_ms = 0  # session time of the next journal minute record
        self._q_n = 0  # seconds of the current minute, and those with a pulse
        self._q_ok = 0
        self.xbuf = array("H", bytes(2 * SAMPLE_BUF))
        self.tbuf = array("i", bytes(4 * SAMPLE_BUF))
        self.rxbuf = bytearray(_RX_BUF)
        self._lw = protocol.LineWriter()
        self._v = [0] * 8  # the fields of the next _send_v line
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
        self._rx_ms = 0  # ticks_ms of the last serial bytes read
        self.flash_writes = 0  # settings file writes since start (each one a flash erase/program)
        self._settings_dirty = False  # changed in memory, not yet written
        # ticks_ms of the last write (or failed attempt): as if long ago, so the first is at once
        self._settings_ms = ticks_add(board.ticks_ms(), -SETTINGS_WRITE_MS)
        self._checkin = array("i", bytes(4 * len(TASK_NAMES)))  # ticks_us of each task's last run
        # session clock: t_ms advanced from accumulated ticks_diff, remainder carried in us
        self.t_ms = 0
        self._rem_us = 0
        self._anchor_us = 0
        self._was_inhaling = True
        self._end_ms = 0  # session time a pace/practice session ends at (session_min; 0: none)
        self.mode = "practice"
        self._practice_next = False  # an assessment ended: practice starts at the next pacer update
        self.date = ""  # today, as told by the `date` command ("" unknown)
        self.led = 0  # the LED duty last driven
        self._bright_target = 0
        self._bright_ms = 0  # ticks_ms of the last brightness step
        self._haptic_pct = -1  # strength last given to the pacer by the controller
        self._assess_step = 0
        self._breath_seen = 0
        self._coh_seen = 0
        self._hr_sum = 0  # session means for the summary
        self._hr_n = 0
        self._coh_n = 0
        self._coh_good = 0
        self._pulse_ok = False  # the signal is ok now (during a session)
        self._pulse_seen = False  # the session had a pulse at some time
        self._pulse_told = False  # "no pulse" was said for the current loss
        self._lost_ms = 0  # ticks_ms when the pulse went
        self._ind_n = 0  # pulses of the running indicator pattern (0: none)
        self._ind_period = 0
        self._ind_motor = 0
        self._ind_light = False
        self._ind_t0 = 0
        self._ind_total = 0
        self._ind_drive = 0
        now_ms = board.ticks_ms()
        self._next_pacer_msg = now_ms
        self._next_summary = now_ms
        self._next_stats = now_ms

    @property
    def ctrl(self):
        """The mode's controller (Tuner, Assessment, WindDown or None for pace), run by the pipeline."""
        return self.pipe.ctrl

    @ctrl.setter
    def ctrl(self, c):
        self.pipe.ctrl = c

    # ------------------------------------------------------------------ output
    def send(self, kind, *values):
        """Encode one message with the next sequence number and write it to the serial link."""
        line = protocol.encode(kind, self.seq, *values)
        self.seq = (self.seq + 1) % protocol.SEQ_MOD
        self.board.serial_write(line)

    def _send_v(self, kind, n):
        """Send kind with the first n of self._v as its fields, encoded in place (allocates
        nothing): the lines a session sends every second."""
        w = self._lw
        k = w.line(kind, self.seq, self._v, n)
        self.seq = (self.seq + 1) % protocol.SEQ_MOD
        self.board.serial_write(w.buf, k)

    def log(self, level, text):
        self.send("log", level, text)

    def reply_ok(self, req_id, text=""):
        self.send("ok", req_id, text)

    def reply_err(self, req_id, reason):
        self.rx_bad += 1
        self.send("err", req_id, reason)

    def send_hello(self):
        board_id = getattr(self.board, "board_id", "unknown")
        self.send("hello", vagal.VERSION, protocol.PROTOCOL_VERSION, self.fs, board_id,
                  getattr(self.board, "boot_id", "-"))

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

    def _clock_ms(self):
        self._clock()
        return self.t_ms

    def session_ms(self, t_us):
        """Session time in ms of tick t_us (near now)."""
        return self.t_ms + (self._rem_us + ticks_diff(t_us, self._anchor_us)) // 1000

    # ------------------------------------------------------------------ start-up
    def begin(self):
        """Hello first, then settings (problems logged), then the board and an autostart session."""
        self._anchor_us = self.board.ticks_us()
        self.send_hello()
        self.settings.load()
        self.journal.open(self.board.ticks_ms())
        self.mode = self.settings.get("mode")
        self.apply_settings()
        self.raw = self.settings.get("raw")
        self.board.start()
        now_us = self.board.ticks_us()
        for k in range(len(TASK_NAMES)):
            self._checkin[k] = now_us
        if self.settings.get("autostart"):
            self.start_session("boot")

    def apply_settings(self, key=None):
        """Put the settings in force (key: the one just changed, None for all); never jumps the light."""
        s = self.settings
        p = self.pacer
        p.set_ratio(s.get("inhale_pct"))
        winddown = self.mode == "winddown" and self.running
        if not winddown:
            p.set_haptics(s.get("haptics"), s.get("haptic_pct"))
            self._bright_target = s.get("brightness")
        elif key in (None, "haptics", "winddown_haptic_only"):
            p.set_haptics(s.get("haptics") or s.get("winddown_haptic_only"))
        if not self.running:
            p.set_rate(self._mode_rate(), False)
            p.set_brightness(self._bright_target)
            return
        mode = self.mode
        now = self._clock()
        if mode == "pace":
            p.set_rate(s.get("rate_mbpm"), True)
        elif mode == "practice":
            # key None: every setting may have changed (defaults restored): start over from them
            if key in (None, "rate_mbpm", "resonance_mbpm") or (key == "tuning" and self.ctrl is None):
                self._start_controller(now, True)
            elif key == "tuning":
                self.ctrl.set_enabled(s.get("tuning"), now)

    def _practice_rate(self):
        r = self.settings.get("resonance_mbpm")
        return r if r >= RATE_MIN else self.settings.get("rate_mbpm")

    def _mode_rate(self):
        """The rate a session in the current mode starts at."""
        mode = self.mode
        if mode == "practice":
            return self._practice_rate()
        if mode == "assess":
            return 6500
        if mode == "winddown":
            return self.settings.get("winddown_start_mbpm")
        return self.settings.get("rate_mbpm")

    def _load(self, mode):
        """On MicroPython, drop the controller modules `mode` does not use from memory (each is
        several KB of bytecode; only one mode runs at a time) before it imports its own. Mode
        "sync" (a host reading the journal while no session runs) keeps only vagal.journal_files."""
        if _UNLOAD:
            dropped = False
            for name in _CONTROLLER_MODULES:
                keep = ((mode == "assess" and name == "vagal.assessment") or
                        (mode == "practice" and name == "vagal.tuner") or
                        (mode == "winddown" and name == "vagal.winddown") or
                        (mode == "sync" and name == "vagal.journal_files"))
                if not keep and name in sys.modules:
                    del sys.modules[name]
                    try:
                        delattr(vagal, name[6:])
                    except AttributeError:
                        pass
                    dropped = True
            if dropped and gc is not None:
                gc.collect()

    def _start_controller(self, now, glide):
        """Make the current mode's controller and set the pacer going toward its rate. Without the
        memory to load it, the mode paces at its start rate (logged): the light must go on."""
        s = self.settings
        p = self.pacer
        mode = self.mode
        self.ctrl = None
        rate = self._mode_rate()
        bright = s.get("brightness")
        haptics = s.get("haptics")
        self._haptic_pct = -1
        try:
            self._load(mode)
            self._make_controller(mode, rate, now)
        except MemoryError as e:
            self.ctrl = None
            if gc is not None:
                gc.collect()
            try:  # the light must go on even if there is not enough memory left to say why
                self.log("error", "%s: no memory for its controller (%s): fixed rate" % (mode, e))
            except MemoryError:
                pass
        c = self.ctrl
        if c is not None:
            rate = c.rate_mbpm
            if mode == "winddown":
                bright = c.brightness_pct
                haptics = haptics or c.haptic_only
        p.set_rate(rate, glide)
        p.set_haptics(haptics, s.get("haptic_pct"))
        self._bright_target = bright
        if not glide:
            p.set_brightness(bright)

    def _make_controller(self, mode, rate, now):
        s = self.settings
        if mode == "practice":
            if not s.get("tuning"):
                return
            if not ABS_MIN_MBPM <= rate <= ABS_MAX_MBPM:
                self.log("warn", "tuning needs a start rate within %d..%d mbpm, not %d: fixed rate"
                         % (ABS_MIN_MBPM, ABS_MAX_MBPM, rate))
                return
            from vagal.tuner import Tuner
            c = Tuner(self.meter, rate, resonance_phase_deg=s.get("resonance_phase_deg"))
        elif mode == "assess":
            from vagal.assessment import Assessment
            c = Assessment(self.meter, step_s=s.get("assess_step_s"))
            self._assess_step = 0
        elif mode == "winddown":
            from vagal.winddown import WindDown
            c = WindDown(end_mbpm=self._practice_rate(), minutes=s.get("winddown_min"), start_mbpm=rate,
                         brightness_pct=s.get("brightness"), haptic_pct=s.get("haptic_pct"),
                         haptic_only=s.get("winddown_haptic_only"), meter=self.meter)
        else:
            return
        c.start(now)
        self.ctrl = c

    def set_mode(self, name, source):
        """Switch to mode `name` (a session running goes on, gliding); saved as the start-up mode
        unless it is assess (a one-off). Returns an error text, or None."""
        if name not in settings_mod.MODES:
            return "unknown mode %r (modes: %s)" % (name, ", ".join(settings_mod.MODES))
        if name != "assess" and self.settings.get("mode") != name:
            self.settings.set("mode", name, False)
            self.save_settings(False, True)
        if self.running and name == self.mode:
            return None  # already so: an assessment or tuning in progress goes on
        if self.running:
            self._abort_assessment()
            self._practice_next = False
            self.mode = name
            self._start_controller(self._clock(), True)
            self.send("mode", self.t_ms, name, source)
        else:
            self.mode = name
            self.apply_settings()
        return None

    def _abort_assessment(self):
        a = self.ctrl
        if self.mode == "assess" and a is not None and a.state == ASSESS_RUNNING:
            self.ctrl = None
            self.send("assess_result", self.t_ms, "aborted", 0, 0, self.date or "-", "-", 0, 0)

    def start_session(self, source):
        now = self._clock()
        self.t_ms = 0
        self._rem_us = 0
        self._anchor_us = now
        self.hrv.reset()
        self.meter.reset()
        self.meter.signal(self.quality == OK)   # reset() assumes a good signal: say what it is
        self._breath_seen = self.meter.seq
        self._coh_seen = self.meter.coherence.seq
        self._hr_sum = 0
        self._hr_n = 0
        self._coh_n = 0
        self._coh_good = 0
        self._pulse_ok = self.quality == OK
        self._pulse_seen = self._pulse_ok
        self._pulse_told = False
        self._lost_ms = self.board.ticks_ms()
        self._ind_n = 0
        self._end_ms = (self.settings.get("session_min") * 60000
                        if self.mode in ("pace", "practice") else 0)
        self._start_controller(now, False)
        self.pacer.start(now)
        self._was_inhaling = True
        self.running = True
        self.send("session", 0, "start", source)
        self.send("mode", 0, self.mode, source)
        j = self.journal
        j.start(self.mode, source, self.settings, self.date)
        if j.current is not None:
            self.send("jsession", j.boot, j.index, 0, 0)  # the stream file's key to this session
        self._minute_ms = _MINUTE_MS
        self._q_n = 0
        self._q_ok = 0
        if self._pulse_ok and self.mode != "winddown":
            self.indicate(IND_PULSE_OK)
        self._send_pacer()
        self._next_pacer_msg = self.board.ticks_ms()

    def stop_session(self, source):
        self._clock()
        self._abort_assessment()
        self._practice_next = False
        self.running = False
        self._ind_n = 0
        self.led = 0
        self.board.set_led(0)
        self.board.set_motor(0)
        m = self.meter
        hr = self._hr_sum // self._hr_n if self._hr_n else 0
        swing = m.swing_sum_x10 // m.valid_breaths if m.valid_breaths else 0
        coherent = self._coh_good * 100 // self._coh_n if self._coh_n else 0
        # on flash first: a summary the host has seen is a session the journal has whole
        self.journal.end(self.t_ms, self.mode, hr, swing, coherent, self.pacer.rate_mbpm, m.valid_breaths,
                         source)
        self.send("summary", self.t_ms, self.mode, hr, swing, coherent, self.pacer.rate_mbpm, m.valid_breaths)
        self.send("session", self.t_ms, "stop", source)
        self.ctrl = None
        self.apply_settings()
        self.save_settings(True)

    # ------------------------------------------------------------------ task bodies
    def poll_samples(self):
        """Drain the board's samples into the detector; beats, quality changes and raw lines out."""
        self._clock()
        board = self.board
        det = self.det
        xbuf = self.xbuf
        tbuf = self.tbuf
        period = self._period_us
        # the per-sample state lives in locals for the loop (attribute access costs on MicroPython)
        prev = self._prev_t
        have_prev = self._have_prev_t
        jitter = self.jitter_us
        q = self.quality
        raw = self.raw  # only a command changes it, and commands run in another task
        while True:
            n = board.read(xbuf, tbuf)
            if n:
                jitter = _max_jitter(tbuf, n, prev, have_prev, period, jitter)
                prev = tbuf[n - 1]
                have_prev = True
            for i in range(n):
                x = xbuf[i]
                t = tbuf[i]
                if det.push(x, t):
                    self._on_beat()
                if det.quality != q:
                    q = det.quality
                    self._on_quality(q)
                if raw:
                    self._raw_sample(x, t)
            if n < len(xbuf):
                break
        self._prev_t = prev
        self._have_prev_t = have_prev
        self.jitter_us = jitter

    def _raw_sample(self, x, t):
        if self.raw_n == 0:
            self.raw_t_ms = self.session_ms(t)
        self.raw_buf[self.raw_n] = x
        self.raw_n += 1
        if self.raw_n == RAW_BATCH:
            self.raw_n = 0
            self.send("raw", self.raw_t_ms, self.fs, self.raw_buf)

    def _on_beat(self):
        det = self.det
        ibi = det.beat_ibi_us
        self.pipe.beat(det.beat_t_us, ibi)
        v = self._v
        v[0] = self.session_ms(det.beat_t_us)
        v[1] = ibi
        v[2] = det.beat_amp
        v[3] = det.beat_conf
        self._send_v("beat", 4)

    def _on_quality(self, q):
        self.quality = q
        self.pipe.signal(q == OK)
        if q != OK:
            if self._pulse_ok:
                self._pulse_ok = False
                self._pulse_told = False
                self._lost_ms = self.board.ticks_ms()
        elif self.running and not self._pulse_ok:
            # said only for the first pulse of a session or after "no pulse" was said: a short
            # drop-out (movement) must not interrupt the breathing light
            if (self._pulse_told or not self._pulse_seen) and self.mode != "winddown":
                self.indicate(IND_PULSE_OK)
            self._pulse_ok = True
            self._pulse_seen = True
            self._pulse_told = False
        v = self._v
        v[0] = self.t_ms
        v[1] = QUALITY_NAMES[q] if 0 <= q < len(QUALITY_NAMES) else "unknown"
        self._send_v("quality", 2)

    def _send_pacer(self):
        p = self.pacer
        v = self._v
        v[0] = self.t_ms
        v[1] = p.rate_mbpm
        v[2] = p.phase
        v[3] = "in" if p.inhaling else "out"
        v[4] = self.led
        self._send_v("pacer", 5)

    # ------------------------------------------------------------------ light and motor signs
    def indicate(self, pattern, pulses=0):
        """Start a blink/buzz pattern (IND_*): the breathing light fades out, dim blinks, fades back.
        No light in wind-down (the bedside stays dark) or at brightness 0; buzzes only with haptics."""
        self._ind_n = pulses if pulses else pattern[0]
        self._ind_period = pattern[1]
        self._ind_motor = pattern[2] if self.pacer.haptics else 0
        self._ind_light = self.mode != "winddown" and self.settings.get("brightness") > 0
        self._ind_t0 = self.board.ticks_ms()
        self._ind_total = 2 * _IND_FADE_MS + self._ind_n * self._ind_period

    def _overlay(self, level, now_ms):
        """LED level (perceptual) with the running indicator pattern laid over it; the pattern's
        motor drive goes to self._ind_drive (an int, so nothing is allocated per update)."""
        self._ind_drive = 0
        e = ticks_diff(now_ms, self._ind_t0)
        total = self._ind_total
        if e >= total or e < 0:
            self._ind_n = 0
            return level
        if self._ind_light:
            a = 256
            if e < _IND_FADE_MS:
                a = e * 256 // _IND_FADE_MS
            elif e > total - _IND_FADE_MS:
                a = (total - e) * 256 // _IND_FADE_MS
            level = (level >> 8) * (256 - a)
        k = (e - _IND_FADE_MS) // self._ind_period
        if 0 <= k < self._ind_n and e >= _IND_FADE_MS:
            pos = e - _IND_FADE_MS - k * self._ind_period
            on_ms = self._ind_period * 2 // 3
            if self._ind_light and pos < on_ms:
                t = pos * 8192 // on_ms
                w = rise(t if t < 4096 else 8192 - t)
                pct = self.settings.get("brightness")
                pct = IND_PCT if pct > IND_PCT else pct
                level += w * pct // 100
            if pos < self._ind_motor:
                self._ind_drive = self.pacer.motor_level
        return LEVEL_MAX if level > LEVEL_MAX else level

    def _drive(self, level, motor, now_ms):
        if self._ind_n:
            level = self._overlay(level, now_ms)
            if self._ind_drive > motor:
                motor = self._ind_drive
        self.led = gamma(level)
        self.board.set_led(self.led)
        self.board.set_motor(motor)

    # ------------------------------------------------------------------ the mode's controller
    def _send_breath(self):
        m = self.meter
        v = self._v
        v[0] = self.session_ms(m.breath_end_us)
        v[1] = 1 if m.valid else 0
        v[2] = m.swing_x10
        v[3] = m.fit_x10
        v[4] = m.phase_deg
        v[5] = m.hr_x10
        v[6] = m.breath_rate_mbpm
        self._send_v("breath", 7)

    def _send_assess_step(self, i):
        a = self.ctrl
        self.send("assess_step", self.t_ms, a.rates[i], a.n[i], a.mean_swing_x10(i), a.mean_fit_x10(i),
                  a.mean_phase_deg(i), a.mean_coherence_x100(i), a.level_x10(i), a.fit_se_x10(i))

    def _assess_finished(self):
        """Store a done assessment's rate and date, say so, and go on in practice mode. The
        Assessment is let go before the tuner loads: held (by a caller's local), its class kept
        the assessment's code alive beside the tuner's, ~12 KB more at the switch."""
        a = self.ctrl
        date = self.date
        state = "done" if a.state == ASSESS_DONE else "failed"
        rate = a.result_mbpm
        chosen = a.rates[a.best_index] if a.best_index >= 0 else 0
        rule = a.rule
        spread = a.spread_mbpm
        phase_ref = a.phase_ref_deg
        a = None
        self.ctrl = None
        self.mode = "practice"
        self._practice_next = True  # the tuner loads at the next pacer update, from a fresh stack
        if state == "done":
            try:
                self.settings.update((("resonance_mbpm", rate), ("resonance_date", date),
                                      ("resonance_phase_deg", phase_ref)), False)
            except ValueError as e:
                self.log("error", "assessment result %d mbpm not stored: %s" % (rate, e))
                state = "failed"
            else:
                self.save_settings(False, True)
        done = state == "done"
        self.send("assess_result", self.t_ms, state, rate, chosen, date or "-", rule if done else "-",
                  spread if done else 0, phase_ref if done else 0)
        self.indicate(IND_DONE if done else IND_FAILED)

    def _go_practice(self):
        """After an assessment: practice at the stored rate. Run at the start of a pacer update, not
        inside the assessment's last one: MicroPython's collector scans the stack conservatively, and
        a stale slot of those frames kept the Assessment (and its code, ~12 KB) alive beside the
        tuner's; on the virtual board in a 300 KB heap the tuner then could not load."""
        self._practice_next = False
        self._start_controller(self._clock(), True)
        self.send("mode", self.t_ms, "practice", "auto")

    def _control(self):
        """Breath and coherence lines, then what the mode's controller (run by the pipeline) says."""
        m = self.meter
        if m.seq != self._breath_seen:
            self._breath_seen = m.seq
            self._send_breath()
            self.journal.breath(self.session_ms(m.breath_end_us), 1 if m.valid else 0, m.swing_x10,
                                m.fit_x10, m.phase_deg, m.hr_x10, m.breath_rate_mbpm)
        c = m.coherence
        if c.seq != self._coh_seen:
            self._coh_seen = c.seq
            ratio = c.coherence_x100
            self._coh_n += 1
            if ratio >= 100:
                self._coh_good += 1
            v = self._v
            v[0] = self.t_ms
            v[1] = ratio
            v[2] = c.peak_mhz if ratio >= 0 else 0
            self._send_v("coherence", 3)
        ctrl = self.ctrl
        if ctrl is None:
            return
        p = self.pacer
        mode = self.mode
        if mode == "winddown":
            self._bright_target = ctrl.brightness_pct
            if ctrl.haptic_pct != self._haptic_pct:
                self._haptic_pct = ctrl.haptic_pct
                p.set_haptics(p.haptics, ctrl.haptic_pct)
            if ctrl.done and p.brightness == 0:
                self.stop_session("auto")  # darkness and stillness
                return
        elif mode == "assess":
            while self._assess_step < ctrl.step:
                self._send_assess_step(self._assess_step)
                self._assess_step += 1
            if ctrl.state != ASSESS_RUNNING:
                self._send_assess_step(ctrl.step)
                ctrl = None  # nothing may hold the Assessment while the tuner loads
                self._assess_finished()

    def _pulse_check(self, now_ms):
        """Tell the user once when a session has no pulse (none found, or lost for a while)."""
        if self._pulse_ok or self._pulse_told:
            return
        wait = _PULSE_LOST_MS if self._pulse_seen else _NO_PULSE_MS
        if ticks_diff(now_ms, self._lost_ms) >= wait:
            self._pulse_told = True
            if self.mode != "winddown":  # wind-down works as a plain timed ramp without a pulse
                self.indicate(IND_PULSE_LOST)

    def update_pacer(self):
        """Advance the pacer to now, steer it by the mode, drive the LED and motor (~50 Hz)."""
        now_ms = self.board.ticks_ms()
        if not self.running:
            if self._ind_n:  # a sign while idle (a long press choosing the mode)
                self._drive(0, 0, now_ms)
            return
        if self._practice_next:
            self._go_practice()
        now = self._clock()
        p = self.pacer
        b = p.brightness
        if b != self._bright_target:
            d = ticks_diff(now_ms, self._bright_ms)
            if d >= _BRIGHT_STEP_MS or d < 0:  # < 0: the last step is days old (ticks wrapped)
                self._bright_ms = now_ms
                p.brightness = b + 1 if b < self._bright_target else b - 1
        self.pipe.tick(now)
        self._control()
        if not self.running:  # the controller ended the session
            return
        if self._end_ms and self.t_ms >= self._end_ms and p.inhaling and not self._was_inhaling:
            self.stop_session("auto")  # the timed session ends with a whole breath, never mid-exhale
            return
        self._pulse_check(now_ms)
        self._drive(p.level, p.motor, now_ms)
        due = ticks_diff(now_ms, self._next_pacer_msg) >= 0
        if due or p.inhaling != self._was_inhaling:
            self._was_inhaling = p.inhaling
            if due:
                self._next_pacer_msg = ticks_add(now_ms, _PACER_MSG_MS)
            self._send_pacer()

    def poll_serial(self):
        """Read command bytes, answer every complete line; overlong lines get an error. Part of a
        line left without its line end for RX_QUIET_MS (a stray byte from an earlier client, a
        cut-off command) is dropped, so it cannot join the next command."""
        asm = self.assembler
        for k in range(8):  # bounded, so a flood cannot starve the other tasks
            n = self.board.serial_read(self.rxbuf)
            if not n:
                quiet = ticks_diff(self.board.ticks_ms(), self._rx_ms) >= RX_QUIET_MS
                if k == 0 and (asm.len or asm.discarding) and quiet:
                    asm.discard_partial()
                    self.reply_err(protocol.NO_ID, "unfinished line dropped after %d ms without a line end"
                                   % RX_QUIET_MS)
                return
            self._rx_ms = self.board.ticks_ms()
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
            old = self.settings.values
            self.settings.reset(False)
            err = self.save_settings(False, True)
            if err:
                self.settings.values = old
                self.reply_err(rid, "could not save settings: %s" % (err,))
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
        elif kind == "mode":
            name = msg["name"]
            err = self.set_mode(name, "host")
            if err:
                self.reply_err(rid, err)
            else:
                if not self.running:
                    self.start_session("host")
                self.reply_ok(rid, "mode " + name)
        elif kind == "status":
            q = self.quality
            self.send("status", self._clock_ms(), 1 if self.running else 0, self.mode,
                      QUALITY_NAMES[q] if 0 <= q < len(QUALITY_NAMES) else "unknown",
                      self.pacer.rate_mbpm, self.hrv.hr_x10, self.board.lost_samples)
            self.reply_ok(rid, "status")
        elif kind == "date":
            day = msg["day"]
            if not settings_mod.valid_date(day):
                self.reply_err(rid, "date %r: must be a calendar date YYYY-MM-DD (2000..2099)" % day)
            else:
                self.date = day
                self.reply_ok(rid, "date " + day)
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
        elif kind in ("journal", "jlist", "jread", "jdrop"):
            if self.running:  # the session's code and the sync's do not both fit the heap
                self.reply_err(rid, "session running: sync after it")
                return
            self._load("sync")  # the controllers make room for the sync's code
            from vagal import journal_files  # loaded for a sync, dropped when a session starts

            journal_files.command(self, kind, msg, rid)
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
            old = self.settings.get(key)
        except KeyError:
            old = None
        try:
            value = self.settings.set(key, assign[eq + 1:], False)
        except settings_mod.SettingsError as e:
            self.reply_err(rid, str(e))
            return
        err = self.save_settings(False, True)
        if err:  # written at once and failed: nothing changed (a deferred write fails in a log line)
            self.settings.values[key] = old
            self.reply_err(rid, "could not save settings: %s" % (err,))
            return
        if key == "mode" and value != self.mode:
            self.set_mode(value, "host")  # the start-up mode, and the session's from now on
        else:
            self.apply_settings(key)
        text = settings_mod.format_value(value)
        self.send("setting", key, text)
        self.reply_ok(rid, "set %s=%s" % (key, text))

    def save_settings(self, force=False, changed=False):
        """Write the settings file if they changed, at most once per SETTINGS_WRITE_MS (force: now,
        at session end and before a reset); a flood of `set` lines costs a few flash writes, not
        one each. Values apply at once either way. Returns the error text of a write done now that
        failed ('' otherwise; a failed write is retried after the gap)."""
        if changed:
            self._settings_dirty = True
        if not self._settings_dirty:
            return ""
        now = self.board.ticks_ms()
        if not force and ticks_diff(now, self._settings_ms) < SETTINGS_WRITE_MS:
            return ""
        self._settings_ms = now
        try:
            self.settings.save()
        except OSError as e:
            self.log("error", "could not save settings: %s" % (e,))
            return str(e) or "write failed"
        self._settings_dirty = False
        self.flash_writes += 1
        return ""

    def poll_button(self):
        ev = self.board.button()
        if ev == 1:
            if self.running:
                self.stop_session("button")
            else:
                self.start_session("button")
        elif ev == 2:
            modes = settings_mod.MODES
            i = 0
            for k in range(len(modes)):
                if modes[k] == self.mode:
                    i = k
            nxt = modes[(i + 1) % len(modes)]
            self.set_mode(nxt, "button")
            self.indicate(IND_MODE, (i + 1) % len(modes) + 1)

    def periodic(self):
        """HR/HRV summary about every second, link/timing stats every few seconds, settings changed
        since the last write written when the gap allows."""
        self._clock()
        if self._settings_dirty:
            self.save_settings()
        now_ms = self.board.ticks_ms()
        if ticks_diff(now_ms, self._next_summary) >= 0:
            self._next_summary = ticks_add(now_ms, _SUMMARY_MS)
            h = self.hrv
            if self.running and h.hr_x10 > 0:
                self._hr_sum += h.hr_x10
                self._hr_n += 1
                if self._hr_n >= 1 << 18:  # keeps the sum a small int in any session length
                    self._hr_sum >>= 1
                    self._hr_n >>= 1
            v = self._v
            v[0] = self.t_ms
            v[1] = h.hr_x10
            v[2] = h.rmssd_us
            v[3] = h.sdnn_us
            v[4] = h.count
            self._send_v("hrv", 5)
            self.journal.advance(now_ms)
            if self.running:  # seconds with a pulse; each minute one journal record (and a write)
                self._q_n += 1
                if self.quality == OK:
                    self._q_ok += 1
                if self.t_ms >= self._minute_ms:
                    self._minute_ms += _MINUTE_MS
                    self.journal.minute(self.t_ms, h.hr_x10, h.rmssd_us, h.sdnn_us,
                                        self.meter.coherence.coherence_x100, self._q_ok * 100 // self._q_n,
                                        self.pacer.rate_mbpm)
                    self._q_n = 0
                    self._q_ok = 0
        if ticks_diff(now_ms, self._next_stats) >= 0:
            self._next_stats = ticks_add(now_ms, _STATS_MS)
            free = gc.mem_free() if gc is not None and hasattr(gc, "mem_free") else -1
            jitter = self.jitter_us
            for j in (getattr(self.board, "jitter_us_min", 0), getattr(self.board, "jitter_us_max", 0)):
                j = -j if j < 0 else j
                jitter = j if j > jitter else jitter
            v = self._v
            v[0] = self.t_ms
            v[1] = self.board.lost_samples
            v[2] = jitter
            v[3] = self.loop_us
            v[4] = free
            v[5] = self.rx_bad
            v[6] = self.flash_writes
            self._send_v("stats", 7)
            self.jitter_us = 0
            self.loop_us = 0

    def supervise(self):
        """Feed the watchdog only if every task checked in within _STALL_US. Returns True if fed."""
        now = self.board.ticks_us()
        for k in range(len(TASK_NAMES)):
            if ticks_diff(now, self._checkin[k]) > _STALL_US:
                return False
        self.board.feed()
        return True

    def _timed(self, k, body, t0=None):
        """Run task body k, note its time in loop_us and check it in; t0: the clock already read
        at its start (the end of the body before it). Returns the clock at its end."""
        if t0 is None:
            t0 = self.board.ticks_us()
        body()
        t1 = self.board.ticks_us()  # also the check-in: one clock read fewer per wake-up
        d = ticks_diff(t1, t0)
        if d > self.loop_us:
            self.loop_us = d
        self._checkin[k] = t1
        return t1

    def step(self):
        """Run every task body once (tests and simple loops); the watchdog is fed if all is well."""
        self._timed(_T_SERIAL, self.poll_serial)
        self._timed(_T_SAMPLES, self.poll_samples)
        self._timed(_T_PACER, self.update_pacer)
        self._timed(_T_BUTTON, self.poll_button)
        self._timed(_T_SUMMARY, self.periodic)
        return self.supervise()

    # ------------------------------------------------------------------ asyncio
    async def _task(self, ks, bodies, period_ms):
        """Run the bodies (task indices ks) one after another every period_ms. The 20 ms bodies
        share one asyncio task: each wake-up of a task costs ~0.25 ms of the RP2040 (measured on
        the emulated chip), which as five tasks was 6 % of the CPU. Each body is still timed
        (loop_us) and checks in for the watchdog on its own."""
        k = ks[0]
        try:
            while not self.stopping:
                t = None
                for i in range(len(ks)):
                    k = ks[i]
                    t = self._timed(k, bodies[i], t)  # one clock read per body
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
            await _sleep_ms(_SUPERVISOR_MS)

    async def main(self):
        """begin(), then run the tasks until stop() or a task fails (whose exception is raised)."""
        self.begin()
        tasks = [
            asyncio.create_task(self._task((_T_SERIAL, _T_SAMPLES, _T_PACER, _T_BUTTON),
                                           (self.poll_serial, self.poll_samples, self.update_pacer,
                                            self.poll_button), PACER_MS)),
            asyncio.create_task(self._task((_T_SUMMARY,), (self.periodic,), _SUMMARY_MS // 4)),
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
    try:
        asyncio.run(app.main())
    finally:
        app.save_settings(True)  # a stop, a failure or Ctrl-C (deploy) keeps what was set
    return app
