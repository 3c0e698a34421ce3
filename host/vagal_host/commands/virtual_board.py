"""`vagal virtual-board`: run the firmware as a virtual Pico on a pseudo-terminal until Ctrl-C."""

import signal
import time

from vagal_host.commands.demo import _board_settings, _number, resonance_hz
from vagal_host.errors import VagalError
from vagal_host.recording import ADC_BITS
from vagal_host.virtual import VirtualBoard, person_spec

NAME = "virtual-board"
HELP = "run the firmware in the MicroPython unix port behind a pseudo-terminal (prints its path)"


def add_arguments(p):
    p.add_argument("--recording", metavar="FILE", help="feed the ADC from this recording (CSV or WFDB) instead of a person")
    p.add_argument("--column", metavar="NAME", help="recording column / signal name")
    p.add_argument("--fs", type=float, metavar="HZ", help="recording sample rate (Hz) if the file does not say")
    p.add_argument("--adc-bits", type=int, choices=ADC_BITS, metavar="{10,12,16}",
                   help="the recording holds raw ADC counts of this width (default: guessed)")
    p.add_argument("--speed", default="1", metavar="N|max",
                   help="virtual clock speed: N times real time (default 1), or 'max'")
    p.add_argument("--resonance", default="5.4", metavar="BR_MIN",
                   help="person's resonance rate in breaths/min, 4.5-6.6 (default 5.4)")
    p.add_argument("--hr", type=float, default=65.0, metavar="BEATS_MIN",
                   help="person's mean heart rate in beats/min (default 65)")
    p.add_argument("--adherence", type=float, default=0.9, metavar="A", help="how closely the person follows the pacer, 0..1")
    p.add_argument("--seed", type=int, default=1, metavar="N", help="person's random seed")
    p.add_argument("--duration", metavar="S",
                   help="stop after S seconds of board (virtual) time, as vagal demo (default: until "
                        "Ctrl-C); needs a number for --speed")
    p.add_argument("--board-dir", metavar="DIR",
                   help="keep the board's settings and journal in DIR across runs (default: a temporary folder)")
    p.add_argument("--press", metavar="T[:HOLD],...",
                   help="press the button at virtual second T for HOLD s (default 0.2: a short press; "
                        "hold >= 0.8 s for a long press), e.g. --press 30,60:1.5")


def parse_presses(text):
    """'30,60:1.5' -> the fake machine's 't_s:hold_s,...' schedule; VagalError naming a bad entry."""
    out = []
    last = -1.0
    for part in text.split(","):
        part = part.strip()
        t_text, _, hold_text = part.partition(":")
        try:
            t = float(t_text)
            hold = float(hold_text) if hold_text else 0.2
        except ValueError:
            raise VagalError("--press: %r is not T or T:HOLD (seconds)" % part) from None
        if not (t >= 0 and 0.05 <= hold <= 60) or t != t:
            raise VagalError("--press: %r needs T >= 0 and HOLD 0.05..60 s" % part)
        if t <= last:
            raise VagalError("--press: %r overlaps or precedes the press before it" % part)
        last = t + hold
        out.append("%g:%g" % (t, hold))
    return ",".join(out)


def run(args):
    resonance = resonance_hz(args.resonance)
    if not (30 <= args.hr <= 200):
        raise VagalError("--hr %g outside 30..200 bpm" % args.hr)
    if not (0 <= args.adherence <= 1):
        raise VagalError("--adherence %g outside 0..1" % args.adherence)
    speed = args.speed
    if speed != "max":
        speed = _number("--speed", speed, positive=True)  # as `vagal demo`: no nan, inf or <= 0
    duration = _number("--duration", args.duration, positive=True) if args.duration is not None else None
    if duration is not None and speed == "max":
        raise VagalError("--duration counts board seconds, and with --speed max they run as fast as they "
                         "can: give --speed N, or stop the board with Ctrl-C")
    wall_s = None if duration is None else duration / speed  # board seconds -> real ones
    if (args.column or args.fs is not None or args.adc_bits) and not args.recording:
        raise VagalError("--%s needs --recording (it describes the recording's signal)"
                         % ("column" if args.column else "fs" if args.fs is not None else "adc-bits"))
    buttons = parse_presses(args.press) if args.press else None
    board = VirtualBoard(speed=speed, recording=args.recording, column=args.column, fs=args.fs,
                         adc_bits=args.adc_bits,
                         person=person_spec(args.seed, args.hr, resonance, args.adherence),
                         buttons=buttons, settings_path=_board_settings(args.board_dir))
    # SIGTERM and SIGHUP end it like Ctrl-C, so the board's MicroPython process (in a session of its
    # own, out of reach of the terminal's signals) is always stopped with it
    old = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    reported = 0
    try:
        board.start()
        print(board.port, flush=True)  # first line alone, so a script can read the path
        print("virtual board log: %s" % board.log_path, flush=True)
        print("next, in another terminal: vagal stream --port %s   (Ctrl-C here stops the board)"
              % board.port, flush=True)
        t0 = time.monotonic()
        while wall_s is None or time.monotonic() - t0 < wall_s:
            time.sleep(0.2)
            reported = _report_dropped(board, reported)
    except KeyboardInterrupt:
        pass
    finally:
        for sig in old:
            signal.signal(sig, signal.SIG_IGN)  # a second signal must not cut the clean-up short
        board.stop()
        for sig, handler in old.items():
            signal.signal(sig, handler)
    _report_dropped(board, reported)
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _report_dropped(board, reported):
    """Say (once a second at most, and at the end) how many command lines the board dropped."""
    n = getattr(board, "dropped_input_lines", 0)
    now = time.monotonic()
    if n != reported and now >= getattr(board, "_dropped_said_at", 0) + 1.0:
        board._dropped_said_at = now
        print("the virtual board dropped %d command lines (%d bytes) so far: more came than its firmware "
              "could read" % (n, board.dropped_input_bytes), flush=True)
        return n
    return reported
