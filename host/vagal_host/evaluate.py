"""Find recordings with ECG references, replay the core on each, score them (in parallel)."""

import csv
import io
import math
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from vagal.replay import Replay
from vagal_host import scoring
from vagal_host.errors import VagalError
from vagal_host.recording import load_recording, read_column
from vagal_host.replay_engines import rate_fraction

PPG_COLUMNS = ("PPG", "PLETH", "ppg", "pleth", "PPG Finger", "Pleth")
ECG_COLUMNS = ("ECG", "II", "ecg", "ECG II", "MLII")


class Case:
    """One recording with its R-peak references: what evaluate scores."""

    def __init__(self, name, signal, column, fs, rpeaks, exclude, ecg_column=None, polarity="auto"):
        self.name, self.signal, self.column, self.fs = name, signal, column, fs
        self.rpeaks, self.exclude, self.ecg_column = rpeaks, exclude, ecg_column
        self.polarity = polarity


def _header(path):
    """(channel names, the sample rate the file states or None) of a CSV or a WFDB header."""
    if path.suffix == ".hea":
        import wfdb
        try:
            h = wfdb.rdheader(str(path)[:-4])
        except Exception as e:  # wfdb raises many kinds; all mean "not a readable header"
            raise VagalError("%s is not a readable WFDB header: %s" % (path, e)) from None
        return list(h.sig_name or []), float(h.fs) if h.fs else None
    with open(path, newline="", encoding="utf-8-sig") as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                return [h.strip() for h in next(csv.reader([line]))], scoring.fs_from_comment(path)
    return [], None


def _pairs(folder, ann, skipped):
    """(stem, references, signal file) for every `<stem>_rpeaks.csv` beside its signals, and with
    `ann` for every WFDB record `<stem>.hea` beside its annotation file `<stem>.<ann>` (one that
    also has a `_rpeaks.csv` is paired once, with that)."""
    out = []
    for rp in sorted(folder.rglob("*_rpeaks.csv")):
        stem = rp.name[: -len("_rpeaks.csv")]
        names = (stem + ".csv", stem + "_Signals.csv", stem + "_signals.csv", stem + ".hea")
        signal = next((rp.parent / c for c in names if (rp.parent / c).exists()), None)
        if signal is None:
            skipped.append((rp, "no signal file beside it (%s)" % ", ".join(names)))
            continue
        out.append((stem, rp, signal))
    if ann:
        for hea in sorted(folder.rglob("*.hea")):
            stem = hea.name[:-4]
            if (hea.parent / (stem + "_rpeaks.csv")).exists():
                continue
            at = hea.parent / (stem + "." + ann)
            if not at.exists():
                skipped.append((hea, "no %s annotation file beside it (--ann %s)" % (at.name, ann)))
                continue
            out.append((stem, at, hea))
    return out


def discover(folder, column=None, fs=None, skipped=None, polarity="auto", ann=None):
    """Every `<stem>_rpeaks.csv` beside its signals: `<stem>.csv`, `<stem>_Signals.csv` or a WFDB
    record `<stem>.hea`; with `ann` (an annotation file's extension, such as atr or qrs) also every
    WFDB record whose beats are annotated in `<stem>.<ann>`, the PhysioNet way. The PPG channel is
    `column`, else the first of PPG_COLUMNS the file has; the sample rate is the one the files
    state (`fs=` in the first line of the references or the CSV, or the WFDB header), else `fs`. A
    reference file that cannot be paired is appended to `skipped` as (path, why): a dataset with
    one odd file is still scored, and says so. polarity as recording.choose_polarity."""
    folder = Path(folder)
    if folder.is_file():
        raise VagalError("%s is a file; give the folder that holds the recordings and their "
                         "*_rpeaks.csv" % folder)
    if not folder.is_dir():
        raise VagalError("no such folder: %s%s" % (folder, " (the default is relative: run vagal evaluate "
                                                   "from the project folder, or name the folder)"
                                                   if str(folder) == "../shared/data" else ""))
    if ann is not None and (not ann or not ann.replace("_", "").isalnum()):
        raise VagalError("--ann takes an annotation file's extension, such as atr or qrs, not %r" % ann)
    if skipped is None:
        skipped = []
    cases = []
    for stem, rp, signal in _pairs(folder, ann, skipped):
        try:
            cols, stated = _header(signal)
        except UnicodeDecodeError:
            skipped.append((rp, "%s is not a text CSV file" % signal.name))
            continue
        except VagalError as e:
            skipped.append((rp, str(e)))
            continue
        if column is not None:
            ppg = column if column in cols else None
        else:
            ppg = next((c for c in PPG_COLUMNS if c in cols), None)
        if ppg is None:
            skipped.append((rp, "%s has no %s column (columns: %s)%s" % (
                signal.name, repr(column) if column else "PPG", ", ".join(cols),
                "" if column else "; name it with --column")))
            continue
        rate = scoring.fs_from_comment(rp) if rp.suffix == ".csv" else None
        if rate is None:
            rate = stated
        if rate is None:
            rate = fs
        if rate is None:
            skipped.append((rp, "cannot tell the sample rate (no 'fs=' in its first line): give --fs"))
            continue
        ex = rp.parent / (stem + "_exclude.csv")
        ecg = next((c for c in ECG_COLUMNS if c in cols), None)
        cases.append(Case(stem, signal, ppg, rate, rp, ex if ex.exists() else None, ecg, polarity))
    return cases


def replay_beats(samples, fs, resolution=12):
    """The core's beat times (s) on ADC samples, exactly as `vagal replay` writes them, and the
    Replay that found them (its time in each quality state)."""
    num, den = rate_fraction(fs)
    out = io.StringIO()
    r = Replay(num, den, out, 0, resolution)
    for x in samples:
        r.feed(x)
    rows = out.getvalue().splitlines()[1:]
    return np.array([float(row.split(",", 1)[0]) for row in rows]), r


def run_case(case):
    rec = load_recording(case.signal, case.column, case.fs, polarity=case.polarity)
    det, _ = replay_beats(rec.samples, rec.fs, rec.resolution)
    return score_case(case, det, rec.duration_s)


def score_case(case, det, duration_s):
    """Score detections; also the IBI error against sub-sample R-peaks when the ECG is in the file
    (sc.ibi_err_fine_ms, NaN without an ECG column): see scoring.subsample_rpeaks for why."""
    ref = scoring.read_times(case.rpeaks, case.fs)
    exclusions = scoring.read_exclusions(case.exclude)
    sc = scoring.score(case.name, ref, det, duration_s, exclusions)
    sc.ibi_err_fine_ms = float("nan")
    if case.ecg_column:
        ecg, _ = read_column(case.signal, case.ecg_column)   # as recorded, not mapped/clipped
        fine = scoring.subsample_rpeaks(ref, ecg, case.fs)
        sc.ibi_err_fine_ms = scoring.score(case.name, fine, det, duration_s, exclusions).ibi_err_ms
    return sc


def evaluate(cases, jobs=None):
    jobs = jobs or os.cpu_count() or 1
    if jobs == 1 or len(cases) == 1:
        return [run_case(c) for c in cases]
    with ProcessPoolExecutor(max_workers=min(jobs, len(cases))) as pool:
        return list(pool.map(run_case, cases))


def pooled(scores):
    tp = sum(s.tp for s in scores)
    fp = sum(s.fp for s in scores)
    fn = sum(s.fn for s in scores)
    n = sum(s.n_ibi for s in scores)
    ibi = sum(s.ibi_err_ms * s.n_ibi for s in scores if s.n_ibi) / n if n else float("nan")
    sc = scoring.Score("pooled", tp, fp, fn, ibi, n, float("nan"))
    fine = [s for s in scores if s.n_ibi and not math.isnan(s.ibi_err_fine_ms)]
    nf = sum(s.n_ibi for s in fine)
    sc.ibi_err_fine_ms = sum(s.ibi_err_fine_ms * s.n_ibi for s in fine) / nf if nf else float("nan")
    return sc
