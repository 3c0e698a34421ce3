"""The report's standard HRV (issue 17): NeuroKit2's numbers on the device's cleaned intervals, a
rejected beat or a lost pulse left out (not bridged), and a short session told why it has none."""

import collections
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

from vagal_host import hrv_report
from vagal_host.export import load

VAGAL = os.path.join(os.path.dirname(sys.executable), "vagal")
Beat = collections.namedtuple("Beat", "t_ms ibi_us amp conf")
Quality = collections.namedtuple("Quality", "t_ms state")


class _Part:
    def __init__(self, records):
        self.records = records

    def of(self, kind):
        return [r for r in self.records if type(r).__name__.lower() == kind]


def _beats(ibis_ms, t0_ms=1000):
    out = [Beat(t0_ms, 0, 1000, 90)]
    t = t0_ms
    for ibi in ibis_ms:
        t += ibi
        out.append(Beat(t, ibi * 1000, 1000, 90))
    return out


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    d = tmp_path_factory.mktemp("hrv")
    path = str(d / "s.vagal")
    r = subprocess.run([VAGAL, "demo", "--duration", "240", "--speed", "40", "--session", path],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = d / "rep"
    r = subprocess.run([VAGAL, "report", path, "--out", str(out), "--quiet"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return path, (out / "index.html").read_text(encoding="utf-8"), out


def test_the_table_equals_neurokit2_on_the_same_intervals(demo_report):
    import neurokit2 as nk

    path, page, _ = demo_report
    _, _, part = load(path, None)
    iv = hrv_report.cleaned_intervals(part)
    d = {"RRI": np.asarray(iv.ibi_ms), "RRI_Time": np.asarray(iv.t_s)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = {}
        want.update(nk.hrv_time(d).iloc[0].to_dict())
        want.update(nk.hrv_frequency(d, normalize=False).iloc[0].to_dict())
        want.update(nk.hrv_nonlinear(d).iloc[0].to_dict())  # the whole public function, SD1/SD2 from it
    section = page[page.index("Heart rate variability"):]
    shown = dict(re.findall(r"<tr><th>([^<]+)</th><td[^>]*><b>([^<]+)</b>", section))
    for name, col, unit, digits, norm, words in hrv_report.MEASURES:
        assert name in shown, (name, shown)
        assert abs(float(shown[name]) - want[col]) <= 0.5 * 10 ** -digits + 1e-9, (name, shown[name], want[col])
    assert float(shown["RMSSD"]) > 0 and float(shown["LF power"]) > float(shown["HF power"])  # paced at ~6/min
    assert "spectrum.png" in page and "poincare.png" in page


def test_a_rejected_beat_and_a_lost_pulse_are_left_out_not_bridged():
    ibis = [int(round(900 + 60 * np.sin(2 * np.pi * k / 10))) for k in range(120)]  # one wave a breath
    recs = _beats(ibis[:60])
    t = recs[-1].t_ms
    recs.append(Beat(t + 450, 450000, 1000, 90))  # premature: HRV rejects it
    recs.append(Beat(t + 450 + 1300, 1300000, 1000, 90))  # and its compensatory pause
    recs.append(Quality(t + 2000, "noisy"))  # then the pulse is lost for a while
    recs.append(Quality(t + 9000, "ok"))
    later = _beats(ibis[60:], t0_ms=t + 9500)
    recs += later
    iv = hrv_report.cleaned_intervals(_Part(recs))
    assert 450.0 not in iv.ibi_ms and any(abs(b - 450.0) < 1e-9 for _, b in iv.rejected)
    assert len(iv.ibi_ms) == 120  # every regular interval, none across the loss (its first beat has ibi 0)
    pairs = hrv_report.poincare_pairs(iv)
    assert len(pairs) == 118  # no pair spans the rejected beats or the loss
    values = hrv_report.standard_hrv(iv)
    diffs = np.diff(ibis[:60]).tolist() + np.diff(ibis[60:]).tolist()
    assert values["HRV_RMSSD"] == pytest.approx(float(np.sqrt(np.mean(np.square(diffs)))), rel=1e-6)


def test_too_few_beats_give_no_numbers_and_the_page_says_why(tmp_path):
    iv = hrv_report.cleaned_intervals(_Part(_beats([900] * 30)))
    assert hrv_report.standard_hrv(iv) is None
    assert hrv_report.spectrum(iv) is None
    rows = hrv_report.table_rows({"HRV_RMSSD": 30.0})
    assert [r for r in rows if r[0] == "LF power"][0][1] == "-"
    assert "needs at least 2 minutes" in [r for r in rows if r[0] == "LF power"][0][5]
