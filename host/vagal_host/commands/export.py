"""`vagal export`: a session's beats, raw PPG, pacer and events as CSV, WFDB or Kubios RR text."""

from vagal_host.errors import VagalError

NAME = "export"
HELP = "export a session file as CSV tables, a WFDB record or Kubios RR-interval text"


def add_arguments(p):
    from vagal_host.export import FORMATS

    p.add_argument("session", metavar="SESSION", help="a session file written by vagal stream/demo")
    p.add_argument("--format", required=True, choices=FORMATS,
                   help="csv: one file per table; wfdb: PhysioNet record + annotations; "
                        "kubios: RR intervals in ms, one per line")
    p.add_argument("--out", metavar="DIR_OR_FILE",
                   help="directory to write into (created if missing; for kubios also a file name); "
                        "default: beside the session file")
    p.add_argument("--part", metavar="N",
                   help="which session inside the file, 1 = first (default: the longest)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument("--force", action="store_true",
                   help="replace existing files even when they are not earlier vagal export output "
                        "(never the input)")


def parse_part(text):
    if text is None:
        return None
    try:
        n = int(text)
    except ValueError:
        raise VagalError("--part must be a whole number >= 1, not %r" % text) from None
    if n < 1:
        raise VagalError("--part must be a whole number >= 1, not %r" % text)
    return n


def run(args):
    from vagal_host.export import export

    part, parts, directory, written = export(args.session, args.format, args.out,
                                             parse_part(args.part), args.quiet, args.force)
    which = part.describe()
    if len(parts) > 1:
        which += "; the file holds %d sessions%s" % (
            len(parts), ", this is the longest (choose with --part)" if args.part is None else "")
    if part.damage:
        which += "; the file is damaged: " + part.damage
    print("exported %s to %s: %s" % (which, directory, ", ".join(written)))
    return 0
