"""Load a recorded pulse signal (CSV or WFDB) and map it into the ADC's integer range.

The core only ever sees what the Pico's ADC would give: ints in read_u16() scale (0..65535). Recordings
that already are ADC counts (10- or 12-bit integers) are scaled exactly as the hardware would, so their
real drop-outs to zero and clipped tops stay what they are. Recordings in arbitrary units (volts,
normalised floats) are mapped linearly so that their 0.5-99.5 % range spans the middle half of the ADC,
like a sensor whose output sits inside the ADC's input range.
"""

import csv
import itertools
import math
import os
from array import array

from vagal_host.errors import VagalError
from vagal_host.session import MAGIC as SESSION_MAGIC

FS_MIN = 50
FS_MAX = 1000


class Recording:
    """One channel of a recording: integer ADC samples and their sample rate."""

    def __init__(self, name, samples, fs, column, scaling, resolution=16):
        self.name = name
        self.resolution = resolution    # bits the values carry (10 for a 10-bit ADC's counts)
        self.samples = samples
        self.fs = fs
        self.column = column
        self.scaling = scaling

    @property
    def duration_s(self):
        return len(self.samples) / self.fs


def check_fs(fs):
    if fs is None:
        raise VagalError("--fs is required for a CSV recording (its sample rate in Hz)")
    try:
        fs = float(fs)
    except (TypeError, ValueError):
        raise VagalError("sample rate %r is not a number" % (fs,)) from None
    if not math.isfinite(fs) or not FS_MIN <= fs <= FS_MAX:
        raise VagalError("sample rate %s Hz is out of range (%d..%d Hz)" % (fs, FS_MIN, FS_MAX))
    return fs


def _numeric(s):
    try:
        float(s)
        return True
    except ValueError:
        return False


def _read_csv(path, column):
    """One column of a CSV as floats, read row by row (an overnight recording is millions of rows:
    never all its lines at once). Line numbers in errors are the file's own."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:   # -sig: a spreadsheet's BOM
            return _parse_csv(f, path, column)
    except UnicodeDecodeError:
        raise VagalError("%s is not a text CSV file" % path) from None


def _parse_csv(f, path, column):
    at = [0]                       # the file line of the row just read

    def data_lines():
        for n, line in enumerate(f, start=1):
            if n == 1 and line.startswith(SESSION_MAGIC):   # its '#' header would be skipped
                raise VagalError("%s is a vagal session file, not a recording: use vagal report, "
                                 "vagal export or vagal resonance on it" % path)
            if line.strip() and not line.lstrip().startswith("#"):
                at[0] = n
                yield line

    reader = csv.reader(data_lines())
    first = next(reader, None)
    if first is None:
        raise VagalError("%s is empty" % path)
    header = [h.strip() for h in first]
    rows = ((at[0], row) for row in reader)          # (file line, row), one at a time
    if all(_numeric(h) for h in header if h):
        names = [str(i) for i in range(len(header))]   # no header row: columns by index
        rows = itertools.chain([(at[0], first)], rows)
    else:
        names = header
    if column is None:
        if len(names) != 1:
            raise VagalError("%s has columns %s: choose one with --column" % (path, ", ".join(names)))
        column = names[0]
    if column not in names:
        raise VagalError("%s has no column %r (columns: %s)" % (path, column, ", ".join(names)))
    idx = names.index(column)
    values = array("d")
    for lineno, row in rows:
        if idx >= len(row) or row[idx].strip() == "":
            raise VagalError("%s line %d: no value in column %r" % (path, lineno, column))
        cell = row[idx].strip()
        try:
            v = float(cell)
        except ValueError:
            raise VagalError("%s line %d: %r in column %r is not a number" % (path, lineno, cell, column)) from None
        if not math.isfinite(v):
            raise VagalError("%s line %d: %r in column %r is not a finite number" % (path, lineno, cell, column))
        values.append(v)
    if not values:
        raise VagalError("%s has a header but no samples" % path)
    return values, column


def _read_wfdb(path, column):
    import wfdb

    base = path[:-4] if path.endswith(".hea") else path
    try:
        rec = wfdb.rdrecord(base)
    except Exception as e:  # wfdb raises many kinds; all mean "not a readable record"
        raise VagalError("%s is not a readable WFDB record: %s" % (path, e)) from None
    names = list(rec.sig_name)
    if column is None:
        if len(names) != 1:
            raise VagalError("%s has signals %s: choose one with --column" % (path, ", ".join(names)))
        column = names[0]
    if column not in names:
        raise VagalError("%s has no signal %r (signals: %s)" % (path, column, ", ".join(names)))
    sig = rec.p_signal[:, names.index(column)]
    values = [float(v) for v in sig]
    for i, v in enumerate(values):
        if not math.isfinite(v):
            raise VagalError("%s sample %d of %r is not a finite number" % (path, i, column))
    return values, column, float(rec.fs)


def read_column(path, column):
    """One channel of a CSV or WFDB record (`.hea`) as recorded (floats, not mapped to ADC counts):
    (values, column name)."""
    if str(path).endswith(".hea"):
        return _read_wfdb(str(path), column)[:2]
    return _read_csv(path, column)


ADC_BITS = (10, 12, 16)

POLARITIES = ("auto", "upright", "inverted")
# Upstroke/downstroke slope ratio (see slope_ratio) below which "auto" takes a recording for an
# inverted one. Upright recordings measured 0.99-1.83 whole and 0.95 at least over any 30 s (the
# shared PPG, PulseSensor and PhysioKit captures); their inversions 0.55-0.76 where the pulse is
# asymmetric. Between 0.8 and 1.25 the shape cannot tell (a PulseSensor's high-passed pulse is
# nearly symmetric), and the recording is left as it is.
INVERTED_BELOW = 0.8
POLARITY_MIN_S = 10


POLARITY_HELP = ("auto (default): turn the signal upside down when its pulse falls clearly faster "
                 "than it rises (absorbance-style raw counts, where more blood means less light); "
                 "upright or inverted: say it outright. The summary says which")


def slope_ratio(values, fs):
    """How much steeper the signal rises than it falls: the 99th percentile of its 20 ms rises over
    the 99th of its 20 ms falls (after a 40 ms moving average), or None for under 10 s of signal.

    Why: a pulse wave rises in 100-200 ms and falls over the rest of the beat, so an upright PPG has
    the steeper rises. An absorbance-style recording (raw photodiode counts, where more blood means
    less light) is upside down: the core's upstroke then lands on the slow edge, which keeps the
    beats (F1 98-99 %) but puts their times 20-50 ms adrift (IBI error on NeuroKit2 and BIDMC)."""
    if len(values) < POLARITY_MIN_S * fs:
        return None
    import numpy as np

    v = np.asarray(values, dtype=float)
    w = max(1, int(round(0.04 * fs)))
    smooth = np.convolve(v, np.ones(w) / w, "valid")
    lag = max(1, int(round(0.02 * fs)))
    d = smooth[lag:] - smooth[:-lag]
    rise = float(np.percentile(d, 99))
    fall = -float(np.percentile(d, 1))
    if rise <= 0 or fall <= 0:
        return None
    return rise / fall


def choose_polarity(values, fs, polarity="auto"):
    """(invert?, a note for the scaling description) for polarity "auto", "upright" or "inverted"."""
    if polarity not in POLARITIES:
        raise VagalError("polarity must be one of %s, got %r" % (", ".join(POLARITIES), polarity))
    if polarity != "auto":
        return polarity == "inverted", "" if polarity == "upright" else ", inverted"
    r = slope_ratio(values, fs)
    if r is None:
        return False, ", polarity not judged (under %d s)" % POLARITY_MIN_S
    if r < INVERTED_BELOW:
        return True, ", inverted (auto: it falls %.2fx as steeply as it rises)" % (1 / r)
    return False, ""


def to_adc(values, adc_bits=None, invert=False):
    """Map values into read_u16() counts; returns (ints, description of the scaling, the bits the
    values carry: the ADC's width for counts, 16 for values scaled linearly).

    adc_bits None guesses: non-negative integers are taken as counts of the narrowest ADC they fit
    (10, 12 or 16 bits), anything else is scaled linearly. The guess is wrong for a weak 12-bit
    recording that never exceeds 1023 (it would sit near the 10-bit rail and read as saturated),
    so adc_bits (10, 12 or 16) says the width outright; values that do not fit it are an error.
    invert turns the signal upside down: counts as (top - count), so a rail stays a rail (a
    drop-out to zero then reads as the top rail); other values mirrored within their range."""
    lo = min(values)
    hi = max(values)
    if adc_bits is None and lo >= 0 and all(float(v).is_integer() for v in values):
        adc_bits = next((b for b in ADC_BITS if hi < 1 << b), None)
    if adc_bits is not None:
        if adc_bits not in ADC_BITS:
            raise VagalError("--adc-bits must be one of 10, 12, 16, got %r" % (adc_bits,))
        top = (1 << adc_bits) - 1
        bad = next((v for v in values if not float(v).is_integer() or not 0 <= v <= top), None)
        if bad is not None:
            raise VagalError("--adc-bits %d: %g is not a %d-bit count (integers 0..%d)"
                             % (adc_bits, bad, adc_bits, top))
        shift = 16 - adc_bits
        what = "%d-bit ADC counts%s" % (adc_bits, " x %d" % (1 << shift) if shift else "")
        if invert:
            return [(top - int(v)) << shift for v in values], what, adc_bits
        return [int(v) << shift for v in values], what, adc_bits
    s = sorted(values)
    p_lo = s[int(0.005 * (len(s) - 1))]
    p_hi = s[int(0.995 * (len(s) - 1))]
    if p_hi <= p_lo:
        p_lo, p_hi = lo, hi
    if p_hi <= p_lo:
        return [32768] * len(values), "constant signal", 16
    gain = 32768.0 / (p_hi - p_lo)
    base = p_lo
    if invert:
        gain, base = -gain, p_hi
    out = []
    for v in values:
        c = int(round(16384 + (v - base) * gain))
        out.append(0 if c < 0 else 65535 if c > 65535 else c)
    return out, "linear: %.6g..%.6g -> %s" % (p_lo, p_hi, "49152..16384" if invert else "16384..49152"), 16


def load_recording(path, column=None, fs=None, adc_bits=None, polarity="upright"):
    """Read one channel of a CSV (header row; '#' comment lines skipped) or WFDB record; adc_bits
    as to_adc; polarity as choose_polarity (the commands default to "auto"; "upright" here, for
    channels that are not a pulse, such as a breathing belt)."""
    path = str(path)
    is_wfdb = path.endswith(".hea") or (not os.path.exists(path) and os.path.exists(path + ".hea"))
    if not is_wfdb and not os.path.exists(path):
        raise VagalError("no such file: %s" % path)
    if not is_wfdb and os.path.isdir(path):
        raise VagalError("%s is a directory, not a recording" % path)
    if is_wfdb:
        values, column, rec_fs = _read_wfdb(path, column)
        fs = check_fs(fs if fs is not None else rec_fs)
    else:
        fs = check_fs(fs)
        values, column = _read_csv(path, column)
    if len(values) < 2:
        raise VagalError("%s has only %d sample(s)" % (path, len(values)))
    invert, note = choose_polarity(values, fs, polarity)
    samples, scaling, bits = to_adc(values, adc_bits, invert)
    scaling += note
    name = os.path.splitext(os.path.basename(path))[0]
    return Recording(name, samples, fs, column, scaling, bits)
