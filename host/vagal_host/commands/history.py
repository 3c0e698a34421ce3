"""`vagal history`: trends over days and weeks from the session library, as an HTML page."""

import os

from vagal_host.commands.sync import add_library_argument

NAME = "history"
HELP = "make an HTML page of your sessions over days and weeks (minutes, rate, swing, coherence, HR, RMSSD)"


def add_arguments(p):
    p.add_argument("--out", metavar="DIR", default="vagal-history",
                   help="folder for index.html and the figures (default: vagal-history)")
    add_library_argument(p)


def run(args):
    from vagal_host.history import build
    from vagal_host.library import Library

    with Library(args.library, write=False) as lib:
        index, drawn, dated, undated = build(lib, args.out)
    print("history of %d sessions%s: %s (%d figures)"
          % (dated, " (+%d undated, not drawn)" % undated if undated else "", os.path.abspath(index), len(drawn)))
    return 0
