"""The device's viper beat detector (firmware/vagal/pulse_viper.py) against the pure-Python
reference on every shared recording, sample for sample, on the MicroPython unix port (which
compiles viper for x86-64 as the Pico does for ARMv6-M): push()'s result, quality, every beat's
time, interval, amplitude and confidence, and the whole state at the end (tests/portable/pulse_twin.py).
The synthetic sweeps are tests/portable/test_pulse_viper.py. Skipped, with the reason, when the
recordings or the unix port are absent."""

import os
import subprocess
from pathlib import Path

import pytest

from vagal_host.recording import load_recording
from vagal_host.replay_engines import micropython_binary, rate_fraction
from vagal_host.errors import VagalError

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

# every PPG channel in ../shared/data, at its rate
RECORDINGS = [
    ("bidmc/bidmc_01_Signals.csv", "PLETH", 125),
    ("heartpy/data.csv", None, 100),
    ("heartpy/data2.csv", "hr", 117),
    ("heartpy/data3.csv", "hr", 100),
    ("neurokit2/bio_resting_5min_100hz.csv", "PPG", 100),
    ("physiokit/P11_baseline_1675943915_070305.csv", "PPG Finger", 250),
    ("physiokit/P11_baseline_1675943915_070305.csv", "PPG Ear", 250),
    ("physiokit/P1_S1_baseline_1674758272_855629.csv", "PPG Finger", 250),
    ("physiokit/P1_S1_baseline_1674758272_855629.csv", "PPG Ear", 250),
    ("physiokit/P22_baseline_1675951799_453496.csv", "PPG Finger", 250),
    ("physiokit/P22_baseline_1675951799_453496.csv", "PPG Ear", 250),
]


def _unix_port():
    try:
        return micropython_binary()
    except VagalError as e:
        pytest.skip(str(e))


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is absent: real recordings not available")
@pytest.mark.parametrize("rel,column,fs", RECORDINGS, ids=["%s:%s" % (r[0], r[1]) for r in RECORDINGS])
def test_viper_detector_gives_the_reference_beats_on_every_recording(tmp_path, rel, column, fs):
    exe = _unix_port()
    rec = load_recording(DATA / rel, column, fs, polarity="auto")
    samples = tmp_path / "samples.txt"
    samples.write_text("".join("%d\n" % x for x in rec.samples))
    num, den = rate_fraction(rec.fs)
    code = ("import pulse_twin\n"
            "assert pulse_twin.available(), 'no viper BeatDetector on the unix port'\n"
            "xs = [int(v) for v in open(%r)]\n"
            "print('beats %%d handed %%d samples %%d' %% (pulse_twin.compare(xs, %d, %d, 16, %d) + (len(xs),)))\n"
            % (str(samples), num, den, rec.resolution))
    env = dict(os.environ, MICROPYPATH="%s:%s:%s/.frozen" % (ROOT / "firmware", ROOT / "tests" / "portable", ROOT))
    proc = subprocess.run([exe, "-X", "heapsize=64M", "-c", code], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    words = proc.stdout.split()
    beats, handed, n = int(words[1]), int(words[3]), int(words[5])
    assert n == len(rec.samples)
    assert beats > 20 or rel.startswith("heartpy/data.csv"), proc.stdout
    assert handed * 5 < n, proc.stdout      # the fast path did the work (drop-outs are the reference's)
