"""The pulse core on the real recordings in ../shared/data (skipped, with the reason, when absent):
accuracy against ECG R-peaks, no beats in real drop-outs, and the same beats file from the same code
on CPython, the MicroPython unix port and the 32-bit WebAssembly port."""

import subprocess
from pathlib import Path

import numpy as np
import pytest

from vagal_host.evaluate import discover, run_case
from vagal_host.recording import load_recording
from vagal_host.replay_engines import rate_fraction, replay_cpython, replay_micropython

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is absent: real recordings not available")


def _case(part):
    return next(c for c in discover(DATA) if part in c.name)


@needs_data
@pytest.mark.parametrize("part,min_f1,max_ibi_ms", [("bio_resting_5min", 0.998, 7.0), ("bidmc_01", 0.988, 7.5)])
def test_accuracy_against_ecg(part, min_f1, max_ibi_ms):
    s = run_case(_case(part))
    assert s.f1 >= min_f1, (s.f1, s.missed, s.false)
    assert s.ibi_err_ms <= max_ibi_ms, s.ibi_err_ms


@needs_data
@pytest.mark.parametrize("name", ["P1_S1_baseline_1674758272_855629.csv", "P22_baseline_1675951799_453496.csv"])
def test_no_beats_in_real_dropouts(tmp_path, name):
    rec = load_recording(DATA / "physiokit" / name, "PPG Finger", 250)
    out = tmp_path / "beats.csv"
    replay_cpython(rec.samples, rec.fs, out)
    beats = np.loadtxt(out, delimiter=",", skiprows=1, ndmin=2)[:, 0]
    x = np.asarray(rec.samples)
    zero = x <= 64
    idx = np.round(beats * rec.fs).astype(int)
    inside = [b for b, i in zip(beats, idx) if zero[max(0, i - 2):i + 3].any()]
    assert zero.sum() > 50 and len(beats) > 50
    assert inside == []


@needs_data
def test_same_beats_on_three_runtimes(tmp_path):
    rec = load_recording(DATA / "neurokit2" / "bio_resting_5min_100hz.csv", "PPG", 100)
    a, b, c = tmp_path / "cpython.csv", tmp_path / "unix.csv", tmp_path / "wasm.csv"
    s1 = replay_cpython(rec.samples, rec.fs, a)
    s2 = replay_micropython(rec.samples, rec.fs, b)
    samples = tmp_path / "samples.txt"
    samples.write_text("".join("%d\n" % x for x in rec.samples))
    script = tmp_path / "replay.py"
    num, den = rate_fraction(rec.fs)
    script.write_text("from vagal.replay import run_file\nprint(run_file('/in.txt', '/out.csv', %d, %d))\n" % (num, den))
    proc = subprocess.run(["node", str(ROOT / "tests" / "wasm" / "run.mjs"), "--exec", str(script),
                           "--file", "/in.txt=%s" % samples, "--out", "/out.csv=%s" % c],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert a.read_bytes() == b.read_bytes() == c.read_bytes()
    assert s1 == s2 == proc.stdout.strip()
    assert a.read_text().count("\n") > 400
