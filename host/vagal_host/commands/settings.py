"""`vagal settings`: read or change the settings stored on the board (rate, session length, ...).

Why a command: the board has one button and no screen, so its settings (`session_min`, `rate_mbpm`,
`brightness`, ...) can only be changed over USB. Every value is checked here with the firmware's own
vagal.settings before anything is sent, so a typo changes nothing; the board checks it again and saves
each setting atomically.
"""

import time

from vagal_host.errors import VagalError

NAME = "settings"
HELP = ("show the board's settings, or change some: vagal settings session_min=20 rate_mbpm=5.5 "
        "(rates in breaths/min, or the board's thousandths: 5500)")

ANSWER_S = 5.0  # a board running the app answers a command within milliseconds
# What the app puts in force during a running session (App.apply_settings); the others are read
# when a session starts (session_min, mode, the wind-down and assessment ones) or at power-up (raw,
# autostart)
AT_ONCE = ("rate_mbpm", "inhale_pct", "brightness", "haptics", "haptic_pct", "tuning", "resonance_mbpm")


def add_arguments(p):
    p.add_argument("assignments", nargs="*", metavar="KEY=VALUE",
                   help="settings to change (none: show them all); the keys and their ranges are in "
                        "docs/protocol.md, Settings")
    p.add_argument("--port", default="auto", metavar="PATH|auto",
                   help="serial port path, or auto to find the one Pico by its USB id 2E8A (default)")
    p.add_argument("--defaults", action="store_true",
                   help="put every setting back to its default (the stored resonance rate too)")


def parse_assignments(texts):
    """['session_min=20', ...] -> [(key, wire text)], each checked by the firmware's rules."""
    from vagal import settings as settings_mod

    out = []
    for text in texts:
        key, eq, value = text.partition("=")
        if not eq or not key:
            raise VagalError("%r is not KEY=VALUE (e.g. session_min=20)" % text)
        value = breaths_per_min(key, value)
        try:
            out.append((key, settings_mod.format_value(settings_mod.parse(key, value))))
        except settings_mod.SettingsError as e:
            raise VagalError("%s; nothing was changed" % e) from None
    return out


def breaths_per_min(key, value):
    """A rate setting (`*_mbpm`: thousandths of a breath per minute, as the board keeps it) may be
    given in breaths per minute, the unit every command and page shows: rate_mbpm=5.5 is 5500. A
    value under 100 is read that way (the settings' rates are 3000..12000 or 0); -> the board's text."""
    if not key.endswith("_mbpm"):
        return value
    try:
        v = float(value)
    except ValueError:
        return value  # the board's own check names the problem
    if 0 < v < 100:
        return str(int(round(v * 1000)))
    return value


def _rate_note(key, value):
    if key.endswith("_mbpm") and value.isdigit() and int(value) > 0:
        return " (%.2f breaths/min)" % (int(value) / 1000.0)
    return ""


class BoardCommands:
    """Send commands over an open port and wait for each one's ok/err among the board's other lines."""

    def __init__(self, ser, path, answer_s=None):
        from vagal_host.stream import LineSplitter

        self.ser = ser
        self.path = path
        self.answer_s = ANSWER_S if answer_s is None else answer_s
        self.splitter = LineSplitter()
        self.next_id = 0

    def send(self, kind, *args):
        """-> (ok text, [Message] the board sent for it before its answer); VagalError on err/timeout."""
        import serial

        from vagal import protocol

        self.next_id += 1
        rid = self.next_id
        # before the first command a line end, so a stray byte an earlier client left on the port
        # (Ctrl-C, half a command) makes a line of its own, not part of this one
        line = (b"\n" if rid == 1 else b"") + protocol.encode_command(kind, rid, *args).encode()
        try:
            self.ser.write(line)
        except (serial.SerialException, OSError) as e:
            raise VagalError("cannot write to %s: %s" % (self.path, e)) from None
        data = []
        deadline = time.monotonic() + self.answer_s
        while time.monotonic() < deadline:
            try:
                chunk = self.ser.read(self.ser.in_waiting or 1)
            except (serial.SerialException, OSError) as e:
                raise VagalError("lost %s while waiting for the board: %s" % (self.path, e)) from None
            for line in self.splitter.feed(chunk):
                if isinstance(line, int):
                    continue
                try:
                    msg = protocol.decode(line.decode("ascii", "replace"))
                except protocol.ProtocolError:
                    continue  # a damaged line: the answer, if it was this one, times out below
                if msg.kind in ("ok", "err") and msg["id"] == rid:
                    if msg.kind == "err":
                        raise VagalError("the board refused `%s %s`: %s"
                                         % (kind, " ".join(args), msg["reason"]))
                    return msg["text"], data
                if msg.kind == "setting":
                    data.append(msg)
        raise VagalError("no answer to `%s` from %s in %g s: is it running the vagal app? (`vagal deploy` "
                         "puts it there)" % (kind, self.path, self.answer_s))


def _show(msgs):
    from vagal import settings as settings_mod

    defaults = settings_mod.defaults()
    width = max([len(m["key"]) for m in msgs] + [8])
    lines = []
    for m in msgs:
        key, value = m["key"], m["value"]
        default = settings_mod.format_value(defaults[key]) if key in defaults else None
        note = "" if default is None or default == value else "   (default %s)" % default
        lines.append("  %-*s  %s%s%s" % (width, key, value, _rate_note(key, value), note))
    return lines


def run(args):
    from vagal_host.stream import open_checked, resolve_port

    pairs = parse_assignments(args.assignments)
    if pairs and args.defaults:
        raise VagalError("--defaults and KEY=VALUE together: do one, then the other")
    path = resolve_port(args.port)
    ser = open_checked(path)
    try:
        board = BoardCommands(ser, path)
        if args.defaults:
            _, msgs = board.send("defaults")
            print("every setting on %s is back to its default:" % path)
            print("\n".join(_show(msgs)))
            return 0
        done = []
        for key, value in pairs:
            try:
                board.send("set", "%s=%s" % (key, value))
            except VagalError as e:
                raise VagalError("%s%s" % (e, "; already saved: " + ", ".join(done) if done else
                                           "; nothing was changed")) from None
            done.append("%s=%s" % (key, value))
        if done:
            print("saved on the board (%s): %s" % (path, ", ".join(done)))
            later = [key for key, _ in pairs if key not in AT_ONCE]
            if later:
                print("%s: from the next session (raw, autostart: from the next power-up)"
                      % ", ".join(later))
            else:
                print("in force at once; the board keeps them across restarts")
            return 0
        _, msgs = board.send("get")
        print("settings on %s (the value, and the default where it differs):" % path)
        print("\n".join(_show(msgs)))
        print("change: vagal settings KEY=VALUE ...   (keys and ranges: docs/protocol.md, Settings)")
        return 0
    finally:
        ser.close()
