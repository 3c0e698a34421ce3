"""`vagal demo`: the virtual board with a simulated person, streamed like a real Pico (`make run`)."""

import sys
import time

from vagal_host.errors import VagalError

NAME = "demo"
HELP = "run the virtual board with a simulated person and stream it (headless unless --live)"

SLOW_FACTOR = 4.0  # give up if the virtual board runs this much slower than --speed asks
SLOW_GRACE_S = 20.0


def _number(name, text, lo=0.0):
    try:
        v = float(text)
    except ValueError:
        raise VagalError("%s must be a number, not %r" % (name, text)) from None
    if not v > lo or v == float("inf"):
        raise VagalError("%s must be > %g, not %r" % (name, lo, text))
    return v


def add_arguments(p):
    p.add_argument("--duration", metavar="S",
                   help="stop after S seconds of board (virtual) time (default: until Ctrl-C)")
    p.add_argument("--speed", default="1", metavar="N",
                   help="run the virtual board N times faster than real time (default 1)")
    p.add_argument("--session", metavar="FILE",
                   help="session file to write (default sessions/<timestamp>.vagal)")
    p.add_argument("--overwrite", action="store_true", help="replace the session file if it exists")
    p.add_argument("--live", action="store_true", help="show the live terminal view (default: headless)")


def run(args):
    from vagal_host.stream import Streamer
    from vagal_host.virtual import VirtualBoard

    duration = _number("--duration", args.duration) if args.duration is not None else None
    speed = _number("--speed", args.speed)
    board = VirtualBoard(speed=speed)
    board.start()
    try:
        streamer = Streamer(board.port, args.session, overwrite=args.overwrite, speed=speed,
                            header={"source": "virtual board, simulated person"})
        t0 = time.monotonic()
        limit_s = None if duration is None else duration / speed * SLOW_FACTOR + SLOW_GRACE_S
        why = []

        def stop(s):
            if duration is not None and s.state.board_ms >= duration * 1000:
                return True
            if not board.running():
                why.append("the virtual board exited (%s)" % board.exit_reason())
                return True
            if limit_s is not None and time.monotonic() - t0 > limit_s:
                why.append("the virtual board ran far slower than --speed %g" % speed)
                return True
            return False

        streamer.run(stop=stop, view="live" if args.live else "headless")
    finally:
        board.stop()
    print(streamer.summary())
    sys.stdout.flush()
    if why:
        raise VagalError(why[0])
    return 0
