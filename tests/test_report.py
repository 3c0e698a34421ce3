"""vagal report: an HTML page whose figures exist and are real pictures, built from a demo session and
from sessions holding every message kind; bad input leaves nothing behind."""

import io
import os
import re
import subprocess
import sys

import pytest

from test_export import build_session, files_in, run_cli
from vagal_host import report as report_mod
from vagal_host.progress import Progress
from vagal_host.session import read_session

VAGAL = os.path.join(os.path.dirname(sys.executable), "vagal")


def images(index_path):
    """The PNG files the page shows, checked to be real, non-blank pictures; -> their names."""
    from matplotlib import image

    page = open(index_path, encoding="utf-8").read()
    names = re.findall(r"<img src='([^']+)'", page)
    d = os.path.dirname(index_path)
    for name in names:
        with open(os.path.join(d, name), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", name
        px = image.imread(os.path.join(d, name))
        h, w = px.shape[:2]
        assert w >= 600 and h >= 250, (name, px.shape)
        flat = px.reshape(-1, px.shape[2])[:, :3]
        colours = len({tuple(c) for c in flat[:: max(1, len(flat) // 20000)].round(3)})
        assert colours > 20, (name, colours)  # not one colour, not a blank frame with a title
        ink = (flat.sum(axis=1) < 2.5).mean()  # share of pixels that are not (near) white
        assert ink > 0.02, (name, ink)
    return names


@pytest.fixture(scope="module")
def demo_session(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    path = str(d / "demo.vagal")
    argv = [VAGAL, "demo", "--duration", "90", "--speed", "20", "--raw", "--session", path]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    return path


def test_report_from_demo_session(demo_session, tmp_path):
    path = demo_session
    out = tmp_path / "rep"
    r = subprocess.run([VAGAL, "report", path, "--out", str(out)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert str(out / "index.html") in r.stdout
    names = images(str(out / "index.html"))
    page = (out / "index.html").read_text()
    assert "heart_rate.png" in names
    assert "pulse.png" in names          # raw samples were streamed: the pulse with its beats
    # 90 s of demo: breaths judged (by the device, or re-analysed); coherence needs 64 s of clean
    # signal, which the simulated person's artefacts can prevent: then the page must say so
    assert "swing.png" in names
    session = read_session(path)
    if any(c.ratio_x100 >= 0 for c in session.of_kind("coherence")):
        assert "coherence.png" in names
    else:
        assert "coherence.png" not in names and report_mod.NO_CLEAN_COHERENCE in page
    assert sorted(files_in(out)) == sorted(names + ["index.html"])  # no temporaries, nothing else
    assert "Average heart rate" in page and "beats per minute" in page


def test_report_of_a_session_with_every_message(tmp_path, capsys):
    path = tmp_path / "full.vagal"
    build_session(path, parts=((40, "pace"), (200, "assess")), gap=(20, 25))
    out = tmp_path / "rep"
    status, stdout, _ = run_cli(["report", str(path), "--out", str(out), "--quiet"], capsys)
    assert status == 0
    assert "session 2" in stdout and "longest" in stdout
    names = images(str(out / "index.html"))
    assert names == ["pulse.png", "heart_rate.png", "swing.png", "coherence.png", "assessment.png", "spectrum.png",
                     "poincare.png"]
    page = (out / "index.html").read_text()
    assert "holds 2 sessions; this page shows session 2" in page
    # the device's own numbers: summary line and assessment
    assert "62.1 beats per minute" in page and "12.3 beats per minute" in page
    # time coherent: of the updates that had a value (the device's own 40 % counts the first minute's
    # empty updates too, beside a chart that cannot show them); the unmeasured share said apart
    from vagal_host.export import load

    _, _, part = load(str(path), None)
    values = [r for _, r, _ in report_mod.SessionData(part, str(path)).coherence if r is not None]
    m = re.search(r"<th>Time coherent</th><td><b>(\d+) % of the time it was measured</b>", page)
    assert m and values and int(m.group(1)) == round(100.0 * sum(r >= 1 for r in values) / len(values))
    assert "Your resonance rate: <b>5.90 breaths per minute</b>" in page and "2026-11-26" in page
    rows = re.findall(r"<tr( class='best')?><td>([0-9.]+)</td>", page)
    assert [r[1] for r in rows] == ["6.50", "6.00", "5.50"]
    assert [bool(r[0]) for r in rows] == [False, True, False]
    # issue 15: the rule's words and uncertainty, the same sentence as the live view; the table's
    # swing is the level the rule used (the bar height), its marked row the tallest bar
    assert "(+-0.12)" in page and "peak of the curve fitted through the swings at all the rates" in page
    assert "the rate with the biggest swing" not in page
    levels = re.findall(r"<tr(?: class='best')?><td>[0-9.]+</td><td>\d+</td><td>([0-9.]+)</td>", page)
    assert levels == ["8.8", "10.8", "8.8"], levels
    assert "worked out afterwards" not in page  # the device sent breaths and coherence itself


def test_report_chosen_part_and_default_directory(tmp_path, capsys):
    path = tmp_path / "two.vagal"
    build_session(path, parts=((40, "pace"), (100, "practice")), raw=False)
    status, stdout, _ = run_cli(["report", str(path), "--part", "1", "--quiet"], capsys)
    assert status == 0
    out = tmp_path / "two_s1_report"
    page = (out / "index.html").read_text()
    assert "this page shows session 1 (40 s, stopped) (choose another" in page
    assert "<h2>Assessment" not in page
    assert "raw pulse signal was not recorded" in page
    names = images(str(out / "index.html"))
    assert "pulse.png" not in names and "heart_rate.png" in names


def test_report_without_breath_lines_uses_reanalysis_or_says_so(tmp_path, capsys):
    path = tmp_path / "old.vagal"
    built = build_session(path, parts=((90, "pace"),), raw=False, extras=False)
    out = tmp_path / "rep"
    assert run_cli(["report", str(path), "--out", str(out), "--quiet"], capsys)[0] == 0
    page = (out / "index.html").read_text()
    ibis = [b[1] for b in built.parts[0]["beats"] if b[1] > 0]
    assert "<b>%.1f beats per minute</b>" % (60e6 * len(ibis) / sum(ibis)) in page  # no summary line
    names = images(str(out / "index.html"))
    try:
        import vagal_host.analysis  # noqa: F401
    except ImportError:
        assert "Swing per breath was not recorded in this session" in page
        assert "swing.png" not in names
    else:
        assert "swing.png" in names and "worked out afterwards" in page


@pytest.mark.parametrize("content", [b"", b"# vagal session 1\n0.1\tbeat 1 2 3\n0.05\tbeat 2 3 4\n",
                                     b"# vagal session 7\n"])
def test_bad_session_file_one_line_nothing_written(tmp_path, capsys, content):
    path = tmp_path / "bad.vagal"
    path.write_bytes(content)
    out = tmp_path / "rep"
    status, stdout, err = run_cli(["report", str(path), "--out", str(out)], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1 and "bad.vagal" in err
    assert not out.exists()
    assert files_in(tmp_path) == ["bad.vagal"]


def test_failure_while_drawing_leaves_no_partial_report(tmp_path, capsys, monkeypatch):
    path = tmp_path / "s.vagal"
    build_session(path, parts=((70, "pace"),))
    out = tmp_path / "rep"
    out.mkdir()
    (out / "index.html").write_text("the previous report")

    def full_disk(data, fname):
        raise OSError(28, "No space left on device")

    figures = list(report_mod.FIGURES)
    figures[3] = figures[3][:2] + (full_disk,) + figures[3][3:]  # coherence: after 3 figures were saved
    monkeypatch.setattr(report_mod, "FIGURES", tuple(figures))
    status, _, err = run_cli(["report", str(path), "--out", str(out)], capsys)
    assert status == 2 and "No space left on device" in err and len(err.strip().splitlines()) == 1
    assert files_in(out) == ["index.html"] and (out / "index.html").read_text() == "the previous report"


def test_unwritable_output(tmp_path, capsys):
    path = tmp_path / "s.vagal"
    build_session(path, parts=((20, "pace"),), raw=False, extras=False)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out in (blocker, blocker / "sub"):
        status, _, err = run_cli(["report", str(path), "--out", str(out)], capsys)
        assert status == 2 and len(err.strip().splitlines()) == 1 and "file" in err
    assert blocker.read_text() == "x" and files_in(tmp_path) == ["file", "s.vagal"]


# ---- progress

class TTY(io.StringIO):
    def isatty(self):
        return True


def test_progress_only_on_a_terminal_without_quiet_and_after_the_delay():
    t = [0.0]
    for stream, quiet, shown in ((io.StringIO(), False, False), (TTY(), True, False), (TTY(), False, True)):
        with Progress("drawing", total=4, quiet=quiet, stream=stream, clock=lambda: t[0]) as p:
            p.advance()  # before the delay: nothing yet
            assert stream.getvalue() == ""
            t[0] += 2.0
            p.advance()
            p.stage("drawing swing")
        assert bool(stream.getvalue()) == shown, stream.getvalue()
        if shown:
            assert "drawing" in stream.getvalue()


def test_coherence_never_valid_is_explained_not_drawn(tmp_path, capsys, monkeypatch):
    path = tmp_path / "short.vagal"
    build_session(path, parts=((28, "pace"),), raw=False)  # the device's coherence is -1 until 30 s
    out = tmp_path / "rep"
    assert run_cli(["report", str(path), "--out", str(out), "--quiet"], capsys)[0] == 0
    names = images(str(out / "index.html"))
    assert "coherence.png" not in names and "swing.png" in names
    page = (out / "index.html").read_text()
    # 28 s is too short for the first value: the page says so, not that the signal was bad
    assert "needs about a minute of heartbeats" in page and report_mod.NO_CLEAN_COHERENCE not in page
    monkeypatch.setattr(report_mod, "COHERENCE_FIRST_S", 10)  # as if it had been long enough
    out2 = tmp_path / "rep2"
    assert run_cli(["report", str(path), "--out", str(out2), "--quiet"], capsys)[0] == 0
    assert report_mod.NO_CLEAN_COHERENCE in (out2 / "index.html").read_text()


def test_a_file_cut_off_mid_line_says_so_and_a_good_signal_is_called_good(tmp_path, capsys):
    path = tmp_path / "crash.vagal"
    build_session(path, parts=((70, "pace"),), raw=False)
    data = path.read_bytes()
    cut = data.index(b"\n", len(data) * 2 // 3) + 8  # inside a line, after the stretch of noisy signal
    path.write_bytes(data[:cut])
    out = tmp_path / "rep"
    status, stdout, _ = run_cli(["report", str(path), "--out", str(out), "--quiet"], capsys)
    assert status == 0
    assert "the file ends mid-line" in stdout
    page = (out / "index.html").read_text()
    assert "ends in the middle of a line" in page
    signal_row = re.search(r"<th>Signal good</th><td><b>(\d+) % of the time</b></td><td class='note'>([^<]*)<",
                           page)
    assert int(signal_row.group(1)) >= 80 and signal_row.group(2) == "good: 80 % or more", signal_row.groups()


def test_samples_the_device_lost_are_a_summary_row(tmp_path, capsys):
    from vagal import protocol
    from vagal_host.session import SessionWriter

    path = tmp_path / "lossy.vagal"
    w = SessionWriter(str(path), "/dev/x", "0.1.0")
    specs = [("hello", "0.1.0", 1, 250, "pico", "-"), ("session", 0, "start", "boot"),
             ("pacer", 0, 6000, 0, "in", 0), ("quality", 100, "ok"), ("stats", 5000, 30, 900, 9000, 1, 0, 0)]
    for i in range(60):
        specs.append(("beat", 1000 + i * 1000, 1000000 if i else 0, 1000, 90))
        if i % 5 == 4:
            specs.append(("stats", 5000 + i * 1000, 30 + 100 * (i // 5), 900, 9000, 1, 0, 0))
    w.event("connected", "/dev/x")
    for seq, spec in enumerate(specs):
        w.received(protocol.encode(spec[0], seq, *spec[1:]).encode()[:-1])
    w.close()
    out = tmp_path / "rep"
    status, _, _ = run_cli(["report", str(path), "--out", str(out), "--quiet"], capsys)
    assert status == 0
    page = (out / "index.html").read_text()
    assert "<th>Samples lost</th><td><b>1100</b></td>" in page  # 1130 at the end, 30 at the first stats


def test_figures_keep_their_scale_and_a_short_session_says_why(tmp_path):
    """Issue 17 items 2-3: one wild interval cannot stretch the heart-rate axis; coherence is a share
    on a linear scale (ratio 1 -> 50 %); a one-minute session says coherence needed more time."""
    hr = [(t, 65.0 + 6.0 * ((t % 10) / 10.0)) for t in range(0, 300)] + [(150.5, 210.0)]
    lo, hi = report_mod.hr_axis(hr)
    assert 50 < lo < 65 and 71 < hi < 90, (lo, hi)
    assert report_mod.coherence_pct(1.0) == 50.0 and report_mod.coherence_pct(4.0) == 80.0
    path = tmp_path / "short.vagal"
    r = subprocess.run([VAGAL, "demo", "--duration", "60", "--speed", "30", "--session", str(path)],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "rep"
    r = subprocess.run([VAGAL, "report", str(path), "--out", str(out), "--quiet"], capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    page = (out / "index.html").read_text()
    assert "Coherence needs about a minute of heartbeats before its first value" in page
    assert "vagal demo --raw" in page  # the pulse section says how to get it
