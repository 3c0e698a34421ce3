"""`vagal demo`: the virtual board with a simulated person, streamed like a real Pico (`make run`)."""

import json
import sys
import time

from vagal_host.commands.stream import add_library_arguments
from vagal_host.errors import VagalError

NAME = "demo"
HELP = "run the virtual board with a simulated person and stream it (headless unless --live)"

SLOW_FACTOR = 4.0  # give up if the virtual board runs this much slower than --speed asks
SLOW_GRACE_S = 20.0
SILENT_S = 10.0  # a board that has sent no line at all by then is not going to
MAX_RESPAWNS = 3  # the board is restarted like a reset Pico, but not forever
STATUS_BOARD_S = 5.0  # headless status about every 5 board seconds (at least 1 s apart)


def _number(name, text, lo=None, hi=None, positive=False):
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise VagalError("%s must be a number, not %r" % (name, text)) from None
    if v != v or v in (float("inf"), float("-inf")) or (positive and not v > 0):
        raise VagalError("%s must be a number > 0, not %r" % (name, text))
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise VagalError("%s %g outside %g..%g" % (name, v, lo, hi))
    return v


RESONANCE_RANGE = (4.5, 6.6)  # breaths per minute: the simulated person's 0.075-0.11 Hz


def resonance_hz(text):
    """--resonance in breaths per minute (the unit of every rate the user sees) -> Hz for the person;
    a value below 1 is the old Hz form: VagalError saying what it is in breaths/min."""
    v = _number("--resonance", text, positive=True)
    if v < 1:
        raise VagalError("--resonance is in breaths per minute (%g-%g); %g looks like Hz, which is %.2f "
                         "breaths per minute" % (RESONANCE_RANGE + (v, v * 60)))
    if not RESONANCE_RANGE[0] <= v <= RESONANCE_RANGE[1]:
        raise VagalError("--resonance %g outside %g..%g breaths per minute" % ((v,) + RESONANCE_RANGE))
    return v / 60.0


def add_arguments(p):
    p.add_argument("--duration", metavar="S",
                   help="stop after S seconds of board (virtual) time (default: until Ctrl-C)")
    p.add_argument("--speed", default="1", metavar="N",
                   help="run the virtual board N times faster than real time (default 1)")
    p.add_argument("--session", metavar="FILE",
                   help="session file to write (default sessions/<timestamp>.vagal)")
    p.add_argument("--overwrite", action="store_true", help="replace the session file if it exists")
    p.add_argument("--live", action="store_true", help="show the live terminal view (default: headless)")
    p.add_argument("--rate", metavar="BR_MIN",
                   help="pacer rate in breaths/min, in pace mode unless --mode says otherwise "
                        "(default: the firmware's, 6)")
    p.add_argument("--hr", default="65", metavar="BEATS_MIN",
                   help="the simulated person's mean heart rate in beats/min (default 65)")
    p.add_argument("--resonance", default="5.4", metavar="BR_MIN",
                   help="the person's resonance rate in breaths/min, 4.5-6.6 (default 5.4)")
    p.add_argument("--adherence", default="0.9", metavar="A",
                   help="how closely the person breathes with the pacer, 0..1 (default 0.9)")
    p.add_argument("--seed", default=1, type=int, metavar="N", help="the person's random seed (default 1)")
    p.add_argument("--raw", action="store_true",
                   help="stream raw ADC samples too (so a report can draw the pulse)")
    p.add_argument("--mode", metavar="|".join(MODES),
                   help="switch the board to this mode after connecting (default: the board's own)")
    p.add_argument("--board-dir", metavar="DIR",
                   help="keep the virtual board's settings and journal in DIR (as a Pico keeps them on "
                        "flash), so `vagal virtual-board --board-dir DIR` and `vagal sync` find them later")
    add_library_arguments(p)


MODES = ("pace", "practice", "assess", "winddown")


def run(args):
    from vagal import pacer
    from vagal_host.stream import Streamer
    from vagal_host.virtual import VirtualBoard, person_spec

    duration = _number("--duration", args.duration, positive=True) if args.duration is not None else None
    speed = _number("--speed", args.speed, positive=True)
    hr = _number("--hr", args.hr, 30, 200)
    resonance = resonance_hz(args.resonance)
    adherence = _number("--adherence", args.adherence, 0, 1)
    if args.mode is not None and args.mode not in MODES:
        raise VagalError("--mode %r: choose one of %s" % (args.mode, ", ".join(MODES)))
    person = person_spec(args.seed, hr, resonance, adherence)
    header = {"source": "virtual board", "person": person}
    if args.mode:
        header["mode"] = args.mode
    if args.raw:
        header["raw"] = "on"
    settings = {}
    if args.rate is not None:
        rate = _number("--rate", args.rate, pacer.RATE_MIN / 1000, pacer.RATE_MAX / 1000)
        settings["rate_mbpm"] = int(round(rate * 1000))
        header["rate_mbpm"] = str(settings["rate_mbpm"])
        if args.mode is None:
            # a rate asked for is a rate kept: start in the fixed-rate mode, not practice (whose
            # tuner would move the pacer off it)
            settings["mode"] = "pace"

    board = VirtualBoard(speed=speed, person=person, settings_path=_board_settings(args.board_dir))
    if settings:  # the board's own settings file, as if set on the device before this session
        kept = {}
        if args.board_dir:
            try:
                with open(board.settings_path) as f:
                    kept = json.load(f)
            except (OSError, ValueError):
                kept = {}
        kept.update(settings)
        with open(board.settings_path, "w") as f:
            json.dump(kept, f)
    board.start()
    streamer = None
    why = []
    try:
        streamer = Streamer(board.port, args.session, overwrite=args.overwrite, speed=speed, header=header,
                            app_check=False)  # its own silence check below knows it is a virtual board
        if args.raw:
            streamer.command("raw", "on")
        if args.mode:
            streamer.command("mode", args.mode)
        t0 = time.monotonic()
        limit_s = None if duration is None else duration / speed * SLOW_FACTOR + SLOW_GRACE_S

        def stop(s):
            if duration is not None and s.state.board_ms >= duration * 1000:
                return True
            if len(board.exit_codes) >= MAX_RESPAWNS:
                why.append("the virtual board keeps exiting (codes %s); its log: %s"
                           % (board.exit_codes, _log_tail(board)))
                return True
            waited = time.monotonic() - t0
            if waited > SILENT_S and sum(s.counts()) == 0:
                why.append("the virtual board sent nothing in %g s on %s (log: %s)"
                           % (SILENT_S, board.port, _log_tail(board)))
                return True
            if limit_s is not None and waited > limit_s:
                why.append("the virtual board ran far slower than --speed %g (log: %s)"
                           % (speed, _log_tail(board)))
                return True
            return False

        streamer.run(stop=stop, view="live" if args.live else "headless",
                     status_every=max(1.0, STATUS_BOARD_S / speed))
    finally:
        board.stop()
    print(streamer.summary())
    if streamer.state.board_lost and speed > 1:
        print("the virtual board fell behind at --speed %g and dropped samples: use a lower --speed "
              "(on a busy computer too) for a clean session" % speed)
    if board.dropped_bytes:
        # like a Pico's USB serial, the virtual board drops output nobody reads in time
        print("this computer fell behind the virtual board at --speed %g: %d bytes of its output "
              "were dropped before they were read (the lost and corrupt lines above); use a lower "
              "--speed for a clean session" % (speed, board.dropped_bytes))
    if not args.no_library:
        from vagal_host.library import import_recorded

        import_recorded(streamer.session_path, args.library)
    sys.stdout.flush()
    if why:
        raise VagalError(why[0])
    return 0


def _board_settings(board_dir):
    """settings.json in --board-dir (made if missing; its journal/ goes beside it), or None (a temp one)."""
    if not board_dir:
        return None
    import os

    if os.path.exists(board_dir) and not os.path.isdir(board_dir):
        raise VagalError("--board-dir %s is a file, not a folder" % board_dir)
    try:
        os.makedirs(board_dir, exist_ok=True)
    except OSError as e:
        raise VagalError("cannot make --board-dir %s: %s" % (board_dir, e.strerror or e)) from None
    return os.path.join(os.path.abspath(board_dir), "settings.json")


def _log_tail(board):
    lines = [x for x in board.log_text().splitlines() if x.strip()]
    return " | ".join(lines[-3:]) or "(empty)"
