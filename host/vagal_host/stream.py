"""`vagal stream`: read a board's serial lines, record them to a session file, show them live.

The reader never trusts the link: every line is checked (checksum, sequence) by vagal.protocol,
lost and corrupt lines are counted, and an unplugged board is waited for and picked up again into
the same session file, because a person moving a USB cable must not end their session.
"""

import collections
import datetime
import errno
import math
import os
import signal
import sys
import threading
import time

import serial
import serial.tools.list_ports

import vagal
from vagal import link as protocol_link
from vagal import protocol
from vagal.pacer import PHASE_ONE

from vagal_host.errors import VagalError
from vagal_host.session import SessionWriter, default_path, mean_hr_bpm

PICO_VID = 0x2E8A
BAUD = 115200  # ignored by USB CDC and ptys, but pyserial needs one
READ_TIMEOUT_S = 0.1
RETRY_S = 0.5  # reopen / re-detect interval after a disconnect
HOST_MAX_LINE = 4096  # longer lines are dropped (counted); the protocol's own limit is MAX_LINE
VIEW_HZ = 10
STATUS_S = 5.0
NO_APP_S = 5.0  # connected this long without one valid line: say the app may not be running
SPARK = "▁▂▃▄▅▆▇█"
RAW_VIEW_SAMPLES = 1000  # the Sensor strip: the last 4 s at 250 Hz
KEYS_HELP = "+/- pace rate  m next mode  Ctrl-C stop"
RATE_STEP_MBPM = 100  # one + or - press: 0.1 breaths per minute


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def find_picos():
    """Serial ports whose USB vendor id is Raspberry Pi's (2E8A), sorted by device path."""
    return sorted((p for p in serial.tools.list_ports.comports() if p.vid == PICO_VID),
                  key=lambda p: p.device)


def _describe(p):
    extra = " ".join(x for x in (p.serial_number and "serial " + p.serial_number, p.description)
                     if x and x != "n/a")
    return "%s (%s)" % (p.device, extra) if extra else p.device


def resolve_port(spec):
    """The device path for --port: 'auto' finds exactly one Pico, anything else is a path."""
    if spec in (None, "", "auto"):
        found = find_picos()
        if not found:
            raise VagalError("no Pico found (no serial port with USB id 2E8A); plug one in (not in "
                             "BOOTSEL mode), or pass --port PATH (`vagal virtual-board` prints one; "
                             "`vagal demo` needs no board)")
        if len(found) > 1:
            raise VagalError("%d Picos found: %s; choose one with --port"
                             % (len(found), ", ".join(_describe(p) for p in found)))
        return found[0].device
    if not os.path.exists(spec):
        raise VagalError("serial port %s does not exist" % spec)
    if os.path.isdir(spec):
        raise VagalError("%s is a folder, not a serial port" % spec)
    return spec


def open_port(path):
    """pyserial port with a short read timeout (so the loop stays responsive)."""
    return serial.Serial(path, BAUD, timeout=READ_TIMEOUT_S, write_timeout=0.5, exclusive=True)


def open_checked(path):
    """open_port, with VagalError naming what is wrong with the path (not a tty, busy, ...)."""
    try:
        return open_port(path)
    except (serial.SerialException, OSError) as e:
        if getattr(e, "errno", None) == errno.ENOTTY or "Inappropriate ioctl" in str(e):
            raise VagalError("%s is not a serial port (a Pico shows up as /dev/ttyACM*; "
                             "leave out --port to find it)" % path) from None
        if "exclusively lock" in str(e) or getattr(e, "errno", None) in (errno.EAGAIN, errno.EBUSY):
            raise VagalError("%s is in use by another program (a `vagal stream` still running? "
                             "mpremote, a serial terminal?): close it and try again" % path) from None
        raise VagalError("cannot open %s: %s" % (path, e)) from None


class LineSplitter:
    """Bytes in, lines out (without "\\n"); lines over maxlen come out as their length (an int)."""

    def __init__(self, maxlen=HOST_MAX_LINE):
        self.maxlen = maxlen
        self.buf = bytearray()
        self.discarded = 0  # bytes of the current overlong line thrown away so far

    def feed(self, data):
        out = []
        self.buf += data
        while True:
            i = self.buf.find(b"\n")
            if i < 0:
                break
            line = bytes(self.buf[:i])
            del self.buf[:i + 1]
            if self.discarded:
                out.append(self.discarded + len(line))
                self.discarded = 0
            elif len(line) > self.maxlen:
                out.append(len(line))
            elif line and line != b"\r":
                out.append(line)
        if len(self.buf) > self.maxlen:
            self.discarded += len(self.buf)
            self.buf.clear()
        return out

    def take_pending(self):
        """The unterminated line so far (cut by a disconnect) as bytes, or its length if overlong."""
        tail = bytes(self.buf)
        self.buf.clear()
        discarded, self.discarded = self.discarded, 0
        return discarded + len(tail) if discarded else tail


class Recorder:
    """Received bytes -> lines -> session file, link counts and live state (no serial port here)."""

    def __init__(self, writer, state):
        self.writer = writer
        self.state = state
        self.splitter = LineSplitter()

    def feed(self, data):
        for item in self.splitter.feed(data):
            if isinstance(item, int):
                self.writer.overlong(item)
                continue
            msg, _err = self.writer.received(item)
            if msg is not None:
                self.state.update(msg)

    def cut(self):
        """The link dropped: record whatever unterminated bytes are pending."""
        tail = self.splitter.take_pending()
        if isinstance(tail, int):
            self.writer.overlong(tail)
        elif tail:
            self.writer.cut(tail)


class LiveState:
    """What the view and the summary show, updated from decoded messages."""

    def __init__(self, speed=1.0, clock=time.monotonic):
        self.speed = speed
        self.clock = clock
        self.port = ""
        self.connected = False
        self.status = "starting"
        self.reconnections = 0
        self.firmware = ""
        self.fs = 0
        self.hr_x10 = 0
        self.rmssd_us = 0
        self.quality = "unknown"  # until the board reports a quality change
        self.rate_mbpm = 0
        self.phase = 0
        self.inhaling = True
        self.pacer_t_ms = 0
        self.inhale_frac = 0.4  # learnt from the phase at the in -> out turn
        self.board_ms = 0
        self.board_ms_host = None  # host clock when board_ms was seen
        self.session_state = ""
        self.beats = collections.deque(maxlen=8)  # (t_ms, ibi_us, conf)
        self.raw = collections.deque(maxlen=RAW_VIEW_SAMPLES)  # the last seconds of the sensor signal
        self.amp = 0  # the last beat's pulse amplitude (ADC counts, read_u16 scale)
        self.pace_mbpm = 0  # the pace rate a + / - key last set (0: not yet)
        self.hr_trend = collections.deque(maxlen=48)  # bpm per beat
        self.logs = collections.deque(maxlen=3)
        self.beat_count = 0
        self.ibis = []
        self.mode = ""  # pace / practice / assess / winddown, from `mode` lines
        self.breath_swing_x10 = None  # the last judged breath: HR swing, bpm x 10 (None: not valid)
        self.breath_t_ms = None
        self.coherence_x100 = None  # the last coherence update (-1: not enough clean data)
        self.assess_steps = []  # this assessment's `assess_step` messages
        self.assess_result = None  # and its `assess_result`
        self.quiet_err_ids = set()  # request ids whose `err` is expected from older firmware
        self.messages = 0  # valid lines decoded so far
        self.board_lost = 0  # samples the board lost to overrun (its `stats` lines), across its resets
        self.unsupported = ""  # why the stream must stop: the board's protocol version is not ours
        self.board = None  # (board id, boot id) of the last hello
        self.other_board = None  # set when a hello came from another board or boot than the last
        self._lost_base = 0
        self._lost_last = 0

    def update(self, msg):
        k = msg.kind
        self.messages += 1
        if len(msg.names) and msg.names[0] == "t_ms":
            self.board_ms = msg.values[0]
            self.board_ms_host = self.clock()
        if k == "raw":
            self.raw.extend(msg["x"])
        elif k == "beat":
            self.beat_count += 1
            self.amp = msg["amp"]
            ibi = msg["ibi_us"]
            self.beats.append((msg["t_ms"], ibi, msg["conf"]))
            if ibi > 0:
                self.ibis.append(ibi)
                self.hr_trend.append(60e6 / ibi)
        elif k == "hrv":
            self.hr_x10 = msg["hr_x10"]
            self.rmssd_us = msg["rmssd_us"]
        elif k == "quality":
            self.quality = msg["state"]
        elif k == "pacer":
            inhaling = msg["dir"] == "in"
            if self.inhaling and not inhaling and 0 < msg["phase"] < PHASE_ONE:
                self.inhale_frac = msg["phase"] / PHASE_ONE
            self.inhaling = inhaling
            self.rate_mbpm = msg["rate_mbpm"]
            self.phase = msg["phase"]
            self.pacer_t_ms = msg["t_ms"]
        elif k == "hello":
            self.firmware = msg["fw"]
            self.fs = msg["fs"]
            self.unsupported = protocol_link.unsupported_protocol(msg)
            board = (msg["board"], msg["boot"])
            if self.board is not None and board != self.board:
                self.other_board = board  # the streamer starts a new part for it
            self.board = board
        elif k == "session":
            self.session_state = msg["state"]
        elif k == "mode":
            self.mode = msg["mode"]
        elif k == "status":
            self.mode = msg["mode"]
            self.session_state = "start" if msg["running"] else "stop"
            if self.quality == "unknown":
                self.quality = msg["quality"]
        elif k == "breath":
            self.breath_t_ms = msg["t_ms"]
            self.breath_swing_x10 = msg["swing_x10"] if msg["valid"] else None
        elif k == "coherence":
            self.coherence_x100 = msg["ratio_x100"]
        elif k == "assess_step":
            if self.assess_result is not None:  # a new assessment
                self.assess_steps, self.assess_result = [], None
            self.assess_steps.append(_AssessRow(msg))
        elif k == "assess_result":
            self.assess_result = _AssessRow(msg)
        elif k == "stats":
            lost = msg["lost"]
            if lost < self._lost_last:  # the board restarted: its count began again
                self._lost_base += self._lost_last
            self._lost_last = lost
            self.board_lost = self._lost_base + lost
        elif k == "err" and msg["id"] in self.quiet_err_ids:
            self.quiet_err_ids.discard(msg["id"])  # e.g. `date` on firmware that predates it
        elif k in ("log", "err"):
            level = msg["level"] if k == "log" else "error"
            text = msg["text"] if k == "log" else msg["reason"]
            self.logs.append("%s: %s" % (level, text))

    def board_now_ms(self):
        """Board session time now, extrapolated from the last message at the expected speed."""
        if self.board_ms_host is None:
            return 0
        return self.board_ms + (self.clock() - self.board_ms_host) * 1000 * self.speed

    def breath(self):
        """(fill 0..1, inhaling) of the pacer now, extrapolated from its last message."""
        if not self.rate_mbpm:
            return 0.0, True
        dt_ms = max(0.0, self.board_now_ms() - self.pacer_t_ms)
        ph = (self.phase / PHASE_ONE + dt_ms * self.rate_mbpm / 60e6) % 1.0
        split = min(max(self.inhale_frac, 0.05), 0.95)
        if ph < split:
            x = ph / split
            return 0.5 - 0.5 * math.cos(math.pi * x), True
        x = (ph - split) / (1 - split)
        return 0.5 + 0.5 * math.cos(math.pi * x), False

    def mean_hr(self):
        return mean_hr_bpm(self.ibis)


def _clock_text(s):
    s = int(s)
    return "%d:%02d:%02d" % (s // 3600, s // 60 % 60, s % 60)


def _sparkline(values, lo=None, hi=None):
    """One character a value; the scale is the values' 5th-95th percentile (an outlier sits at the
    top or bottom instead of flattening the rest)."""
    if not values:
        return ""
    ordered = sorted(values)
    if lo is None:
        lo = ordered[len(ordered) * 5 // 100]
    if hi is None:
        hi = ordered[(len(ordered) - 1) * 95 // 100]
    span = max(hi - lo, 1e-9)
    return "".join(SPARK[min(len(SPARK) - 1, max(0, int((v - lo) / span * len(SPARK))))] for v in values)


def _waveform(samples, width):
    """The sensor signal squeezed into `width` characters: each the mean of its share of samples."""
    n = len(samples)
    if n < width:
        return _sparkline(list(samples), min(samples), max(samples)) if samples else ""
    cols = []
    for i in range(width):
        a, b = i * n // width, (i + 1) * n // width
        chunk = [samples[k] for k in range(a, b)]
        cols.append(sum(chunk) / len(chunk))
    return _sparkline(cols, min(cols), max(cols))


_QUALITY_STYLE = {"ok": "bold green", "learning": "cyan", "unknown": "dim"}  # the rest: problems, yellow


def render(state, counts, session_s, session_path, width=40):
    """The live view as a rich renderable (a pure function of the state, so tests can render it)."""
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    received, lost, corrupt, partial = counts
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True, min_width=12)
    grid.add_column()
    if state.hr_x10:
        hr = Text("%.1f bpm" % (state.hr_x10 / 10), style="bold")
        hr.append("   RMSSD %d ms" % round(state.rmssd_us / 1000), style="dim")
    elif state.beats and state.beats[-1][1] > 0:
        hr = Text("%.0f bpm (settling)" % (60e6 / state.beats[-1][1]))
    else:
        hr = Text("--", style="dim")
    grid.add_row("Heart rate", hr)
    grid.add_row("Signal", Text(state.quality, style=_QUALITY_STYLE.get(state.quality, "bold yellow")))
    fill, inhaling = state.breath()
    n = int(round(fill * width))
    bar = Text("█" * n, style="bold blue" if inhaling else "blue")
    bar.append("░" * (width - n), style="dim")
    if state.rate_mbpm:
        bar.append("  %.1f /min" % (state.rate_mbpm / 1000), style="dim")
        label = "Breathe in" if inhaling else "Breathe out"
    else:
        label = "Pacer"
        bar = Text("(no pacer yet)", style="dim")
    grid.add_row(label, bar)
    grid.add_row("HR trend", Text(_sparkline(list(state.hr_trend)), style="magenta"))
    if state.raw:
        sig = Text(_waveform(state.raw, width), style="red")
        lo, hi = min(state.raw), max(state.raw)
        sig.append("  range %d..%d" % (lo, hi), style="dim")
        if state.amp:
            sig.append("  pulse %d" % state.amp, style="dim")
        grid.add_row("Sensor", sig)
    if state.mode or state.breath_t_ms is not None or state.coherence_x100 is not None:
        grid.add_row("Mode", Text(state.mode or "--", style="bold"))
        grid.add_row("Breath swing", Text(_swing_text(state)))
        grid.add_row("Coherence", Text(_coherence_text(state)))
    if state.assess_steps or state.assess_result is not None:
        grid.add_row("Assessment", _assessment_text(state))
    beats = Text()
    for t_ms, ibi, conf in reversed(state.beats):
        if beats:
            beats.append("\n")
        beats.append("%9.1f s" % (t_ms / 1000), style="dim")
        if ibi > 0:
            beats.append("  %4d ms  %5.1f bpm" % (ibi // 1000, 60e6 / ibi))
        else:  # no interval: the session's first beat, or the first after a lost pulse
            beats.append("  first beat       " if state.beat_count <= len(state.beats) and
                         t_ms == state.beats[0][0] else "  after a gap      ")
        beats.append("  conf %3d" % conf, style="dim")
    grid.add_row("Beats (%d)" % state.beat_count, beats if beats else Text("--", style="dim"))
    link = Text("%d lines  lost " % received)
    link.append(str(lost), style="bold red" if lost else "green")
    link.append("  corrupt ")
    link.append(str(corrupt), style="bold red" if corrupt else "green")
    if partial:
        link.append("  partial %d" % partial, style="yellow")
    if state.reconnections:
        link.append("  reconnected %dx" % state.reconnections, style="yellow")
    grid.add_row("Link", link)
    grid.add_row("Session", Text("%s   board %s   -> %s" % (
        _clock_text(session_s), _clock_text(state.board_ms / 1000), session_path)))
    if state.logs:
        grid.add_row("Log", Text("\n".join(state.logs), style="dim"))
    status = "[green]connected[/]" if state.connected else "[bold red]%s[/]" % state.status
    title = "vagal stream  %s  %s" % (state.port, status)
    if state.firmware:
        title += "  fw %s %d Hz" % (state.firmware, state.fs)
    return Panel(grid, title=title, title_align="left", subtitle=KEYS_HELP, subtitle_align="right")


def _swing_text(state):
    if state.breath_t_ms is None:
        return "--"
    if state.breath_swing_x10 is None:
        return "(last breath not judged: unclear signal or too few beats)"
    return "%.1f bpm" % (state.breath_swing_x10 / 10)


class _AssessRow:
    """An assess_step / assess_result message's fields as attributes (what assessment_text reads)."""

    def __init__(self, msg):
        for name in msg.names:
            setattr(self, name, msg[name])


def _assessment_text(state):
    """Rate: swing per step (the largest bold), then the result in the report's words."""
    from rich.text import Text

    from vagal_host.assessment_text import level_x10, result_text

    t = Text()
    r = state.assess_result
    top = max((level_x10(s) for s in state.assess_steps), default=0)
    for s in state.assess_steps:
        if t:
            t.append("  ")
        t.append("%.2f: %.1f" % (s.rate_mbpm / 1000, level_x10(s) / 10),
                 style="bold green" if level_x10(s) == top and top > 0 else "")
    if state.assess_steps:
        t.append(" bpm swing", style="dim")
    if r is not None:
        if t:
            t.append("\n")
        t.append(result_text(r), style="bold" if r.state == "done" else "yellow")
    return t


def _coherence_text(state):
    c = state.coherence_x100
    if c is None:
        return "--"
    if c < 0:
        return "(settling)"
    r = c / 100.0
    return "%.0f%% in one wave" % (100.0 * r / (1.0 + r))  # as the report shows it (report.coherence_pct)


def status_line(state, counts, session_s):
    """The headless mode's periodic one-line status."""
    received, lost, corrupt, partial = counts
    hr = "%.1f" % (state.hr_x10 / 10) if state.hr_x10 else "--"
    pacer = "%.1f/min %s" % (state.rate_mbpm / 1000, "in" if state.inhaling else "out") \
        if state.rate_mbpm else "--"
    conn = "connected" if state.connected else state.status
    extra = ""
    if state.mode:
        extra = "  mode %s  swing %s  coherence %s" % (state.mode, _swing_text(state), _coherence_text(state))
    return ("[%8.1f s] %s  board %.1f s  HR %s  quality %s  beats %d  pacer %s%s  lines %d  lost %d  "
            "corrupt %d" % (session_s, conn, state.board_ms / 1000, hr, state.quality, state.beat_count,
                            pacer, extra, received, lost, corrupt))


class Streamer:
    """One streaming session: a port (path or auto), a session file, a live state, an optional view."""

    def __init__(self, port="auto", session_path=None, overwrite=False, speed=1.0, header=None,
                 clock=time.monotonic, err=None, app_check=True, signal=False):
        self.spec = port
        self.signal = signal  # ask the board for its raw samples while streaming (the Sensor strip)
        self.auto = port in (None, "", "auto")
        self.clock = clock
        self.err = err if err is not None else sys.stderr
        self.closed = False
        self.duration = 0.0
        self.app_check = app_check  # warn when no valid line comes (off for the virtual board: it is the app)
        self.path = resolve_port(port)
        self.session_path = session_path or default_path()
        self.state = LiveState(speed, clock)
        self.ser = None
        self.ser = open_checked(self.path)
        extra = {"speed": str(speed)} if speed != 1.0 else {}
        extra.update(header or {})
        try:
            self.writer = SessionWriter(self.session_path, self.path, vagal.VERSION, overwrite, extra,
                                        clock=clock)
        except BaseException:
            self.ser.close()
            raise
        self.recorder = Recorder(self.writer, self.state)
        self._next_id = 0
        self.state.port = self.path
        self._connected("connected")
        self._next_retry = 0.0

    # ------------------------------------------------------------------ connection
    def _connected(self, event):
        self.state.connected = True
        self.state.status = "connected"
        self.state.port = self.path
        self.writer.event(event, self.path)
        if event == "reconnected":
            self.state.reconnections += 1
        self._quiet_check = (self.clock() + NO_APP_S, self.state.messages) if self.app_check else None
        self.notice("%s %s" % (event, self.path))
        # a line end first, so a stray byte an earlier client left on the port ends as a line of
        # its own instead of joining the first command
        self._write(b"\n")
        # ask for the hello line (firmware version, sample rate), and tell the board today's date (it
        # has no battery clock; it dates assessment results). Older firmware answers `date` with err.
        self.command("hello")
        rid = self.command("date", self.today())
        if rid is not None:
            self.state.quiet_err_ids.add(rid)
        # a Pico starts its session at power-up, long before the host connects: ask what it is
        # doing, so the view shows the mode and the pacer at once rather than "--"
        rid = self.command("status")
        if rid is not None:
            self.state.quiet_err_ids.add(rid)
        if self.signal:  # again at every reconnection: a board that restarted has raw off
            self.command("raw", "on")

    def today(self):
        return datetime.date.today().isoformat()

    def command(self, kind, *args):
        """Send one command line; -> its request id, or None if the link is down (not an error:
        the board may be unplugged, and the stream carries on)."""
        if self.ser is None:
            return None
        self._next_id = self._next_id % 60000 + 1
        if not self._write(protocol.encode_command(kind, self._next_id, *args).encode()):
            return None
        return self._next_id

    def key(self, ch):
        """A key pressed in the live view -> what it did (shown as a notice), or None if no key.

        + / -: the pace rate 0.1 breaths/min up / down (the `rate_mbpm` setting: pace mode's rate);
        m: the next mode (pace -> practice -> assess -> wind-down), which also starts a session."""
        from vagal.pacer import RATE_MAX, RATE_MIN
        from vagal.settings import MODES

        st = self.state
        if ch in ("+", "=", "-", "_"):
            lo, hi = RATE_MIN, RATE_MAX  # the rate_mbpm setting's range
            base = st.pace_mbpm or st.rate_mbpm or 6000
            new = min(max(base + (RATE_STEP_MBPM if ch in "+=" else -RATE_STEP_MBPM), lo), hi)
            if self.command("set", "rate_mbpm=%d" % new) is None:
                return "not sent: the board is not connected"
            st.pace_mbpm = new
            return "pace rate %.1f breaths/min%s" % (new / 1000.0, "" if st.mode in ("pace", "") else
                                                    " (pace mode's rate; now in %s: m changes mode)" % st.mode)
        if ch in ("m", "M"):
            mode = MODES[(MODES.index(st.mode) + 1) % len(MODES)] if st.mode in MODES else MODES[0]
            if self.command("mode", mode) is None:
                return "not sent: the board is not connected"
            return "mode %s" % mode
        return None

    def _write(self, data):
        try:
            self.ser.write(data)
        except (serial.SerialException, OSError):
            return False
        return True

    def _disconnected(self, why):
        self.recorder.cut()
        self.writer.event("disconnected", why)
        self.writer.counts()
        try:
            self.ser.close()
        except (serial.SerialException, OSError):
            pass
        self.ser = None
        self.state.connected = False
        self.state.status = "disconnected, waiting for the board"
        self.notice("disconnected (%s); retrying every %.1f s" % (why, RETRY_S))
        self._next_retry = self.clock() + RETRY_S

    def _try_reconnect(self):
        self._next_retry = self.clock() + RETRY_S
        if self.auto:
            found = find_picos()
            if len(found) != 1:
                return False
            path = found[0].device
        else:
            path = self.path
            if not os.path.exists(path):
                return False
        try:
            self.ser = open_port(path)
        except (serial.SerialException, OSError):
            self.ser = None
            return False
        self.path = path
        self._connected("reconnected")
        return True

    def notice(self, text):
        """Hook for connection news (the headless mode prints it; the live view shows the state)."""

    # ------------------------------------------------------------------ data
    def poll(self):
        """One step: read what is there (up to READ_TIMEOUT_S), or retry the connection when due."""
        if self.ser is None:
            now = self.clock()
            if now < self._next_retry:
                time.sleep(min(READ_TIMEOUT_S, self._next_retry - now))
            else:
                self._try_reconnect()
        else:
            try:
                data = self.ser.read(self.ser.in_waiting or 1)
            except (serial.SerialException, OSError) as e:
                self._disconnected(str(e) or type(e).__name__)
                data = b""
            if data:
                self.recorder.feed(data)
                if self.state.other_board is not None:
                    self._other_board()
                if self.state.unsupported:
                    self.close()  # the session file keeps what came, up to that hello
                    raise VagalError(self.state.unsupported)
            self._check_quiet()
        self.writer.tick()

    def _other_board(self):
        """A hello from a different board (or the same one restarted) on this port: say so; its
        data is a new session part in the file (export.split_parts / analysis split there)."""
        board, boot = self.state.other_board
        self.state.other_board = None
        text = "a different board (id %s, boot %s) on %s: its data starts a new session part" % (
            board, boot, self.path)
        self.writer.event("note", text)
        self.state.logs.append("warn: " + text)
        self.notice(text)

    def _check_quiet(self):
        """A board at the MicroPython prompt (flashed, never deployed) sends no vagal lines: say so."""
        if self._quiet_check is None or self.clock() < self._quiet_check[0]:
            return
        if self.state.messages == self._quiet_check[1]:
            received, _, corrupt, _ = self.counts()
            what = "nothing" if not (received or corrupt) else "no valid vagal line"
            text = ("%s from %s in %g s: is the vagal app running on it? (`vagal deploy` puts it there)"
                    % (what, self.path, NO_APP_S))
            self.state.logs.append("warn: " + text)
            self.notice(text)
        self._quiet_check = None

    def counts(self):
        return self.writer.counter.totals()

    def elapsed(self):
        """Session seconds so far (fixed once the session is closed)."""
        return self.duration if self.closed else self.writer.now()

    def run(self, duration=None, stop=None, view=None, status_every=None, keys_from=None):
        """Poll until duration (host s), stop(self) is true, or Ctrl-C; then close. -> True if Ctrl-C.

        view: "live" for the rich Live display (keys from the terminal: KEYS_HELP), "headless" for a
        status line on stderr every status_every seconds, None for nothing. keys_from: anything with
        read() -> str and close() instead of the terminal (tests).
        """
        interrupted = False
        live = None
        if view == "live":
            from rich.live import Live
            live = Live(self.renderable(), auto_refresh=False, transient=False, redirect_stderr=False)
            live.start()
        elif view == "headless":
            self.notice = lambda text: print("[%8.1f s] %s" % (self.elapsed(), text), file=self.err,
                                             flush=True)
            self.notice("streaming %s -> %s" % (self.path, self.session_path))
        next_view = 0.0
        next_status = self.clock() + (status_every or STATUS_S)
        keys = _KeyReader() if view == "live" and keys_from is None else keys_from
        old_term = None
        if threading.current_thread() is threading.main_thread():  # `kill` from a script: end cleanly
            old_term = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            while True:
                if duration is not None and self.elapsed() >= duration:
                    break
                if stop is not None and stop(self):
                    break
                self.poll()
                for ch in (keys.read() if keys is not None else ""):
                    said = self.key(ch)
                    if said:
                        self.state.logs.append("you: " + said)
                now = self.clock()
                if live is not None and now >= next_view:
                    live.update(self.renderable(), refresh=True)
                    next_view = now + 1.0 / VIEW_HZ
                if view == "headless" and now >= next_status:
                    print(status_line(self.state, self.counts(), self.elapsed()), file=self.err, flush=True)
                    next_status = now + (status_every or STATUS_S)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if keys is not None:
                keys.close()
            if old_term is not None:
                signal.signal(signal.SIGTERM, old_term)
            if live is not None:
                live.update(self.renderable(), refresh=True)
                live.stop()
                if not live.console.is_terminal:
                    live.console.line()  # a terminal gets its newline from stop(); a pipe does not
            self.close()
        return interrupted

    def renderable(self):
        return render(self.state, self.counts(), self.elapsed(), self.session_path)

    def close(self):
        if self.closed:
            return
        self.duration = self.writer.now()
        self.closed = True
        if self.ser is not None:
            if self.signal:
                self.command("raw", "off")  # the board stops sending samples nobody reads
            self.recorder.cut()
            try:
                self.ser.close()
            except (serial.SerialException, OSError):
                pass
            self.ser = None
        self.writer.close()

    def summary(self):
        """A short end-of-session report (several lines)."""
        received, lost, corrupt, partial = self.counts()
        st = self.state
        hr = st.mean_hr()
        lines = [
            "session: %.1f s (board %.1f s), %d beats, mean HR %s" % (
                self.elapsed(), st.board_ms / 1000, st.beat_count, "%.1f bpm" % hr if hr else "--"),
            "link: %d lines, %d lost, %d corrupt%s%s" % (
                received, lost, corrupt, ", %d partial" % partial if partial else "",
                ", %d reconnection%s" % (st.reconnections, "" if st.reconnections == 1 else "s")
                if st.reconnections else ""),
            "session file: %s" % self.session_path,
        ]
        if st.board_lost:
            lines.append("board: %d samples lost to overrun (its sampling fell behind; beats in those gaps "
                         "are missing)" % st.board_lost)
        from vagal_host.cli import command_name

        vagal = command_name()
        lines += [
            "next: %s report %s (a page with figures), or %s export %s --format csv"
            % (vagal, _quoted(self.session_path), vagal, _quoted(self.session_path)),
        ]
        return "\n".join(lines)


class _KeyReader:
    """Single key presses from the terminal without Enter (cbreak mode, restored on close); reads
    nothing when stdin is not a terminal (a pipe, a script)."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stdin
        self.saved = None
        try:
            if self.stream.isatty():
                import termios
                import tty

                self.fd = self.stream.fileno()
                self.saved = termios.tcgetattr(self.fd)
                tty.setcbreak(self.fd)
        except (OSError, ValueError, ImportError, AttributeError):
            self.saved = None

    def read(self):
        if self.saved is None:
            return ""
        import select

        out = ""
        while select.select([self.fd], [], [], 0)[0]:
            data = os.read(self.fd, 64)
            if not data:
                break
            out += data.decode("ascii", "ignore")
        return out

    def close(self):
        if self.saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
            self.saved = None


def _quoted(path):
    """A path as a shell would need it typed (the summary's commands are meant to be copied)."""
    import shlex

    return shlex.quote(path)
