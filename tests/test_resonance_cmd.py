"""`vagal resonance`: tables on stdout, three PNGs per session, one-line errors and nothing half-written."""

import os

import pytest

from vagal_host import analysis, cli
from vagal_host.commands import resonance as cmd
from vagal_host.session import SessionWriter

from test_analysis import DeviceSim, _Clock

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def two_sessions(tmp_path_factory):
    path = tmp_path_factory.mktemp("res") / "morning.vagal"
    dev = DeviceSim(path, seed=11)
    dev.session(130, rate_mbpm=6000, new_rate=(65.0, 5000))
    dev.now += 3000000
    dev.session(60, rate_mbpm=5500, quality_gap=(20.0, 30.0))
    dev.close()
    return path


def test_tables_and_plots(two_sessions, tmp_path, capsys):
    out = tmp_path / "plots"
    assert cli.main(["resonance", str(two_sessions), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    got = analysis.analyse_session(two_sessions)
    assert len(got) == 2
    names = sorted(os.listdir(out))
    assert names == sorted("morning-s%d-%s.png" % (i, k) for i in (1, 2) for k in ("hr", "swing", "rates"))
    for n in names:
        data = (out / n).read_bytes()
        assert data[:8] == PNG and len(data) > 5000
    # every judged breath is a row, and the per-rate rows are those of the analysis
    for a in got:
        for b in a.breaths:
            assert ("%7.1f  %5s  %9.1f" % (b.t_s, "yes" if b.valid else "no", b.swing_bpm)) in text
        for r in a.rates:
            assert ("  %8.1f  %7d  %9.1f" % (r.rate_bpm, r.breaths, r.swing_bpm)) in text
    assert {r.rate_bpm for r in got[0].rates} >= {6.0, 5.0}
    assert "session 2: source host, mode pace, 60.0 s" in text
    assert "device sent %d breath lines; re-analysis agrees on validity and swing for %d" % (
        len(got[0].device_breaths), len(got[0].device_breaths)) in text


def test_default_out_is_beside_the_session(two_sessions, tmp_path, capsys):
    copy = tmp_path / "copy.vagal"
    copy.write_bytes(two_sessions.read_bytes())
    assert cli.main(["resonance", str(copy)]) == 0
    assert (tmp_path / "copy-s1-hr.png").exists() and (tmp_path / "copy-s2-rates.png").exists()


def _fails(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vagal resonance: error: ")
    return err[0]


def test_bad_sessions_fail_in_one_line_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "never"
    junk = tmp_path / "junk.vagal"
    junk.write_bytes(b"hello world\n")
    assert "not a vagal session file" in _fails(["resonance", str(junk), "--out", str(out)], capsys)
    empty = tmp_path / "empty.vagal"
    w = SessionWriter(str(empty), "/dev/x", "0.1.0", clock=_Clock())
    w.close()
    assert "no session with beats or pacer lines" in _fails(
        ["resonance", str(empty), "--out", str(out)], capsys)
    assert "cannot read session file" in _fails(["resonance", str(tmp_path / "nope.vagal")], capsys)
    assert "is a folder" in _fails(["resonance", str(tmp_path)], capsys)
    backwards = tmp_path / "backwards.vagal"  # read (the time is damaged, not the line), but empty
    backwards.write_bytes(b"# vagal session 1\n2.000\t#connected x\n1.000\t#end\n")
    assert "no session with beats or pacer lines" in _fails(
        ["resonance", str(backwards), "--out", str(out)], capsys)
    assert not out.exists()


def test_a_failing_plot_leaves_no_png_and_no_temporary(two_sessions, tmp_path, capsys, monkeypatch):
    out = tmp_path / "partial"

    def broken(plt, a, title):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cmd, "_plot_rates", broken)
    assert "No space left on device" in _fails(["resonance", str(two_sessions), "--out", str(out)],
                                               capsys)
    assert os.listdir(out) == []


def test_the_real_app_s_assessment_is_shown_beside_the_re_analysis(tmp_path, capsys):
    from test_app import run_for
    from test_app_modes import boot, person_board, write_settings
    from vagal import protocol as P

    write_settings(tmp_path, autostart=False, assess_step_s=30)
    app, board = boot(tmp_path, person_board(tmp_path, resonance_hz=0.09, seed=5))
    run_for(app, board, 12)
    board.send(P.encode_command("date", 1, "2026-11-26"))
    board.send(P.encode_command("mode", 2, "assess"))
    run_for(app, board, 480)  # 5 steps of 30 s (extended to 6 valid breaths), up to 2 more
    path = tmp_path / "assess.vagal"
    w = SessionWriter(str(path), "/dev/fake", "0.1.0", clock=_Clock())
    w.event("connected", "/dev/fake")
    for line in bytes(board.out).split(b"\n")[:-1]:
        w.received(line)
    w.close()
    [a] = analysis.analyse_session(path)
    res = a.device_assessment.result
    assert res is not None and res.state == "done" and res.date == "2026-11-26"
    assert [r.rate_bpm for r in a.device_assessment.steps][:5] == [6.5, 6.0, 5.5, 5.0, 4.5]
    assert cli.main(["resonance", str(path), "--out", str(tmp_path / "p")]) == 0
    text = capsys.readouterr().out
    assert ", mode assess -> practice, " in text  # the assessment, then practice at its result
    assert "device assessment done: resonance %.2f /min (best tested %.2f), date 2026-11-26" % (
        res.rate_bpm, res.chosen_bpm) in text
    for r in a.device_assessment.steps:
        assert "  %8.1f  %7d  %9.1f  %7.1f" % (r.rate_bpm, r.breaths, r.swing_bpm, r.fit_bpm) in text
    # the re-analysis sees the same rates the device stepped through
    assert {r.rate_bpm for r in a.rates} >= {6.5, 6.0, 5.5, 5.0, 4.5}


def test_output_piped_into_a_reader_that_leaves_is_not_a_traceback(two_sessions, tmp_path):
    """`vagal resonance s.vagal | head -1`: the closed pipe ends the command quietly."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-m", "vagal_host.cli", "resonance", str(two_sessions), "--out",
                          str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err, err
