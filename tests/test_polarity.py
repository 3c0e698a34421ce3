"""Upside-down recordings (absorbance-style raw counts, where more blood means less light): `vagal
replay` and `vagal evaluate` turn them upright when the pulse clearly falls faster than it rises,
leave a recording whose shape cannot tell as it is, and take --polarity to say it outright."""

import sys
from pathlib import Path

import numpy as np
import pytest

from vagal_host.cli import main
from vagal_host.errors import VagalError
from vagal_host.recording import INVERTED_BELOW, load_recording, slope_ratio

sys.path.insert(0, str(Path(__file__).parent / "portable"))
import synth_ppg  # noqa: E402

FS = 100


def _write(path, values, fmt="%d"):
    path.write_text("ppg\n" + "".join((fmt + "\n") % v for v in values))
    return path


def _replay(tmp_path, rec, *extra):
    out = tmp_path / (rec.stem + "".join(extra).replace("-", "") + "_beats.csv")
    assert main(["replay", str(rec), "--column", "ppg", "--fs", str(FS), "--beats", str(out),
                 "--quiet"] + list(extra)) == 0
    return out.read_text()


def _intervals_error_ms(beats_csv, truth):
    """Mean absolute difference (ms) between found and true intervals, beats paired by time."""
    t = np.array([float(r.split(",")[0]) for r in beats_csv.splitlines()[1:]])
    tr = np.array(truth)
    near = np.array([tr[np.argmin(np.abs(tr - x))] for x in t])
    ok = np.abs(near - t) < 0.15
    t, near = t[ok], near[ok]
    return 1000 * float(np.mean(np.abs(np.diff(t) - np.diff(near))))


def test_an_upside_down_recording_gives_the_beats_of_the_upright_one(tmp_path, capsys):
    x, truth = synth_ppg.ppg(FS, 60, hr_bpm=66, seed=4)
    up = _write(tmp_path / "up.csv", x)
    down = _write(tmp_path / "down.csv", [65535 - v for v in x])            # 16-bit counts
    up_f = _write(tmp_path / "up_f.csv", [v / 1000.0 for v in x], "%.3f")    # arbitrary units
    down_f = _write(tmp_path / "down_f.csv", [-v / 1000.0 for v in x], "%.3f")
    assert slope_ratio(x, FS) > 1 / INVERTED_BELOW
    assert slope_ratio([-v for v in x], FS) < INVERTED_BELOW
    capsys.readouterr()
    assert _replay(tmp_path, down) == _replay(tmp_path, up)
    # in arbitrary units the mapping's range is found by rank, which a mirror shifts by a sample:
    # the same beats, amplitudes a fraction of a percent apart
    t_down = [round(float(r.split(",")[0]), 3) for r in _replay(tmp_path, down_f).splitlines()[1:]]
    t_up = [round(float(r.split(",")[0]), 3) for r in _replay(tmp_path, up_f).splitlines()[1:]]
    assert t_down == t_up and len(t_up) >= len(truth) - 1
    said = capsys.readouterr().out.splitlines()
    assert "inverted (auto:" not in said[1] and "inverted (auto:" in said[0], said
    assert "16-bit ADC counts" in said[0]
    # told it is upright, the core follows the slow edge, whose rise outlasts the upstroke window
    # here: (almost) no beats (on the shared recordings turned over: intervals 20-50 ms adrift)
    forced = _replay(tmp_path, down, "--polarity", "upright").splitlines()[1:]
    assert len(forced) < len(truth) // 2, len(forced)
    assert _intervals_error_ms(_replay(tmp_path, up), truth) < 3
    # and told an upright one is inverted, it believes it
    assert _replay(tmp_path, up, "--polarity", "inverted") == _replay(tmp_path, down, "--polarity", "upright")


def test_a_shape_that_cannot_tell_or_a_short_recording_is_left_as_it_is(tmp_path, capsys):
    t = np.arange(60 * FS) / FS
    sine = 30000 + 8000 * np.sin(2 * np.pi * 1.1 * t)    # rises as fast as it falls
    r = slope_ratio(sine, FS)
    assert INVERTED_BELOW < r < 1 / INVERTED_BELOW, r
    rec = load_recording(_write(tmp_path / "sine.csv", sine.astype(int)), "ppg", FS, polarity="auto")
    assert "inverted" not in rec.scaling and list(rec.samples) == [int(v) for v in sine.astype(int)]
    x, _ = synth_ppg.ppg(FS, 8, seed=2)
    short = load_recording(_write(tmp_path / "short.csv", [65535 - v for v in x]), "ppg", FS,
                           polarity="auto")
    assert "not judged (under 10 s)" in short.scaling and list(short.samples) == [65535 - v for v in x]


def test_a_count_recording_turned_over_keeps_its_rails(tmp_path):
    # 12-bit counts: inverted as 4095 - count, so a clipped top is still a rail, not a mid level
    counts = [0, 4095, 100, 4000] * (FS * 3)
    rec = load_recording(_write(tmp_path / "c.csv", counts), "ppg", FS, adc_bits=12, polarity="inverted")
    assert rec.samples[:4] == [4095 << 4, 0, 3995 << 4, 95 << 4]
    assert rec.scaling == "12-bit ADC counts x 16, inverted"


def test_evaluate_turns_an_upside_down_dataset_over(tmp_path, capsys):
    x, truth = synth_ppg.ppg(FS, 60, hr_bpm=72, seed=5)
    (tmp_path / "p.csv").write_text("PPG\n" + "".join("%.3f\n" % (-v / 1000.0) for v in x))
    refs = "".join("%.4f\n" % (t - 0.3) for t in truth if t > 0.3)
    (tmp_path / "p_rpeaks.csv").write_text("# fs=%d\ntime_s\n" % FS + refs)
    ibi = {}
    for pol in ("auto", "upright"):
        assert main(["evaluate", str(tmp_path), "--jobs", "1", "--polarity", pol]) == 0
        row = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("p "))
        ibi[pol] = float(row.split()[7])
    assert ibi["auto"] < 3 and ibi["upright"] > 3 * ibi["auto"], ibi


def test_a_polarity_that_is_not_one_is_an_error(tmp_path, capsys):
    rec = _write(tmp_path / "r.csv", [1, 2, 3] * 100)
    with pytest.raises(VagalError, match="polarity must be one of auto, upright, inverted"):
        load_recording(rec, "ppg", FS, polarity="sideways")
    with pytest.raises(SystemExit) as e:
        main(["replay", str(rec), "--fs", "100", "--beats", str(tmp_path / "b.csv"),
              "--polarity", "sideways"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--polarity" in err[0] and "sideways" in err[0], err
    assert not (tmp_path / "b.csv").exists()
