"""vagal evaluate on datasets laid out other ways than ../shared/data: a PPG column with another
name, a sample rate the files do not state, a spreadsheet's byte-order mark, WFDB records, and a
reference file with no recording beside it (named on stderr, the rest still scored)."""

import sys
from pathlib import Path

import numpy as np
import pytest

from vagal_host.cli import main

sys.path.insert(0, str(Path(__file__).parent / "portable"))
import synth_ppg  # noqa: E402

LAG_S = 0.35   # the synthetic pulse peaks follow the "R-peaks" by this


def _dataset(folder, stem, fs, column, seconds=40, bom=False, fs_comment=True, seed=5):
    """A synthetic PPG CSV and its R-peaks (true peaks - LAG_S); returns the number of R-peaks."""
    x, truth = synth_ppg.ppg(fs, seconds, hr_bpm=72, seed=seed)
    text = "time_s,%s\n" % column + "".join("%.4f,%d\n" % (i / fs, v) for i, v in enumerate(x))
    (folder / (stem + ".csv")).write_text(("\ufeff" if bom else "") + text, encoding="utf-8")
    refs = [t - LAG_S for t in truth if t >= LAG_S]
    head = "# synthetic R-peaks (fs=%d Hz)\n" % fs if fs_comment else ""
    (folder / (stem + "_rpeaks.csv")).write_text(head + "time_s\n" + "".join("%.4f\n" % t for t in refs))
    return len(refs)


def _table(out):
    """recording -> (F1 %, TP, FP, FN) from the printed table."""
    rows = {}
    for line in out.splitlines()[1:]:
        f = line.split()
        if len(f) >= 7 and f[1].replace(".", "").isdigit():
            rows[f[0]] = (float(f[1]), int(f[4]), int(f[5]), int(f[6]))
    return rows


def test_other_column_names_and_an_unstated_rate_are_named_then_scored(tmp_path, capsys):
    n = _dataset(tmp_path, "ear", 100, "PPG Ear", bom=True, fs_comment=False)
    assert main(["evaluate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "skipped %s" % (tmp_path / "ear_rpeaks.csv") in err
    assert "no PPG column (columns: time_s, PPG Ear); name it with --column" in err   # BOM stripped
    assert main(["evaluate", str(tmp_path), "--column", "PPG Ear"]) == 2
    assert "cannot tell the sample rate" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path), "--column", "PPG Ear", "--fs", "100"]) == 0
    out = capsys.readouterr()
    assert out.err == ""
    f1, tp, fp, fn = _table(out.out)["ear"]
    assert tp + fn == n and fp == 0 and fn <= 1, (tp, fp, fn)    # the first beat may go to learning
    assert f1 > 98.5


def test_a_stated_rate_wins_over_fs_and_a_bad_fs_is_refused(tmp_path, capsys):
    _dataset(tmp_path, "a", 125, "PPG")
    assert main(["evaluate", str(tmp_path), "--fs", "100"]) == 0       # fs=125 in the references
    f1, tp, fp, fn = _table(capsys.readouterr().out)["a"]
    assert f1 > 98.5 and fp == 0
    assert main(["evaluate", str(tmp_path), "--fs", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "out of range" in err[0]


def test_an_orphan_reference_file_is_named_and_the_rest_scored(tmp_path, capsys):
    _dataset(tmp_path, "a", 100, "PLETH")
    (tmp_path / "lost_rpeaks.csv").write_text("# (fs=100 Hz)\nsample\n10\n")
    assert main(["evaluate", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "skipped %s: no signal file beside it" % (tmp_path / "lost_rpeaks.csv") in out.err
    rows = _table(out.out)
    assert set(rows) == {"a", "pooled"} and rows["a"][0] > 98.5


def test_wfdb_records_are_scored_with_their_header_rate_and_ecg(tmp_path, capsys):
    wfdb = pytest.importorskip("wfdb")
    fs = 125
    x, truth = synth_ppg.ppg(fs, 40, hr_bpm=64, seed=8)
    refs = np.array([t - LAG_S for t in truth if t >= LAG_S])
    # an ECG stand-in: a narrow spike at each R-peak, its top between samples
    t = np.arange(len(x)) / fs
    ecg = np.zeros(len(x))
    for r in refs:
        ecg += np.exp(-((t - r) / 0.012) ** 2)
    sig = np.column_stack([np.asarray(x, dtype=float) / 65535.0, ecg])
    wfdb.wrsamp("rec", fs=fs, units=["NU", "mV"], sig_name=["PLETH", "II"], p_signal=sig,
                fmt=["16", "16"], write_dir=str(tmp_path))
    (tmp_path / "rec_rpeaks.csv").write_text(
        "sample\n" + "".join("%d\n" % round(r * fs) for r in refs))   # no fs=: the header's 125 Hz
    assert main(["evaluate", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert out.err == ""
    line = next(ln for ln in out.out.splitlines() if ln.startswith("rec "))
    f = line.split()
    assert float(f[1]) > 98.5 and int(f[5]) == 0
    ibi, ibi_fine = float(f[7]), float(f[9])
    assert ibi_fine == ibi_fine and ibi_fine < ibi          # refined on the ECG: a number, and closer


def test_wfdb_records_are_scored_against_their_beat_annotations(tmp_path, capsys):
    # PhysioNet's layout: <rec>.hea/.dat and the beats in <rec>.atr. Only beat codes count: the
    # rhythm change (+) and the noise mark (~) between them are not beats.
    wfdb = pytest.importorskip("wfdb")
    fs = 125
    x, truth = synth_ppg.ppg(fs, 40, hr_bpm=64, seed=8)
    refs = [round((t - LAG_S) * fs) for t in truth if t >= LAG_S]
    wfdb.wrsamp("rec", fs=fs, units=["NU"], sig_name=["PLETH"],
                p_signal=np.asarray(x, dtype=float)[:, None] / 65535.0, fmt=["16"],
                write_dir=str(tmp_path))
    samples = sorted(refs + [refs[3] + 20, refs[9] + 30])
    symbols = ["+" if s == refs[3] + 20 else "~" if s == refs[9] + 30 else "N" for s in samples]
    wfdb.wrann("rec", "atr", np.array(samples), symbol=symbols, write_dir=str(tmp_path))
    wfdb.wrsamp("other", fs=fs, units=["NU"], sig_name=["PLETH"],
                p_signal=np.asarray(x, dtype=float)[:, None] / 65535.0, fmt=["16"],
                write_dir=str(tmp_path))                                  # no .atr beside it
    assert main(["evaluate", str(tmp_path)]) == 2                          # not asked for: none
    assert "or WFDB records" not in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path), "--ann", "atr"]) == 0
    out = capsys.readouterr()
    assert "skipped %s: no other.atr annotation file beside it" % (tmp_path / "other.hea") in out.err
    f1, tp, fp, fn = _table(out.out)["rec"]
    # every N is a reference (less the last, whose pulse would come after the end), + and ~ none
    assert len(refs) - 1 <= tp + fn <= len(refs) and fp == 0 and fn <= 1, (tp, fp, fn, len(refs))
    assert main(["evaluate", str(tmp_path), "--ann", "../x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--ann takes an annotation file's extension" in err[0], err
    (tmp_path / "rec.atr").write_bytes(b"\x00\x01garbage")
    assert main(["evaluate", str(tmp_path), "--ann", "atr"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("skipped ") and len(err) == 2, err
    assert "error: " in err[1] and "rec.atr is not a readable WFDB annotation file" in err[1], err
