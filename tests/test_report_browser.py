"""The report as a person sees it (issue 17): headless Chromium renders the page of a first 60 s
session and of a 15-minute assessment; the sections are there, every figure is a real picture, and the
screenshot is a page, not a blank. Skipped, with the reason, where Chromium is not installed."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from test_report import images

VAGAL = os.path.join(os.path.dirname(sys.executable), "vagal")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install "
                                    "chromium; .ci/run installs it)")


def _session(tmp_path, name, *args):
    path = tmp_path / (name + ".vagal")
    r = subprocess.run([VAGAL, "demo", "--session", str(path), *args], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    out = tmp_path / (name + "_report")
    r = subprocess.run([VAGAL, "report", str(path), "--out", str(out), "--quiet"], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return out / "index.html"


def _chromium(*args):
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           *args], capture_output=True, text=True, timeout=120)


def _look(index, shot):
    """(rendered headings, screenshot pixels) of the page in Chromium."""
    from matplotlib import image

    dom = _chromium("--dump-dom", "file://" + str(index))
    assert dom.returncode == 0, dom.stderr[-500:]
    headings = re.findall(r"<h2>([^<]+)</h2>", dom.stdout)
    r = _chromium("--window-size=1100,4000", "--screenshot=" + str(shot), "file://" + str(index))
    assert r.returncode == 0 and shot.is_file(), r.stderr[-500:]
    return headings, image.imread(str(shot))


@needs_chromium
def test_a_first_60_s_session_and_a_15_minute_assessment_in_a_browser(tmp_path):
    first = _session(tmp_path, "first", "--duration", "60", "--speed", "30")
    assess = _session(tmp_path, "assess", "--duration", "900", "--speed", "40", "--mode", "assess")
    for index, want in ((first, ("Summary", "Your pulse", "Heart rate and breathing", "Coherence",
                                 "Heart rate variability")),
                        (assess, ("Summary", "Your pulse", "Heart rate and breathing", "Swing per breath",
                                  "Coherence", "Assessment", "Heart rate variability"))):
        headings, px = _look(index, tmp_path / (index.parent.name + ".png"))
        for h in want:
            assert h in headings, (index, headings)
        names = images(str(index))  # every figure the page shows is a real, non-blank picture
        page = index.read_text(encoding="utf-8")
        # an empty section says why and what to do instead of showing nothing
        for section in page.split("<h2>")[1:]:
            assert "<img" in section or "<table" in section or "class='missing'" in section, section[:200]
        ink = (px[..., :3].sum(axis=2) < 2.7).mean()  # the rendered page has text and figures on it
        assert px.shape[1] == 1100 and ink > 0.02, ink
        if index is assess:
            assert {"swing.png", "coherence.png", "assessment.png", "spectrum.png"} <= set(names), names
    first_page = first.read_text(encoding="utf-8")
    assert "Coherence needs about a minute" in first_page and "vagal demo --raw" in first_page
