"""vagal evaluate: score the core's beats against ECG R-peak references, the PPG-beats way."""

import sys

from vagal_host.errors import VagalError
from vagal_host.evaluate import PPG_COLUMNS, discover, evaluate, pooled
from vagal_host.recording import POLARITIES, POLARITY_HELP, check_fs

NAME = "evaluate"
HELP = "score beat detection against ECG R-peaks on every recording with references in the given folders"


def add_arguments(p):
    p.add_argument("folders", nargs="*", metavar="FOLDER", default=["../shared/data"],
                   help="folders searched for <name>_rpeaks.csv beside <name>.csv or <name>_Signals.csv "
                        "(default ../shared/data); a record may also be WFDB (<name>.hea)")
    p.add_argument("--column", default=None, metavar="NAME",
                   help="the PPG channel in every recording (default: the first of %s)" % ", ".join(PPG_COLUMNS))
    p.add_argument("--fs", default=None, metavar="HZ",
                   help="sample rate of recordings whose files do not state it (an 'fs=' in the first "
                        "line of the references or the CSV, or a WFDB header)")
    p.add_argument("--ann", metavar="EXT", default=None,
                   help="also score WFDB records (<name>.hea) against the beats in their annotation "
                        "file <name>.EXT, the PhysioNet way (e.g. atr, qrs); only beat codes count")
    p.add_argument("--polarity", choices=POLARITIES, default="auto", help=POLARITY_HELP)
    p.add_argument("--jobs", type=int, default=None, metavar="N", help="worker processes (default: one per core)")


def run(args):
    fs = check_fs(args.fs) if args.fs is not None else None
    cases, skipped = [], []
    for folder in args.folders:
        cases.extend(discover(folder, args.column, fs, skipped, args.polarity, args.ann))
    for path, why in skipped:
        print("skipped %s: %s" % (path, why), file=sys.stderr)
    if not cases:
        raise VagalError("no recordings with R-peak references (*_rpeaks.csv%s) %s in %s" % (
            ", or WFDB records with a .%s annotation file" % args.ann if args.ann else "",
            "could be scored" if skipped else "found", ", ".join(args.folders)))
    if args.jobs is not None and args.jobs < 1:
        raise VagalError("--jobs must be at least 1")
    scores = evaluate(cases, args.jobs)
    print("%-28s %7s %7s %7s %6s %5s %5s %9s %12s %7s" % (
        "recording", "F1 %", "Se %", "PPV %", "TP", "FP", "FN", "IBI err", "sub-sample R", "lag s"))
    for s in scores + [pooled(scores)]:
        print("%-28s %7.2f %7.2f %7.2f %6d %5d %5d %6.2f ms %9.2f ms %7.3f" % (
            s.name, 100 * s.f1, 100 * s.sensitivity, 100 * s.precision, s.tp, s.fp, s.fn,
            s.ibi_err_ms, getattr(s, "ibi_err_fine_ms", float("nan")), s.lag_s))
    print("IBI err: against the R-peak references as given (whole samples); sub-sample R: against the "
          "same R-peaks refined on the ECG (scoring.subsample_rpeaks)")
    return 0
