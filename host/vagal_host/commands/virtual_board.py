"""`vagal virtual-board`: run the firmware as a virtual Pico on a pseudo-terminal until Ctrl-C."""

import time

from vagal_host.commands.demo import _board_settings
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
    p.add_argument("--resonance", type=float, default=0.09, metavar="HZ", help="person's resonance frequency, Hz (0.075-0.11)")
    p.add_argument("--hr", type=float, default=65.0, metavar="BPM", help="person's mean heart rate, bpm")
    p.add_argument("--adherence", type=float, default=0.9, metavar="A", help="how closely the person follows the pacer, 0..1")
    p.add_argument("--seed", type=int, default=1, metavar="N", help="person's random seed")
    p.add_argument("--duration", type=float, metavar="S",
                   help="stop after S real (wall-clock) seconds (default: until Ctrl-C)")
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
    if not (0.075 <= args.resonance <= 0.11):
        raise VagalError("--resonance %g outside 0.075..0.11 Hz" % args.resonance)
    if not (30 <= args.hr <= 200):
        raise VagalError("--hr %g outside 30..200 bpm" % args.hr)
    if not (0 <= args.adherence <= 1):
        raise VagalError("--adherence %g outside 0..1" % args.adherence)
    speed = args.speed
    if speed != "max":
        try:
            if float(speed) <= 0:
                raise ValueError
        except ValueError:
            raise VagalError("--speed must be a positive number or 'max', got %r" % speed)
    if (args.column or args.fs is not None or args.adc_bits) and not args.recording:
        raise VagalError("--%s needs --recording (it describes the recording's signal)"
                         % ("column" if args.column else "fs" if args.fs is not None else "adc-bits"))
    buttons = parse_presses(args.press) if args.press else None
    board = VirtualBoard(speed=speed, recording=args.recording, column=args.column, fs=args.fs,
                         adc_bits=args.adc_bits,
                         person=person_spec(args.seed, args.hr, args.resonance, args.adherence),
                         buttons=buttons, settings_path=_board_settings(args.board_dir))
    with board:
        print(board.port, flush=True)  # first line alone, so a script can read the path
        print("virtual board log: %s" % board.log_path, flush=True)
        print("next, in another terminal: vagal stream --port %s   (Ctrl-C here stops the board)"
              % board.port, flush=True)
        t0 = time.monotonic()
        try:
            while args.duration is None or time.monotonic() - t0 < args.duration:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
    return 0
