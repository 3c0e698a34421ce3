"""Issue 13, items 1-2: no command writes over its input or an unrelated file; an unwritable target is
one line and exit 2 (vagal_host.outputs)."""

import os
import shutil
import sys
from pathlib import Path

import pytest

from vagal_host.cli import main

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "session_corpus"
sys.path.insert(0, str(Path(__file__).parent / "portable"))
import synth_ppg  # noqa: E402


def _session(tmp_path):
    path = tmp_path / "S.vagal"
    shutil.copy(CORPUS / "v1-demo.vagal", path)
    return path


def _recording(path):
    x, _ = synth_ppg.ppg(100, 20, hr_bpm=66, seed=4)
    path.write_text("time,ppg\n" + "".join("%d,%d\n" % (i, v) for i, v in enumerate(x)))


def _fails(argv, capsys, *words):
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    assert len(err.strip().splitlines()) == 1, err
    for w in words:
        assert w in err, err
    return err


def test_export_never_writes_over_its_session(tmp_path, capsys):
    s = _session(tmp_path)
    before = s.read_bytes()
    for extra in ([], ["--force"]):
        _fails(["export", str(s), "--format", "kubios", "--out", str(s), "--quiet"] + extra, capsys,
               "is an input of this command")
        assert s.read_bytes() == before


def test_export_replaces_only_its_own_earlier_output_unless_forced(tmp_path, capsys):
    s = _session(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    _fails(["export", str(s), "--format", "kubios", "--out", str(notes), "--quiet"], capsys,
           "notes.txt exists and is not a Kubios RR file", "--force")
    assert notes.read_text() == "my notes\n"
    rr = tmp_path / "rr.txt"
    for _ in range(2):  # its own earlier output is replaced
        assert main(["export", str(s), "--format", "kubios", "--out", str(rr), "--quiet"]) == 0
    assert main(["export", str(s), "--format", "kubios", "--out", str(notes), "--quiet", "--force"]) == 0
    assert notes.read_text() == rr.read_text()
    # a beats table of another kind is not replaced by a Kubios file, nor a CSV table by another table
    d = tmp_path / "csv"
    assert main(["export", str(s), "--format", "csv", "--out", str(d), "--quiet"]) == 0
    assert main(["export", str(s), "--format", "csv", "--out", str(d), "--quiet"]) == 0
    beats = d / "S_beats.csv"
    _fails(["export", str(s), "--format", "kubios", "--out", str(beats), "--quiet"], capsys, "not a Kubios")
    hrv = d / "S_hrv.csv"
    hrv.write_text(beats.read_text())
    _fails(["export", str(s), "--format", "csv", "--out", str(d), "--quiet"], capsys, "S_hrv.csv exists")
    assert hrv.read_text() == beats.read_text()  # and nothing else of that export was renamed in
    assert not [n for n in os.listdir(d) if n.startswith(".vagal-tmp")]


def test_report_and_wfdb_keep_unrelated_files(tmp_path, capsys):
    s = _session(tmp_path)
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<html>mine</html>")
    _fails(["report", str(s), "--out", str(site), "--quiet"], capsys, "index.html exists")
    assert (site / "index.html").read_text() == "<html>mine</html>"
    assert os.listdir(site) == ["index.html"]
    rep = tmp_path / "rep"
    for _ in range(2):
        assert main(["report", str(s), "--out", str(rep), "--quiet"]) == 0
    w = tmp_path / "w"
    w.mkdir()
    (w / "S.hea").write_text("S 1 250 10\nS.dat 16 1 0 0 0 0 0 PPG\n")  # someone else's record
    _fails(["export", str(s), "--format", "wfdb", "--out", str(w), "--quiet"], capsys, "S.hea exists")
    (w / "S.hea").unlink()
    for _ in range(2):
        assert main(["export", str(s), "--format", "wfdb", "--out", str(w), "--quiet"]) == 0


@pytest.mark.parametrize("engine", ["cpython", "micropython"])
def test_replay_never_writes_over_its_recording_or_a_stranger(tmp_path, capsys, engine):
    rec = tmp_path / "r.csv"
    _recording(rec)
    before = rec.read_bytes()
    base = ["replay", str(rec), "--column", "ppg", "--fs", "100", "--quiet", "--engine", engine]
    _fails(base + ["--beats", str(rec)], capsys, "is an input of this command")
    _fails(base + ["--beats", str(rec), "--force"], capsys, "is an input of this command")
    assert rec.read_bytes() == before
    notes = tmp_path / "notes.csv"
    notes.write_text("a,b\n1,2\n")
    _fails(base + ["--beats", str(notes)], capsys, "is not a vagal replay beats file")
    assert notes.read_text() == "a,b\n1,2\n"
    beats = tmp_path / "beats.csv"
    for _ in range(2):
        assert main(base + ["--beats", str(beats)]) == 0
    assert main(base + ["--beats", str(notes), "--force"]) == 0
    assert notes.read_text() == beats.read_text()


@pytest.mark.parametrize("engine", ["cpython", "micropython"])
def test_replay_into_an_unwritable_folder_is_one_line(tmp_path, capsys, engine):
    rec = tmp_path / "r.csv"
    _recording(rec)
    target = Path("/sys/fs/b.csv")  # a folder that exists and nobody (not even root) can write
    if not target.parent.is_dir():
        pytest.skip("no /sys/fs here")
    _fails(["replay", str(rec), "--column", "ppg", "--fs", "100", "--quiet", "--engine", engine,
            "--beats", str(target)], capsys, "cannot write /sys/fs/b.csv")
