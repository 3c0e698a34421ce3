"""`vagal sync`: the board's session journal into the library on this computer (docs/journal.md)."""

from vagal_host.errors import VagalError

NAME = "sync"
HELP = "copy the sessions the board kept in its journal into your session library, then free them on the board"


def add_library_argument(p):
    p.add_argument("--library", metavar="PATH",
                   help="the library file (default: $VAGAL_LIBRARY, else library.sqlite in your data folder)")


def add_arguments(p):
    p.add_argument("--port", default="auto", metavar="PATH|auto",
                   help="serial port path, or auto to find the one Pico by its USB id 2E8A (default)")
    add_library_argument(p)


def days_held(lib, used, capacity):
    """How many days of practice the journal holds at this user's pace (from the library)."""
    rows = [r for r in lib.sessions() if r["source"] == "journal" and r["day"]]
    days = {r["day"] for r in rows}
    if not rows or not days:
        return None
    per_day = sum((r["duration_s"] or 0) for r in rows) / len(days)  # seconds practised a day
    bytes_per_s = 19 * 6 / 60.0 + 23 / 60.0  # ~6 breaths and one minute record a minute
    if per_day <= 0:
        return None
    return capacity / (per_day * bytes_per_s + 60.0 * len(rows) / len(days))  # + a header per session


def run(args):
    from vagal_host.library import Library
    from vagal_host.stream import open_checked, resolve_port
    from vagal_host.sync import BoardLink, sync

    path = resolve_port(args.port)
    with Library(args.library) as lib:
        ser = open_checked(path)
        try:
            result = sync(BoardLink(ser, path), lib)
        finally:
            ser.close()
        for note in result["notes"]:
            print(note)
        print("synced %s into %s: %d new session%s, %d already in the library, %d skipped; "
              "%d freed on the board%s"
              % (path, lib.path, result["added"], "" if result["added"] == 1 else "s", result["held"],
                 result["skipped"], result["dropped"],
                 "; 1 session still running (synced next time)" if result["running"] == 1 else
                 "; %d sessions still running" % result["running"] if result["running"] else ""))
        days = days_held(lib, result["used"], result["capacity"])
        print("the board's journal holds %d KB%s; %d sessions in the library: vagal sessions, vagal history"
              % (result["capacity"] // 1024,
                 " (about %d days of practice at your pace before the oldest are dropped)" % days
                 if days else " (the oldest sessions are dropped first when it is full: sync now and then)",
                 lib.count()))
    return 0
