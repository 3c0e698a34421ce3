"""vagal replay: run the firmware's beat detector on a recording and write one row per beat."""

import os

from vagal_host.errors import VagalError
from vagal_host.outputs import check_target, wfdb_inputs
from vagal_host.progress import Progress
from vagal_host.recording import ADC_BITS, POLARITIES, POLARITY_HELP, load_recording
from vagal_host.replay_engines import replay_cpython, replay_micropython

NAME = "replay"
HELP = "run the pulse core on a recorded signal (CSV or WFDB) and write the beats as CSV"


def add_arguments(p):
    p.add_argument("recording", help="CSV with a header row, or a WFDB record (.hea)")
    p.add_argument("--column", metavar="NAME", help="channel to use (CSV column or WFDB signal name)")
    p.add_argument("--fs", metavar="HZ", help="sample rate in Hz (50..1000; WFDB records carry their own)")
    p.add_argument("--adc-bits", type=int, choices=ADC_BITS, metavar="{10,12,16}",
                   help="the recording holds raw ADC counts of this width (default: guessed from the "
                        "values; a weak 12-bit recording below 1024 would be taken for 10-bit)")
    p.add_argument("--polarity", choices=POLARITIES, default="auto", help=POLARITY_HELP)
    p.add_argument("--beats", required=True, metavar="OUT.csv", help="where to write the beats")
    p.add_argument("--engine", choices=("cpython", "micropython"), default="cpython",
                   help="run the core on CPython (default) or inside the MicroPython unix port")
    p.add_argument("--quiet", action="store_true", help="no progress bar (it shows only on a terminal)")
    p.add_argument("--force", action="store_true",
                   help="replace existing files even when they are not earlier vagal replay output "
                        "(never the input)")


def run(args):
    if os.path.isdir(args.beats):
        raise VagalError("--beats %s is a directory" % args.beats)
    inputs = wfdb_inputs(args.recording)
    check_target(args.beats, "beats", inputs, args.force, "--beats")  # before the work; again at the end
    rec = load_recording(args.recording, args.column, args.fs, args.adc_bits, args.polarity)
    with Progress("replaying %s" % rec.name, total=len(rec.samples), quiet=args.quiet) as progress:
        if args.engine == "micropython":
            summary = replay_micropython(rec.samples, rec.fs, args.beats, progress=progress,
                                         resolution=rec.resolution, inputs=inputs, force=args.force)
        else:
            summary = replay_cpython(rec.samples, rec.fs, args.beats, progress=progress,
                                     resolution=rec.resolution, inputs=inputs, force=args.force)
    print("%s [%s, %.1f s at %g Hz, %s]: %s -> %s" % (
        rec.name, rec.column, rec.duration_s, rec.fs, rec.scaling, summary, args.beats))
    return 0
