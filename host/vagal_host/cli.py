"""The `vagal` command: discovers subcommands in vagal_host.commands and runs one.

Every user-fixable problem is raised as VagalError and printed as one line with exit status 2.
"""

import argparse
import importlib
import os
import pkgutil
import sys

from vagal_host import commands
from vagal_host.errors import VagalError


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # prog is "vagal replay" etc. for a subcommand, so the line names the command it is about
        self.exit(2, "%s: error: %s (see %s --help)\n" % (self.prog, message, self.prog))


def _command_modules():
    mods = []
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mods.append(importlib.import_module("vagal_host.commands." + info.name))
    return mods


def command_name():
    """How to type `vagal` in this shell, for the next steps a command prints (they are copied).

    `vagal` when that name on PATH is this very program; otherwise the path it was started by (after
    `make setup`, without an activated venv, that is .venv/bin/vagal), so the line runs as printed."""
    import shlex
    import shutil

    script = sys.argv[0] if sys.argv and os.path.basename(sys.argv[0]) == "vagal" else ""
    if not script:  # python -m vagal_host.cli, or a test: the launcher beside this interpreter
        beside = os.path.join(os.path.dirname(sys.executable), "vagal")
        script = beside if os.path.isfile(beside) else ""
    if not script:
        return "vagal"
    on_path = shutil.which("vagal")
    if on_path and os.path.realpath(on_path) == os.path.realpath(script):
        return "vagal"
    if os.path.isabs(script):
        rel = os.path.relpath(script)
        if not rel.startswith(".."):
            script = rel if os.sep in rel else os.path.join(".", rel)
    elif os.sep not in script:
        script = os.path.join(".", script)
    return shlex.quote(script)


def build_parser():
    parser = _Parser(prog="vagal", description="vagal: breathing pacer host tools",
                     epilog="No board yet? `vagal demo --live` runs the firmware on a virtual board "
                            "with a simulated person. `vagal COMMAND --help` for each command; "
                            "README.md for the whole tour.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args._run(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not at exit
    except VagalError as e:
        print("vagal %s: error: %s" % (args.command, e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vagal %s: interrupted" % args.command, file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `vagal resonance s.vagal | head`: the reader left; not an error of ours, and no traceback
        try:  # the Python docs' recipe: stdout to devnull, so the exit-time flush stays quiet
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
