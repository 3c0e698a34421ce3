"""`vagal report`: a session as an HTML page with figures, readable by someone who is not an engineer."""

NAME = "report"
HELP = "make an HTML page with figures (pulse, heart rate, swing, coherence, assessment) of a session"


def add_arguments(p):
    p.add_argument("session", metavar="SESSION",
                   help="a session file written by vagal stream/demo, or a session id from `vagal sessions`")
    p.add_argument("--out", metavar="DIR",
                   help="directory for index.html and the figures (default: <session>_report beside it)")
    p.add_argument("--part", metavar="N",
                   help="which session inside the file, 1 = first (default: the longest)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument("--force", action="store_true",
                   help="replace existing files even when they are not earlier vagal report output "
                        "(never the input)")
    p.add_argument("--library", metavar="PATH",
                   help="the library a session id is looked up in (default: $VAGAL_LIBRARY, else your data folder's)")


def run(args):
    from vagal_host.commands.export import parse_part
    from vagal_host.report import build

    import os
    import tempfile

    which = parse_part(args.part)
    if args.session.isdigit() and not os.path.exists(args.session):
        from vagal_host.library import Library, session_file_of

        sid = int(args.session)
        with tempfile.TemporaryDirectory() as tmp, Library(args.library, write=False) as lib:
            path, part_no = session_file_of(lib, sid, tmp)
            out = args.out or "vagal-report-%d" % sid
            index, part, parts, drawn = build(path, out, which if which is not None else part_no, args.quiet,
                                              args.force)
        print("report of library session %d: %s (%d figures)" % (sid, index, len(drawn)))
        return 0
    index, part, parts, drawn = build(args.session, args.out, which, args.quiet, args.force)
    which = part.describe()
    if len(parts) > 1:
        which += "; the file holds %d sessions%s" % (
            len(parts), ", this is the longest (choose with --part)" if args.part is None else "")
    if part.damage:
        which += "; the file is damaged: " + part.damage
    print("report of %s: %s (%d figures)" % (which, index, len(drawn)))
    return 0
