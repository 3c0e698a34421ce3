"""`vagal deploy`: copy the firmware to a Pico running MicroPython (only what changed, verified)."""

from vagal_host import deploy as deployer

NAME = "deploy"
HELP = "compile and copy the firmware to a Pico running MicroPython (only changed files), then restart it"


def add_arguments(parser):
    parser.add_argument("--port", default="auto", metavar="PATH|auto",
                        help="serial port of the board, or 'auto' to find the one Pico on USB (default)")
    parser.add_argument("--source", action="store_true",
                        help="copy the .py sources instead of compiling them to .mpy")
    parser.add_argument("--firmware", metavar="DIR", default=str(deployer.FIRMWARE_DIR),
                        help="firmware folder with vagal/ and main.py (default: %(default)s)")
    parser.add_argument("--no-reset", dest="reset", action="store_false",
                        help="leave the board at the REPL instead of restarting into the app")


def run(args):
    result = deployer.deploy(port=args.port, source=args.source, reset=args.reset,
                             firmware_dir=args.firmware)
    print("deployed to %s: %d copied, %d unchanged, %d removed, %d verified"
          % (result["board"].describe(), len(result["copied"]), result["unchanged"],
             len(result["removed"]), result["verified"]))
    port = "" if args.port in (None, "", "auto") else " --port %s" % args.port
    if args.reset:
        from vagal_host.cli import command_name

        vagal = command_name()
        print("next: %s stream%s (the live view), or %s settings%s" % (vagal, port, vagal, port))
    else:
        print("the board waits at the REPL (--no-reset); it starts the app when reset or replugged")
    return 0
