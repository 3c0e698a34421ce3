"""vagal_host.robustness on a synthetic recording, so the tables in docs/benchmarks.md cannot rot
without ../shared/data: every condition is applied and scored, the conditions do what they say,
and the atrial fibrillation generator's beats are where it says."""

import numpy as np

from vagal_host import bench, robustness
from vagal_host.evaluate import discover

from test_bench import PAT_S, synthetic_case


def test_every_condition_is_scored_on_a_synthetic_recording(tmp_path):
    xs, beats = synthetic_case(tmp_path, fs=125, seconds=90)
    rows = robustness.recording_rows(discover(tmp_path))
    names = [cond for _, cond, _, _ in rows]
    assert names == [n for n, v in robustness.conditions(np.asarray(xs), 125).items() if v is not None]
    by = {cond: (sc, states) for _, cond, sc, states in rows}
    sc, states = by["as recorded"]
    assert sc.f1 > 0.97 and abs(sc.lag_s - PAT_S) < 0.05
    assert sum(states.values()) == 1.0 or abs(sum(states.values()) - 1.0) < 1e-9
    # a glitch a sample long costs no beat; a gain step costs at most one
    assert by["rail spikes, 1 per 10 s"][0].tp >= sc.tp - 1
    assert by["gain x0.3 from 60 s"][0].tp >= sc.tp - 2
    text = robustness.render(rows, [(0.0, 100, 3, 0), (0.35, 100, 2, 1)])
    assert "| syn | weak pulse (32 counts, 0.5 count noise) |" in text
    assert "| none | 100 | 3 (3.0 %) | 0 |" in text and "| 0.35 of the pulse | 100 | 2 (2.0 %) | 1 |" in text
    report = bench.render(bench.machine_facts(), None, None, bench.rp2040_empty_loop_us(), (2000.0, 5e5),
                          None, 1.0, "syn", "data", robust=(rows, [(0.0, 100, 3, 0)]))
    assert "## 5. Robustness" in report and "%d synthetic recordings" % robustness.AF_PER_ROW in report


def test_conditions_change_the_signal_as_named():
    fs = 125
    t = np.arange(60 * fs) / fs
    raw = np.sin(2 * np.pi * 1.2 * t) ** 9
    c = robustness.conditions(raw, fs)
    weak = c["weak pulse (32 counts, 0.5 count noise)"]
    assert np.all(weak == np.round(weak)) and 25 <= np.ptp(np.percentile(weak, [1, 99])) <= 40
    spikes = c["rail spikes, 1 per 10 s"] - raw
    assert 1 <= np.count_nonzero(spikes) <= 20
    assert c["mains 50 Hz, 30 % of range"] is not None
    assert robustness.conditions(raw, 100)["mains 50 Hz, 30 % of range"] is None   # above Nyquist/2


def test_af_generator_puts_weak_pulses_after_short_intervals():
    x, truth = robustness.af_ppg(250, 30, 0.6, 0.4, seed=7, dicrotic=0.0)
    ibi = np.diff(truth)
    assert 0.6 * 0.6 - 1e-9 <= ibi.min() and ibi.max() <= 0.6 * 1.4 + 1e-9
    # the pulse after the shortest interval is smaller than the one after the longest
    def height(tb):
        i = int(round(tb * 250))
        return x[i] - x[max(0, i - 60):i].min()
    short = truth[1:][np.argmin(ibi)]
    long_ = truth[1:][np.argmax(ibi)]
    assert height(short) < height(long_)
    rows = robustness.af_sweep(fs=125, duration_s=30, means=(0.6,), spreads=(0.3,), dicrotics=(0.0,), seeds=(5,))
    (dic, n, missed, extra), = rows
    assert dic == 0.0 and n > 40 and missed <= n // 10 and extra <= 1
