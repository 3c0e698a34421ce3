"""`vagal report`: a session as an HTML page with figures, readable by someone who is not an engineer."""

NAME = "report"
HELP = "make an HTML page with figures (pulse, heart rate, swing, coherence, assessment) of a session"


def add_arguments(p):
    p.add_argument("session", metavar="SESSION", help="a session file written by vagal stream/demo")
    p.add_argument("--out", metavar="DIR",
                   help="directory for index.html and the figures (default: <session>_report beside it)")
    p.add_argument("--part", metavar="N",
                   help="which session inside the file, 1 = first (default: the longest)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument("--force", action="store_true",
                   help="replace existing files even when they are not earlier vagal report output "
                        "(never the input)")


def run(args):
    from vagal_host.commands.export import parse_part
    from vagal_host.report import build

    index, part, parts, drawn = build(args.session, args.out, parse_part(args.part), args.quiet,
                                     args.force)
    which = part.describe()
    if len(parts) > 1:
        which += "; the file holds %d sessions%s" % (
            len(parts), ", this is the longest (choose with --part)" if args.part is None else "")
    if part.damage:
        which += "; the file is damaged: " + part.damage
    print("report of %s: %s (%d figures)" % (which, index, len(drawn)))
    return 0
