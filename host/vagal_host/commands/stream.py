"""`vagal stream`: live view of a board (real Pico or any serial path), recorded to a session file."""

import sys

from vagal_host.errors import VagalError

NAME = "stream"
HELP = "stream a board's beats, pacer and quality live, recording the session to a file"


def _positive(text):
    try:
        v = float(text)
    except ValueError:
        raise VagalError("--duration must be a number of seconds, not %r" % text) from None
    if not v > 0 or v == float("inf"):
        raise VagalError("--duration must be > 0 seconds, not %r" % text)
    return v


def add_arguments(p):
    p.add_argument("--port", default="auto", metavar="PATH|auto",
                   help="serial port path, or auto to find the one Pico by its USB id 2E8A (default)")
    p.add_argument("--duration", metavar="S", help="stop after S seconds (default: until Ctrl-C)")
    p.add_argument("--headless", action="store_true",
                   help="no live view: a one-line status on stderr every few seconds (for scripts)")
    p.add_argument("--session", metavar="FILE",
                   help="session file to write (default sessions/<timestamp>.vagal)")
    p.add_argument("--overwrite", action="store_true", help="replace the session file if it exists")
    p.add_argument("--signal", action="store_true",
                   help="also show (and record) the raw sensor signal: the board sends its samples while "
                        "streaming; use it to check a sensor's wiring and placement")
    add_library_arguments(p)


def add_library_arguments(p):
    p.add_argument("--library", metavar="PATH",
                   help="session library the recorded sessions are added to (default: $VAGAL_LIBRARY, "
                        "else library.sqlite in your data folder)")
    p.add_argument("--no-library", action="store_true", help="do not add the session to the library")


def run(args):
    from vagal_host.stream import Streamer

    duration = _positive(args.duration) if args.duration is not None else None
    streamer = Streamer(args.port, args.session, overwrite=args.overwrite, signal=args.signal)
    streamer.run(duration=duration, view="headless" if args.headless else "live")
    print(streamer.summary())
    if not args.no_library:
        from vagal_host.library import import_recorded

        import_recorded(streamer.session_path, args.library)
    sys.stdout.flush()
    return 0
