"""`vagal import`: session files (from vagal stream / vagal demo) into the session library."""

from vagal_host.commands.sync import add_library_argument
from vagal_host.errors import VagalError

NAME = "import"
HELP = "add session files (vagal stream / vagal demo) to your session library"


def add_arguments(p):
    p.add_argument("files", nargs="+", metavar="FILE", help="session files")
    add_library_argument(p)


def run(args):
    from vagal_host.library import Library, import_file

    with Library(args.library) as lib:
        added = held = 0
        for path in args.files:
            a, h = import_file(lib, path)
            added += a
            held += h
            print("%s: %d session%s added, %d already in the library" % (path, a, "" if a == 1 else "s", h))
        print("library %s: %d sessions" % (lib.path, lib.count()))
    return 0
