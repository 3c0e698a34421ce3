"""`vagal flash`: put MicroPython on a Pico in BOOTSEL mode (checked UF2 image, then wait for its serial port)."""

from vagal_host import uf2

NAME = "flash"
HELP = "copy a MicroPython .uf2 image to a Pico in BOOTSEL mode (no argument: where to get one)"


def add_arguments(parser):
    parser.add_argument("firmware", nargs="?", metavar="FIRMWARE.uf2",
                        help="the MicroPython image for RPI_PICO (see `vagal flash` without arguments)")
    parser.add_argument("--mount", metavar="PATH",
                        help="the RPI-RP2 drive's mount point (default: look for it)")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S",
                        help="seconds to wait for the board's serial port after copying (default 30)")
    parser.add_argument("--no-wait", dest="wait", action="store_false",
                        help="return right after copying, without waiting for the serial port")


def run(args):
    if not args.firmware:
        print(uf2.guidance())
        return 0
    port = uf2.flash(args.firmware, mount=args.mount, wait=args.wait, timeout=args.timeout)
    if port:
        print("flashed %s; MicroPython is on %s. Next: vagal deploy --port %s" % (args.firmware, port, port))
    else:
        print("flashed %s. Next: vagal deploy" % args.firmware)
    return 0
