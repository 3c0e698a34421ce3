"""`vagal sessions`: every session in the library as a table (date, mode, minutes, rate, swing, ...)."""

from vagal_host.commands.sync import add_library_argument

NAME = "sessions"
HELP = "list the sessions in your library: date, mode, minutes, rate, swing, coherence, HRV"


def add_arguments(p):
    add_library_argument(p)
    p.add_argument("--last", type=int, metavar="N", help="only the last N sessions")


def when(row):
    if row["started_at"]:
        return row["started_at"][:16].replace("T", " ")
    if row["day"]:
        return row["day"] + " --:--"
    return "undated"


def _num(v, scale=1.0, fmt="%.1f"):
    return "-" if v is None else fmt % (v / scale)


def table(rows):
    head = ("id", "date", "mode", "min", "rate/min", "swing bpm", "coherent %", "RMSSD ms", "HR", "from")
    out = [head]
    for r in rows:
        mode = r["mode"] or "-"
        if r["end_mode"] and r["end_mode"] != r["mode"]:
            mode += ">" + r["end_mode"]
        out.append((str(r["id"]), when(r), mode, _num(r["duration_s"], 60.0),
                    _num(r["rate_mbpm"], 1000.0, "%.2f"), _num(r["swing_x10"], 10.0),
                    _num(r["coherent_pct"], 1.0, "%d"), _num(r["rmssd_us"], 1000.0),
                    _num(r["hr_x10"], 10.0, "%.0f"),
                    r["source"] + ("" if r["complete"] else " (cut short)")))
    widths = [max(len(row[i]) for row in out) for i in range(len(head))]
    return ["  ".join(c.ljust(w) if i in (1, 2, 9) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
            for row in out]


def run(args):
    from vagal_host.library import Library

    with Library(args.library, write=False) as lib:
        rows = lib.sessions()
        if args.last is not None:
            rows = rows[-args.last:] if args.last > 0 else []
        if not rows:
            print("no sessions in %s yet: vagal sync (from the board), vagal import FILE, or vagal demo" % lib.path)
            return 0
        print("\n".join(table(rows)))
        print("%d sessions in %s; vagal report ID shows one, vagal history the trends" % (len(rows), lib.path))
    return 0
