"""Score detected pulse beats against ECG R-peak references, the way the PPG-beats benchmark does.

Detections are shifted by their median lag behind the R-peaks (the pulse arrival time, found by a
grid search that maximises matches, then refined by the median of matched differences); a
reference beat counts as found when a detection lies within +-150 ms. Exclusion windows
(`start_s,end_s,kind,reason`): kind `reference` removes reference beats and detections there; kind
`nopulse` removes the reference beats whose pulse would fall there, while detections there stay and
count as false beats. Reference beats whose pulse would arrive after the recording ends are dropped,
and so, symmetrically, are detections whose R-peak would lie before the recording began.
IBI error is the mean absolute difference between consecutive matched intervals.
"""

import csv
import re

import numpy as np

from vagal_host.errors import VagalError

TOLERANCE_S = 0.150


class Score:
    def __init__(self, name, tp, fp, fn, ibi_err_ms, n_ibi, lag_s):
        self.name, self.tp, self.fp, self.fn = name, tp, fp, fn
        self.ibi_err_ms, self.n_ibi, self.lag_s = ibi_err_ms, n_ibi, lag_s

    @property
    def sensitivity(self):
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def precision(self):
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def f1(self):
        d = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / d if d else float("nan")


# PhysioNet's beat annotation codes (the rest mark rhythm, noise, signal quality and the like)
BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")


def read_annotation_times(path, fs=None):
    """Beat times in seconds from a WFDB annotation file (`<record>.<ext>`): only the annotations
    that mark a beat; the rate is the annotation's own, from the record's header, else fs."""
    import wfdb

    path = str(path)
    base, dot, ext = path.rpartition(".")
    try:
        ann = wfdb.rdann(base, ext)
    except Exception as e:  # wfdb raises many kinds; all mean "not a readable annotation file"
        raise VagalError("%s is not a readable WFDB annotation file: %s" % (path, e)) from None
    rate = ann.fs or fs
    if not rate:
        raise VagalError("%s: no sample rate (no record header beside it): give --fs" % path)
    keep = [s for s, sym in zip(ann.sample, ann.symbol) if sym in BEAT_SYMBOLS]
    return np.array(keep, dtype=float) / float(rate)


def read_times(path, fs=None):
    """Beat times in seconds from a CSV with a `time_s` column, or a `sample` column and fs; or
    from a WFDB annotation file (any other extension)."""
    if not str(path).lower().endswith((".csv", ".txt")):
        return read_annotation_times(path, fs)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [ln for ln in f if ln.strip() and not ln.startswith("#")]
    except OSError as e:
        raise VagalError("cannot read %s: %s" % (path, e.strerror)) from None
    reader = csv.DictReader(rows)
    if reader.fieldnames is None:
        raise VagalError("%s is empty" % path)
    names = [n.strip() for n in reader.fieldnames]
    out = []
    for i, row in enumerate(reader, start=2):
        row = {k.strip(): v for k, v in row.items() if k}
        try:
            if "sample" in names and fs:
                out.append(float(row["sample"]) / fs)
            elif "time_s" in names:
                out.append(float(row["time_s"]))
            else:
                raise VagalError("%s has neither a time_s nor a sample column" % path)
        except (TypeError, ValueError):
            raise VagalError("%s line %d: not a number" % (path, i)) from None
    return np.array(out, dtype=float)


def read_exclusions(path):
    if path is None:
        return []
    out = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        for i, row in enumerate(csv.DictReader(f), start=2):
            try:
                out.append((float(row["start_s"]), float(row["end_s"]), row["kind"].strip()))
            except (KeyError, TypeError, ValueError):
                raise VagalError("%s line %d: expected start_s,end_s,kind" % (path, i)) from None
    return out


def fs_from_comment(path):
    with open(path, encoding="utf-8-sig") as f:
        head = f.readline()
    m = re.search(r"fs\s*=\s*([0-9.]+)", head)
    return float(m.group(1)) if m else None


def _count_matches(ref, det, lag):
    idx = np.searchsorted(det, ref + lag)
    lo = np.clip(idx - 1, 0, len(det) - 1)
    hi = np.clip(idx, 0, len(det) - 1)
    d = np.minimum(np.abs(det[lo] - ref - lag), np.abs(det[hi] - ref - lag))
    return int(np.sum(d <= TOLERANCE_S))


def _match(ref, det, lag):
    """Greedy one-to-one matching of shifted references to detections: list of (i_ref, j_det)."""
    pairs = []
    used = np.zeros(len(det), dtype=bool)
    for i, r in enumerate(ref + lag):
        j = int(np.searchsorted(det, r))
        best, bestd = -1, TOLERANCE_S + 1e-9
        for k in (j - 1, j, j + 1):
            if 0 <= k < len(det) and not used[k] and abs(det[k] - r) <= bestd:
                best, bestd = k, abs(det[k] - r)
        if best >= 0:
            used[best] = True
            pairs.append((i, best))
    return pairs


def score(name, ref, det, duration_s, exclusions=(), max_lag_s=1.0):
    ref = np.sort(np.asarray(ref, dtype=float))
    det = np.sort(np.asarray(det, dtype=float))
    if len(det) == 0:
        return Score(name, 0, 0, len(ref), float("nan"), 0, float("nan"))
    lags = np.arange(-0.2, max_lag_s + 1e-9, 0.01)
    counts = [_count_matches(ref, det, lag) for lag in lags]
    lag = float(lags[int(np.argmax(counts))])
    pairs = _match(ref, det, lag)
    if pairs:
        lag = float(np.median([det[j] - ref[i] for i, j in pairs]))
    keep_ref = ref + lag <= duration_s - TOLERANCE_S
    # symmetric at the start: a pulse arriving before lag - tolerance belongs to an R-peak that
    # happened before the recording began, so it has no reference to match
    keep_det = det - lag >= 0
    for s, e, kind in exclusions:
        if kind == "reference":
            keep_ref &= ~((ref >= s) & (ref <= e))
            keep_det &= ~((det >= s + lag) & (det <= e + lag))
        elif kind == "nopulse":
            keep_ref &= ~((ref + lag >= s) & (ref + lag <= e))
    ref = ref[keep_ref]
    det = det[keep_det]
    pairs = _match(ref, det, lag)
    tp = len(pairs)
    errs = []
    err_at = []
    for (i0, j0), (i1, j1) in zip(pairs, pairs[1:]):
        if i1 == i0 + 1 and j1 == j0 + 1:
            errs.append(abs((det[j1] - det[j0]) - (ref[i1] - ref[i0])))
            err_at.append(float(det[j1]))
    ibi = 1000 * float(np.mean(errs)) if errs else float("nan")
    sc = Score(name, tp, len(det) - tp, len(ref) - tp, ibi, len(errs), lag)
    matched_r = {i for i, _ in pairs}
    matched_d = {j for _, j in pairs}
    sc.missed = [float(ref[i] + lag) for i in range(len(ref)) if i not in matched_r]
    sc.false = [float(det[j]) for j in range(len(det)) if j not in matched_d]
    sc.ibi_errors_ms = [1000 * e for e in errs]
    sc.ibi_error_at = err_at
    return sc


def subsample_rpeaks(ref_s, ecg, fs):
    """R-peak times refined to a fraction of a sample (parabola through the ECG's local maximum).

    Why: references given as whole samples carry up to half a sample of timing error (5 ms at
    100 Hz). A detector whose peaks are also whole samples of the same clock can share that error
    (when the pulse arrival time is close to a whole number of samples the rounding cancels in the
    intervals), which favours it in the IBI error over a sub-sample detector. Scoring against
    sub-sample R-peaks as well shows the timing without that artefact.
    """
    ecg = np.asarray(ecg, dtype=float)
    out = []
    for t in np.asarray(ref_s, dtype=float):
        i = int(round(t * fs))
        lo, hi = max(1, i - 2), min(len(ecg) - 2, i + 2)
        if hi < lo:
            out.append(t)
            continue
        k = lo + int(np.argmax(ecg[lo:hi + 1]))
        a, b, c = ecg[k - 1], ecg[k], ecg[k + 1]
        den = a - 2 * b + c
        off = 0.5 * (a - c) / den if den < 0 else 0.0
        out.append((k + max(-0.5, min(0.5, off))) / fs)
    return np.array(out)

