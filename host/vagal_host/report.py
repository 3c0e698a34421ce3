"""`vagal report`: one session as an HTML page with PNG figures, for someone who is not an engineer.

Why the device's own numbers: swing, coherence and the assessment come from the session's `breath`,
`coherence`, `assess_step`, `assess_result` and `summary` lines, so the page shows what the pacer
itself judged. When a session has no breath lines (older firmware), vagal_host.analysis re-derives
them with the same core code if that module is there; otherwise the page says they were not recorded.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot), so the report never
touches a display or a global backend.
"""

import html
import os

from vagal_host.assessment_text import level_x10, result_text
from vagal_host.errors import VagalError
from vagal_host.export import AtomicDir, format_duration, load, raw_samples, record_name
from vagal_host.hrv_report import (MIN_INTERVALS, MIN_SPECTRUM_S, NORMS_SOURCE, cleaned_intervals,
                                   poincare_pairs, spectrum, standard_hrv, table_rows)
from vagal_host.outputs import REPORT_MARK
from vagal_host.progress import Progress

GOOD_QUALITY = ("ok",)
QUALITY_WORDS = {
    "learning": "getting used to the signal",
    "ok": "good",
    "no_contact": "no finger on the sensor",
    "saturated": "signal too strong (pressing too hard?)",
    "dropout": "signal lost",
    "noisy": "noisy (moving?)",
    "low_amplitude": "pulse too weak",
}
QUALITY_COLOURS = {"learning": "#dddddd", "no_contact": "#f4b6b6", "saturated": "#d9c2e9",
                   "dropout": "#f7a8a8", "noisy": "#f6d08a", "low_amplitude": "#f6ebb0"}
INHALE_COLOUR = "#d6e9f8"
ENVELOPE_BIN_S = 2.5  # the whole-session pulse panel: top and bottom of the pulse over each 2.5 s
HR_GAP_S = 4.0  # no accepted interval for this long: the heart-rate line is broken, not bridged
FIG_DPI = 100


def _figure(rows=1, height=3.2, ratios=None, sharex=True):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, height), dpi=FIG_DPI)
    FigureCanvasAgg(fig)
    kw = {"height_ratios": ratios} if ratios else {}
    axes = fig.subplots(rows, 1, sharex=sharex, gridspec_kw=kw) if rows > 1 else [fig.subplots()]
    return fig, axes


def _legend(ax):
    """Legend outside the plot, on the right, so it never hides data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, format="png")


class SessionData:
    """The numbers the figures and the summary need, in seconds and bpm, from one part."""

    def __init__(self, part, path=""):
        self.part = part
        self.duration = part.duration_s
        end = max([self.duration] + [t / 1000.0 for t in part.times_ms()])
        self.end = end
        self.beats = [(b.t_ms / 1000.0, b.ibi_us, b.amp) for b in part.of("beat")]
        self.intervals = cleaned_intervals(part)  # the device's cleaner's verdicts, for HR and HRV
        self.hr, self.hr_rejected = _cleaned_hr(self.intervals)
        q = part.of("quality")
        self.quality = []  # (start s, end s, state)
        for i, r in enumerate(q):
            stop = q[i + 1].t_ms / 1000.0 if i + 1 < len(q) else end
            self.quality.append((r.t_ms / 1000.0, stop, r.state))
        pacer = part.of("pacer")
        self.pacer_rate = [(p.t_ms / 1000.0, p.rate_mbpm / 1000.0) for p in pacer]
        self.inhales = []  # (start s, end s)
        start = None
        for p in pacer:
            t = p.t_ms / 1000.0
            if p.dir == "in" and start is None:
                start = t
            elif p.dir != "in" and start is not None:
                self.inhales.append((start, t))
                start = None
        if start is not None and pacer:
            self.inhales.append((start, pacer[-1].t_ms / 1000.0))
        self.breaths = [(b.t_ms / 1000.0, b.valid, b.swing_x10 / 10.0, b.fit_x10 / 10.0, b.phase_deg,
                         b.rate_mbpm / 1000.0) for b in part.of("breath")]
        self.coherence = [(c.t_ms / 1000.0, c.ratio_x100 / 100.0 if c.ratio_x100 >= 0 else None,
                           c.peak_mhz / 1000.0) for c in part.of("coherence")]
        self.breaths_source = "device" if self.breaths else None
        self.coherence_source = "device" if self.coherence else None
        if (not self.breaths or not self.coherence) and part.of("beat") and part.of("pacer"):
            breaths, coherence = reanalyse(part, path)
            if not self.breaths and breaths:
                self.breaths, self.breaths_source = breaths, "re-analysed"
            if not self.coherence and coherence:
                self.coherence, self.coherence_source = coherence, "re-analysed"
        self.steps = part.of("assess_step")
        results = part.of("assess_result")
        self.result = results[-1] if results else None
        summaries = part.of("summary")
        self.summary = summaries[-1] if summaries else None
        modes = part.of("mode")
        self.modes = [m.mode for m in modes]
        stats = part.of("stats")  # `lost` counts from the board's start: the part's share is the rise
        self.samples_lost = stats[-1].lost - stats[0].lost if len(stats) > 1 else 0
        self.raw, self.fs = raw_samples(part)

    def quality_at(self, t_s):
        """The signal quality in force at t_s ("ok" before the first quality line)."""
        state = "ok"
        for a, _, st in self.quality:
            if a > t_s:
                break
            state = st
        return state

    def good_fraction(self):
        """Share of the session (after start) with quality 'ok'; None without quality lines."""
        total = good = 0.0
        for a, b, s in self.quality:
            a, b = max(a, 0.0), min(b, self.end)
            if b > a:
                total += b - a
                if s in GOOD_QUALITY:
                    good += b - a
        return good / total if total > 0 else None


def _cleaned_hr(iv):
    """([(t_s, bpm)] of intervals vagal.hrv.HRV accepts, [(t_s, bpm)] of those it rejects), from
    hrv_report.cleaned_intervals (the part fed through vagal.pipeline as the device feeds it)."""
    return ([(t, 60000.0 / ibi) for t, ibi in zip(iv.t_s, iv.ibi_ms)],
            [(t, 60000.0 / ibi) for t, ibi in iv.rejected])


def reanalyse(part, path):
    """(breaths, coherence) re-derived by vagal_host.analysis from the beat, quality and pacer lines
    (the device's own core code); ([], []) when that is not possible."""
    import types

    try:
        from vagal_host import analysis
    except ImportError:
        return [], []
    records = part.records
    if part.joined:  # analysis starts sessions at `session start`; this part began before one
        records = [r for r in records if type(r).__name__ != "SessionState"]
    fake = types.SimpleNamespace(path=path, records=records, corrupt=0)
    try:
        results = analysis.analyse(fake)
    except VagalError:
        return [], []
    if not results:
        return [], []
    a = results[0]
    breaths = [(b.t_s, int(bool(b.valid)), b.swing_bpm, b.fit_bpm, b.phase_deg, b.rate_bpm)
               for b in a.breaths]
    coherence = [(c.t_s, c.ratio, c.peak_hz) for c in a.coherence]
    return breaths, coherence


def _shade_quality(ax, data):
    labelled = set()
    for a, b, s in data.quality:
        if s in GOOD_QUALITY or s not in QUALITY_COLOURS:
            continue
        label = QUALITY_WORDS.get(s, s) if s not in labelled else None
        labelled.add(s)
        ax.axvspan(a / 60.0, b / 60.0, color=QUALITY_COLOURS[s], alpha=0.8, lw=0, label=label)


def fig_pulse(data, path):
    """The raw pulse: whole session (min/max per pixel column) and a 15 s close-up with the beats."""
    import numpy as np

    if not data.raw:
        return False
    t = np.array([ms for ms, _ in data.raw]) / 1000.0
    x = np.array([v for _, v in data.raw], dtype=float)
    fig, (ax1, ax2) = _figure(2, 6.0, sharex=False)
    bins = int(min(1500, (t[-1] - t[0]) / ENVELOPE_BIN_S))  # each bin holds whole pulses
    if bins >= 20 and len(t) > 2 * bins:  # a whole session's waves are too dense: their envelope
        edges = np.linspace(0, len(t), bins + 1).astype(int)
        tt = np.array([t[a] for a in edges[:-1]])
        lo = np.array([x[a:b].min() for a, b in zip(edges[:-1], edges[1:])])
        hi = np.array([x[a:b].max() for a, b in zip(edges[:-1], edges[1:])])
        ax1.fill_between(tt / 60.0, lo, hi, color="#b03030", alpha=0.18, lw=0)
        ax1.plot(tt / 60.0, hi, color="#b03030", lw=0.8, label="top of each pulse")
        ax1.plot(tt / 60.0, lo, color="#7a1f1f", lw=0.8, label="bottom of each pulse")
        title = ("Pulse signal, whole session: the band between the lines is the pulse's height "
                 "(shaded: signal not usable)")
    else:
        ax1.plot(t / 60.0, x, color="#b03030", lw=0.6)
        title = "Pulse signal from the sensor, whole session (shaded: signal not usable)"
    _shade_quality(ax1, data)
    ax1.set_title(title, fontsize=10)
    ax1.set_xlabel("minutes from the start")
    ax1.set_ylabel("sensor reading")
    if bins >= 20 or any(s not in GOOD_QUALITY and s in QUALITY_COLOURS for _, _, s in data.quality):
        _legend(ax1)
    # close-up: 15 s in the middle of the longest good stretch (or the middle of the recording)
    good = [(max(a, t[0]), min(b, t[-1])) for a, b, s in data.quality if s in GOOD_QUALITY]
    good = [g for g in good if g[1] > g[0]]  # good stretches while raw samples were coming
    a, b = max(good, key=lambda g: g[1] - g[0]) if good else (t[0], t[-1])
    mid = (a + b) / 2.0
    w0, w1 = mid - 7.5, mid + 7.5
    sel = (t >= w0) & (t <= w1)
    ax2.plot(t[sel], x[sel], color="#b03030", lw=1.0, label="pulse")
    bt = [b for b, _, _ in data.beats if w0 <= b <= w1 and data.quality_at(b) in GOOD_QUALITY]
    if bt and sel.any():
        ax2.plot(bt, np.interp(bt, t, x), "v", color="#1f4e9c", ms=8, label="heartbeat found")
    ax2.set_title("Close-up of 15 seconds: each marker is a heartbeat the device found")
    ax2.set_xlabel("seconds from the start")
    ax2.set_ylabel("sensor reading")
    _legend(ax2)
    _save(fig, path)
    return True


def hr_axis(hr):
    """(low, high) bpm of the heart-rate axis: the accepted rates' 1st-99th percentiles with a margin
    and at least 20 bpm tall, so one outlier (or a rejected beat) cannot flatten the wave."""
    import numpy as np

    v = np.array([h for _, h in hr], dtype=float)
    lo, hi = np.percentile(v, 1), np.percentile(v, 99)
    pad = max(3.0, 0.15 * (hi - lo))
    lo, hi = lo - pad, hi + pad
    if hi - lo < 20.0:
        mid = (hi + lo) / 2.0
        lo, hi = mid - 10.0, mid + 10.0
    return float(lo), float(hi)


def fig_heart_rate(data, path):
    """Heart rate beat by beat over the breathing pacer (inhale bands), pacer rate underneath."""
    if not data.hr:
        return False
    fig, (ax1, ax2) = _figure(2, 5.0, ratios=(3, 1))
    for i, (a, b) in enumerate(data.inhales):
        ax1.axvspan(a / 60.0, b / 60.0, color=INHALE_COLOUR, lw=0, label="breathe in" if i == 0 else None)
    xs, ys = [], []
    for t, h in data.hr:  # the line breaks where beats are missing, instead of bridging the gap
        if xs and t - xs[-1] * 60.0 > HR_GAP_S:
            xs.append(float("nan"))
            ys.append(float("nan"))
        xs.append(t / 60.0)
        ys.append(h)
    ax1.plot(xs, ys, color="#b03030", lw=1.2, marker=".", ms=3, label="heart rate")
    lo, hi = hr_axis(data.hr)
    ax1.set_ylim(lo, hi)
    if data.hr_rejected:  # drawn where they fall, or on the axis's edge (never stretching it)
        ax1.plot([t / 60.0 for t, _ in data.hr_rejected],
                 [min(max(h, lo + 0.01 * (hi - lo)), hi - 0.01 * (hi - lo)) for _, h in data.hr_rejected],
                 "x", color="#999999", ms=5, clip_on=False,
                 label="beat that did not fit\n(missed or extra beat;\nleft out; on the edge\nwhen off the scale)")
    ax1.set_ylabel("heart rate\n(beats per minute)")
    ax1.set_title("Heart rate with the breathing pacer (blue bands: breathe in)")
    _legend(ax1)
    if data.pacer_rate:
        ax2.step([t / 60.0 for t, _ in data.pacer_rate], [r for _, r in data.pacer_rate], where="post",
                 color="#1f4e9c")
        lo = min(r for _, r in data.pacer_rate)
        hi = max(r for _, r in data.pacer_rate)
        ax2.set_ylim(lo - 0.5, hi + 0.5)
    ax2.set_ylabel("breaths\nper minute")
    ax2.set_xlabel("minutes from the start")
    _save(fig, path)
    return True


def fig_swing(data, path):
    """Heart-rate swing per breath: valid breaths coloured, the others grey."""
    if not data.breaths:
        return False
    fig, (ax,) = _figure(1, 3.4)
    width = min(0.15, 0.8 * max(1.0, data.end) / 60.0 / max(1, len(data.breaths)))
    for valid, colour, label in ((1, "#2e8b57", "measured"),
                                 (0, "#bbbbbb", "not judged\n(bad signal)")):
        pts = [(t / 60.0, s) for t, v, s, _, _, _ in data.breaths if (v == 1) == (valid == 1)]
        if pts:
            ax.bar([p[0] for p in pts], [p[1] for p in pts], width=width, color=colour, label=label)
    ax.set_ylabel("swing\n(beats per minute)")
    ax.set_xlabel("minutes from the start")
    ax.set_title("How far your heart rate rose and fell within each breath")
    _legend(ax)
    _save(fig, path)
    return True


COHERENCE_ZONES = ((0, 50, "#f4f4f4", "not coherent"), (50, 80, "#e3f1dc", "coherent"),
                   (80, 100, "#c5e3b6", "very coherent"))


def coherence_pct(ratio):
    """The device's coherence ratio as a share: ratio r means the one steady wave holds r times the
    power of all the rest, so r / (1 + r) of the heart rate's variation (1 -> 50 %, 4 -> 80 %)."""
    return 100.0 * ratio / (1.0 + ratio)


def fig_coherence(data, path):
    """Coherence over time on a linear 0-100 % scale with labelled zones."""
    pts = [(t / 60.0, coherence_pct(r)) for t, r, _ in data.coherence if r is not None]
    if not pts:
        return False
    fig, (ax,) = _figure(1, 3.4)
    for lo, hi, colour, label in COHERENCE_ZONES:
        ax.axhspan(lo, hi, color=colour, lw=0, label=label)
    ax.plot([p[0] for p in pts], [p[1] for p in pts], color="#6a3d9a", marker="o", ms=3, lw=1.2,
            label="your coherence")
    ax.set_ylim(0, 100)
    ax.set_ylabel("share of the heart-rate\nvariation in one wave (%)")
    ax.set_xlabel("minutes from the start")
    ax.set_title("Coherence: how much of your heart rate's rise and fall is one slow, steady wave")
    _legend(ax)
    _save(fig, path)
    return True


def fig_assessment(data, path):
    """Swing level per tested rate (the rule's bar heights), the tallest bar (chosen_mbpm) green,
    the result (the fitted curve's peak) as the red line."""
    if not data.steps:
        return False
    fig, (ax,) = _figure(1, 3.4)
    chosen = data.result.chosen_mbpm if data.result is not None else None
    rates = [s.rate_mbpm / 1000.0 for s in data.steps]
    gaps = [abs(a - b) for i, a in enumerate(rates) for b in rates[i + 1:]]
    colours = ["#2e8b57" if s.rate_mbpm == chosen else "#9ecae1" for s in data.steps]
    ax.bar(rates, [level_x10(s) / 10.0 for s in data.steps], width=min([0.3] + [g * 0.8 for g in gaps if g > 0]),
           color=colours)
    ax.set_xticks(sorted(set(rates)))
    if data.result is not None and data.result.state == "done":
        ax.axvline(data.result.rate_mbpm / 1000.0, color="#b03030", ls="--", lw=1.5,
                   label="your resonance rate (%.2f)" % (data.result.rate_mbpm / 1000.0))
        _legend(ax)
    ax.set_xlabel("breathing rate tested (breaths per minute)")
    ax.set_ylabel("swing\n(beats per minute)")
    ax.set_title("Assessment: heart-rate swing at each breathing rate (green: largest)")
    _save(fig, path)
    return True


FIGURES = (
    ("pulse", "Your pulse", fig_pulse,
     "This is the raw signal from the pulse sensor. Each wave is one heartbeat. Shaded stretches are "
     "times when the signal could not be used (for example the finger moved or was lifted); heart "
     "rate, swing and coherence ignore them.",
     "The raw pulse signal was not recorded in this session: it is sent only when asked for "
     "(<code>vagal demo --raw</code> on the virtual board; with a board, <code>vagal settings raw=on</code> "
     "before <code>vagal stream</code>)."),
    ("heart_rate", "Heart rate and breathing", fig_heart_rate,
     "The red line is your heart rate, beat by beat. The blue bands are the times the pacer asked you "
     "to breathe in. When slow breathing works well, your heart rate rises while you breathe in and "
     "falls while you breathe out, so the line makes one wave per breath. The lower panel is the "
     "pacer's speed in breaths per minute.",
     "No heartbeats were recorded in this session."),
    ("swing", "Swing per breath", fig_swing,
     "Each bar is one breath: how many beats per minute your heart rate rose and fell within it. "
     "Bigger is better: it shows your heart following your breath. Values differ a lot between "
     "people (a few to over 20 beats per minute), so compare with your own earlier sessions. Grey bars "
     "are breaths the device could not judge.",
     "Swing per breath was not recorded in this session."),
    ("coherence", "Coherence", fig_coherence,
     "Every 5 seconds the device looks at the last minute of heart rate and asks how much of its "
     "rise and fall is one steady wave at the breathing pace. Above 50 % that wave dominates: this "
     "is the 'coherent' state slow breathing aims for; above 80 % almost all of it is that one wave. "
     "The first value comes about a minute into the session.",
     "Coherence was not recorded in this session."),
    ("assessment", "Assessment", fig_assessment,
     "The assessment tries several breathing rates for two minutes each and measures your heart-rate "
     "swing at each (the bars; green: the largest). A curve fitted through all of them peaks at your "
     "resonance rate (the red line), the rate of your largest swing, which may lie between two rates "
     "tested: the pace the pacer will use for practice.",
     None),
)


COHERENCE_FIRST_S = 75  # the 64 s window, the 5 s update and the detector's learning
NO_CLEAN_COHERENCE = ("Coherence could not be measured in this session: it needs about a minute of "
                      "clean signal without a gap, and there was none.")


def _fmt(v, unit, digits=1):
    return "%.*f %s" % (digits, v, unit)


GOOD_SIGNAL = 0.8  # below this share of usable signal the summary suggests checking the sensor


def summary_rows(data, session):
    """(label, value, explanation) rows of the summary box, in plain words."""
    rows = [("Length", format_duration(data.duration), "how long the session ran")]
    s = data.summary
    if data.modes:
        rows.append(("Mode", ", then ".join(_dedupe(data.modes)), "what the pacer was doing"))
    hr = (s.hr_x10 / 10.0) if s is not None and s.hr_x10 > 0 else session_mean_hr(data)
    if hr:
        rows.append(("Average heart rate", _fmt(hr, "beats per minute"), "resting adults: about 50-90"))
    valid = [b for b in data.breaths if b[1] == 1]
    if s is not None and s.breaths > 0:
        rows.append(("Average swing", _fmt(s.swing_x10 / 10.0, "beats per minute"),
                     "heart-rate rise and fall per breath; bigger is better"))
        rows.append(("Breaths measured", "%d" % s.breaths, "breaths with a clean enough signal to judge"))
    elif valid:
        rows.append(("Average swing", _fmt(sum(b[2] for b in valid) / len(valid), "beats per minute"),
                     "heart-rate rise and fall per breath; bigger is better"))
        rows.append(("Breaths measured", "%d of %d" % (len(valid), len(data.breaths)),
                     "breaths with a clean enough signal to judge"))
    ratios = [r for _, r, _ in data.coherence]
    measured = [r for r in ratios if r is not None]
    if measured:  # of the time coherence had a value; the rest said apart (the first minute, a lost pulse)
        pct = 100.0 * sum(1 for r in measured if r >= 1.0) / len(measured)
        unmeasured = 100.0 * (len(ratios) - len(measured)) / len(ratios)
        rows.append(("Time coherent", "%.0f %% of the time it was measured" % pct,
                     "coherence above 50 %%; higher is better. It was not measured %.0f %% of the time "
                     "(the first minute, or while the pulse was lost)" % unmeasured if unmeasured >= 1 else
                     "coherence above 50 %; higher is better"))
    elif s is not None and s.coherent_pct > 0:
        rows.append(("Time coherent", "%d %%" % s.coherent_pct, "share of the session in the coherent "
                     "state (the device's count); higher is better"))
    rate = s.rate_mbpm / 1000.0 if s is not None else (data.pacer_rate[-1][1] if data.pacer_rate else None)
    if rate:
        rows.append(("Breathing pace", "%.2f breaths per minute" % rate,
                     "one breath every %.1f seconds" % (60.0 / rate)))
    good = data.good_fraction()
    if good is not None:
        rows.append(("Signal good", "%.0f %% of the time" % (100 * good),
                     "good: 80 % or more" if good >= GOOD_SIGNAL else
                     "below 80 %: check the sensor sits snugly and keep your hand still"))
    if data.samples_lost > 0:
        rows.append(("Samples lost", "%d" % data.samples_lost,
                     "the device's sampling fell behind; heartbeats in those gaps are missing"))
    if session.lost or session.corrupt:
        rows.append(("Connection", "%d lines lost, %d damaged" % (session.lost, session.corrupt),
                     "a few are harmless; many mean a bad cable or a busy computer"))
    return rows


def _dedupe(seq):
    out = []
    for x in seq:
        if not out or out[-1] != x:
            out.append(x)
    return out


def session_mean_hr(data):
    """Beats per minute over the intervals HRV accepted (beats / time, not a mean of rates)."""
    return len(data.hr) / sum(1.0 / h for _, h in data.hr) if data.hr else None


def _assessment_html(data):
    if not data.steps and data.result is None:
        return ""
    out = []
    r = data.result
    if r is not None:
        text = html.escape(result_text(r))
        if r.state == "done":
            text = text.replace("Your resonance rate: ", "Your resonance rate: <b>", 1).replace(
                " breaths per minute", " breaths per minute</b>", 1)
            text += " The device saved it%s and uses it for practice." % (
                "" if r.date == "-" else " (dated %s)" % html.escape(r.date))
        out.append("<p class='result'>%s</p>" % text)
    if data.steps:
        out.append("<table><tr><th>Rate tested<br>(breaths/min)</th><th>Breaths measured</th>"
                   "<th>Swing<br>(beats/min)</th><th>Coherence<br>(share in one wave)</th></tr>")
        chosen = r.chosen_mbpm if r is not None else None
        for s in data.steps:
            mark = " class='best'" if s.rate_mbpm == chosen else ""
            coh = ("%.0f %%" % coherence_pct(s.coherence_x100 / 100.0) if s.coherence_x100 >= 0
                   else "not enough data")
            out.append("<tr%s><td>%.2f</td><td>%d</td><td>%.1f</td><td>%s</td></tr>"
                       % (mark, s.rate_mbpm / 1000.0, s.breaths, level_x10(s) / 10.0, coh))
        out.append("</table>")
    return "\n".join(out)


CSS = """body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .7em;text-align:left}
tr.best{background:#dff0d8}.note{color:#555}.missing{color:#777;font-style:italic}
img{max-width:100%;border:1px solid #eee}.result{font-size:1.15em}
td.in{background:#eef7ea}td.out{background:#fdf3e1}"""


def build(session_path, out_dir=None, which=None, quiet=False, force=False):
    """Write index.html and the figures into out_dir; -> (index path, part, parts, figure names)."""
    with Progress("reading %s" % os.path.basename(session_path), total=len(FIGURES) + 1,
                  quiet=quiet) as progress:
        session, parts, part = load(session_path, which)
        progress.advance()
        progress.stage("analysing")
        data = SessionData(part, session_path)
        if out_dir is None:
            out_dir = os.path.join(os.path.dirname(session_path) or ".",
                                   record_name(session_path, part, len(parts)) + "_report")
        drawn = []
        sections = []
        with AtomicDir(out_dir, (session_path,), force) as out:
            for name, title, fn, text, missing in FIGURES:
                progress.stage("drawing %s" % name)
                fname = name + ".png"
                ok = fn(data, out.path(fname, "png"))
                progress.advance()
                extra = _assessment_html(data) if name == "assessment" else ""
                if ok:
                    drawn.append(fname)
                    sections.append("<h2>%s</h2>\n<p>%s</p>\n%s<img src='%s' alt='%s'>"
                                    % (title, text, extra, fname, html.escape(title)))
                    source = {"swing": data.breaths_source, "coherence": data.coherence_source}.get(name)
                    if source == "re-analysed":
                        sections.append("<p class='note'>The device did not send these numbers in this "
                                        "session; they were worked out afterwards from its heartbeats and "
                                        "pacer with the same method the device uses.</p>")
                elif name == "coherence" and data.duration < COHERENCE_FIRST_S:
                    sections.append("<h2>%s</h2>\n<p class='missing'>Coherence needs about a minute of "
                                    "heartbeats before its first value; this session lasted %s. A session "
                                    "of 5 minutes or more shows it.</p>"
                                    % (title, format_duration(data.duration)))
                elif name == "coherence" and data.coherence:
                    sections.append("<h2>%s</h2>\n<p class='missing'>%s</p>" % (title, NO_CLEAN_COHERENCE))
                elif missing:
                    sections.append("<h2>%s</h2>\n<p class='missing'>%s</p>" % (title, missing))
                elif extra:  # a result line without steps (an assessment stopped early)
                    sections.append("<h2>%s</h2>\n%s" % (title, extra))
            progress.stage("heart rate variability")
            sections.append(_hrv_section(data, out, drawn))
            with open(out.path("index.html", "html"), "w", encoding="utf-8") as f:
                f.write(_page(session_path, session, parts, part, data, sections))
    return os.path.join(out_dir, "index.html"), part, parts, drawn


HRV_TEXT = ("The standard heart rate variability measures of this session, as HRV apps and Kubios "
            "report them, computed by NeuroKit2 from the heartbeats the device kept (beats it rejected "
            "and stretches without a pulse are left out, not bridged).")


def fig_spectrum(data, iv, path):
    """Power spectrum of the intervals with the breathing rate(s) of the session and the bands marked."""
    sp = spectrum(iv)
    if sp is None:
        return False
    f, p = sp
    fig, (ax,) = _figure(height=3.0)
    ax.plot(f * 60.0, p, color="#c0392b", lw=1.5)
    ax.axvspan(0.04 * 60, 0.15 * 60, color="#f6ebb0", alpha=0.5, label="LF band (0.04-0.15 Hz)")
    ax.axvspan(0.15 * 60, 0.4 * 60, color="#d6e9f8", alpha=0.5, label="HF band (0.15-0.4 Hz)")
    rates = [r for _, r in data.pacer_rate]
    if rates:
        lo, hi = min(rates), max(rates)
        if hi - lo >= 0.05:  # the rate moved (tuning, assessment, wind-down): the span it covered
            ax.axvspan(lo, hi, color="#2c3e50", alpha=0.12, label="pacer rates %.1f-%.1f/min" % (lo, hi))
        common = max(set(rates), key=rates.count)
        ax.axvline(common, color="#2c3e50", ls="--", lw=1, label="pacer rate (most of the time)")
    if data.result is not None and data.result.state == "done" and data.result.rate_mbpm > 0:
        ax.axvline(data.result.rate_mbpm / 1000.0, color="#27ae60", lw=2, label="your resonance rate")
    ax.set_xlim(0, 0.4 * 60)
    ax.set_ylim(0, None)
    ax.set_xlabel("rate (per minute): breaths, or waves of the heart rate")
    ax.set_ylabel("power (ms²/Hz)")
    _legend(ax)
    _save(fig, path)
    return True


def fig_poincare(iv, path):
    """Each interval against the next: a round cloud is short-term variation, a long one slower waves."""
    pairs = poincare_pairs(iv)
    if len(pairs) < 20:
        return False
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 6.0), dpi=FIG_DPI)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    x = [a for a, _ in pairs]
    y = [b for _, b in pairs]
    ax.scatter(x, y, s=14, color="#c0392b", alpha=0.6)
    ax.grid(True, color="#dddddd", lw=0.6)
    lo, hi = min(x + y), max(x + y)
    ax.plot([lo, hi], [lo, hi], color="#999", lw=1, ls=":")
    ax.set_xlabel("interval (ms)")
    ax.set_ylabel("next interval (ms)")
    ax.set_aspect("equal", adjustable="datalim")
    _save(fig, path)
    return True


def _hrv_section(data, out, drawn):
    """The HRV table (NeuroKit2 on the device's cleaned intervals), spectrum and Poincare plot."""
    title = "Heart rate variability"
    iv = data.intervals
    values = standard_hrv(iv)
    if values is None:
        return ("<h2>%s</h2>\n<p class='missing'>Not enough clean heartbeats for these measures: they "
                "need at least %d (about a minute), and this session kept %d. A longer session with the "
                "finger resting still on the sensor gives them.</p>" % (title, MIN_INTERVALS, len(iv.ibi_ms)))
    rows = ["<table class='hrv'><tr><th>measure</th><th>this session</th><th>typical at rest</th>"
            "<th>what it says</th></tr>"]
    for name, value, unit, typical, inside, words in table_rows(values):
        mark = "" if inside is None else (" class='in'" if inside else " class='out'")
        rows.append("<tr><th>%s</th><td%s><b>%s</b> %s</td><td>%s</td><td class='note'>%s</td></tr>"
                    % (html.escape(name), mark, html.escape(value), html.escape(unit), html.escape(typical),
                       html.escape(words)))
    rows.append("</table><p class='note'>%s</p>" % html.escape(NORMS_SOURCE))
    parts = ["<h2>%s</h2>\n<p>%s</p>" % (title, HRV_TEXT), "\n".join(rows)]
    if fig_spectrum(data, iv, out.path("spectrum.png", "png")):
        drawn.append("spectrum.png")
        parts.append("<p>The spectrum shows at which rates your heart rate rose and fell. Breathing at "
                     "your resonance rate makes one tall peak at that rate (the dashed line is the pacer's "
                     "rate).</p><img src='spectrum.png' alt='heart rate spectrum'>")
    else:
        parts.append("<p class='missing'>The spectrum needs at least %d minutes of clean heartbeats.</p>"
                     % (MIN_SPECTRUM_S // 60))
    if fig_poincare(iv, out.path("poincare.png", "png")):
        drawn.append("poincare.png")
        parts.append("<p>Each dot is one interval against the next (the Poincaré plot): the width of the "
                     "cloud is SD1, its length SD2.</p><img src='poincare.png' alt='Poincare plot' "
                     "style='max-width:24em'>")
    return "\n".join(parts)


def _part_start(session, part):
    """Wall-clock start of this part: the file's `started` header plus host seconds to its first line."""
    import datetime

    try:
        t0 = datetime.datetime.fromisoformat(session.header.get("started", ""))
    except ValueError:
        return ""
    return (t0 + datetime.timedelta(seconds=part.first_host_t or 0.0)).strftime("%Y-%m-%d %H:%M")


def _page(session_path, session, parts, part, data, sections):
    start = _part_start(session, part)
    title = "Breathing session" + (" of " + start if start else "")
    out = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>" + REPORT_MARK,
           "<title>%s</title><style>%s</style></head><body>" % (html.escape(title), CSS),
           "<h1>%s</h1>" % html.escape(title),
           "<p class='note'>From <code>%s</code>." % html.escape(os.path.basename(session_path))]
    if len(parts) > 1:
        out.append(" This file holds %d sessions; this page shows %s%s (choose another with "
                   "<code>--part N</code>)." % (len(parts), html.escape(part.describe()),
                                              ", the longest" if part is max(parts, key=lambda p: p.duration_s)
                                              else ""))
    if part.joined:
        out.append(" The recording began after the session had already started.")
    if part.damage:
        out.append(" The file is damaged in places: %s (the rest of it is shown)." % html.escape(part.damage))
    if part.cut_off:
        out.append(" The file ends in the middle of a line, as when the recording program was stopped "
                   "abruptly: this page shows everything up to that point.")
    out.append("</p>")
    out.append("<h2>Summary</h2><table>")
    for label, value, why in summary_rows(data, session):
        out.append("<tr><th>%s</th><td><b>%s</b></td><td class='note'>%s</td></tr>"
                   % (html.escape(label), html.escape(value), html.escape(why)))
    out.append("</table>")
    out.extend(sections)
    out.append("</body></html>")
    return "\n".join(out) + "\n"

