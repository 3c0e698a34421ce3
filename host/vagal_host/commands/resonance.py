"""`vagal resonance SESSION`: re-analyse a session with the core code, print its tables, plot it.

Why a host command: the device reports breaths as it judges them, but the pictures that explain a
session (heart rate against the breathing pacer, the swing of each breath, the assessment table) need
a screen, and re-running the same core (vagal_host.analysis) also covers sessions recorded before the
device sent breath lines.
"""

import os
import tempfile

from vagal_host.errors import VagalError
from vagal_host.outputs import check_target

NAME = "resonance"
HELP = "re-analyse a recorded session: per-breath and per-rate tables, PNG plots of HR vs the pacer"


def add_arguments(p):
    p.add_argument("session", metavar="SESSION", help="a session file written by vagal stream/demo")
    p.add_argument("--out", metavar="DIR",
                   help="folder for the PNGs (created if missing; default: beside the session file)")
    p.add_argument("--force", action="store_true",
                   help="replace existing files even when they are not earlier vagal resonance output "
                        "(never the input)")


def _fmt(v, spec):
    return "-" if v is None else spec % v


def breath_table(a):
    lines = ["  end_s  valid  swing_bpm  fit_bpm  phase_deg  hr_bpm  rate_bpm"]
    for b in a.breaths:
        lines.append("%7.1f  %5s  %9.1f  %7.1f  %9d  %6.1f  %8.2f" % (
            b.t_s, "yes" if b.valid else "no", b.swing_bpm, b.fit_bpm, b.phase_deg, b.hr_bpm,
            b.rate_bpm))
    if not a.breaths:
        lines.append("  (no breaths judged: no pacer lines, or too short)")
    return lines


def rate_table_lines(rows):
    lines = ["  rate_bpm  breaths  swing_bpm  fit_bpm  phase_deg  coherence"]
    for r in rows:
        lines.append("  %8.1f  %7d  %9.1f  %7.1f  %9s  %9s" % (
            r.rate_bpm, r.breaths, r.swing_bpm, r.fit_bpm, _fmt(r.phase_deg, "%.0f"),
            _fmt(r.coherence, "%.2f")))
    if not rows:
        lines.append("  (no valid breaths)")
    return lines


def report_lines(a):
    s = a.summary
    modes = []
    for _, m in a.modes:  # every mode the session went through, not just the last
        if not modes or modes[-1] != m:
            modes.append(m)
    out = ["session %d: source %s, mode %s, %.1f s, ended: %s" % (
        a.index + 1, a.source, " -> ".join(modes) or a.mode or "-", s.duration_s, a.ended)]
    out.append("summary: mean HR %s bpm, mean swing %s bpm, coherent %s %%, final rate %s /min, "
               "%d valid breaths of %d" % (
                   _fmt(s.mean_hr_bpm, "%.1f"), _fmt(s.mean_swing_bpm, "%.1f"),
                   _fmt(s.coherent_pct, "%.0f"), _fmt(s.final_rate_bpm, "%.2f"), s.valid_breaths,
                   len(a.breaths)))
    out.append("breaths (re-analysed with the core ResonanceMeter):")
    out.extend(breath_table(a))
    out.append("per rate (valid breaths grouped by rate rounded to 0.5 /min):")
    out.extend(rate_table_lines(a.rates))
    if a.device_breaths:
        same = sum(1 for g, w in zip(a.breaths, a.device_breaths)
                   if g.valid == w.valid and g.swing_bpm == w.swing_bpm)
        out.append("device sent %d breath lines; re-analysis agrees on validity and swing for %d"
                   % (len(a.device_breaths), same))
    if a.device_assessment is not None:
        out.append("device assessment table:")
        out.extend(rate_table_lines(a.device_assessment.steps))
        r = a.device_assessment.result
        if r is not None and r.state == "done":
            out.append("device assessment done: resonance %.2f /min (best tested %.2f), date %s" % (
                r.rate_bpm, r.chosen_bpm, r.date or "-"))
        elif r is not None:
            out.append("device assessment %s: nothing stored" % r.state)
    return out


def _plot_hr(plt, a, title):
    fig, ax = plt.subplots(figsize=(11, 4))
    # the breathing band: shaded while the pacer said inhale
    start = None
    for p in a.pacer:
        if p.inhale and start is None:
            start = p.t_s
        elif not p.inhale and start is not None:
            ax.axvspan(start, p.t_s, color="#cfe8ff", lw=0)
            start = None
    if start is not None and a.pacer:
        ax.axvspan(start, a.pacer[-1].t_s, color="#cfe8ff", lw=0)
    for q in a.quality:
        if q.state != "ok":
            ax.axvspan(q.t0_s, q.t1_s, color="#dddddd", hatch="//", lw=0)
    if a.hr:
        ax.plot([h.t_s for h in a.hr], [h.bpm for h in a.hr], "-o", ms=2, lw=1, color="#c0392b",
                label="heart rate (accepted beats)")
    ax.set_xlabel("time in session (s)")
    ax.set_ylabel("heart rate (bpm)")
    ax.set_title(title + ": heart rate against the pacer (blue: inhale, grey: bad signal)")
    if a.pacer:
        ax2 = ax.twinx()
        ax2.step([p.t_s for p in a.pacer], [p.rate_bpm for p in a.pacer], where="post",
                 color="#2c3e50", lw=1, label="pacer rate")
        ax2.set_ylabel("pacer rate (breaths/min)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def _plot_swing(plt, a, title):
    fig, ax = plt.subplots(figsize=(11, 4))
    valid = [b for b in a.breaths if b.valid]
    invalid = [b for b in a.breaths if not b.valid]
    w = min(4.0, min((60.0 / b.rate_bpm for b in a.breaths if b.rate_bpm > 0), default=4.0) * 0.6)
    if valid:
        ax.bar([b.t_s for b in valid], [b.swing_bpm for b in valid], width=w, color="#2980b9",
               label="swing, peak-to-trough (valid)")
        ax.plot([b.t_s for b in valid], [b.fit_bpm for b in valid], "o", ms=4, color="#e67e22",
                label="fitted sinusoid")
    if invalid:
        ax.bar([b.t_s for b in invalid], [b.swing_bpm for b in invalid], width=w, color="#cccccc",
               label="not valid (bad signal, rejected beat, too few beats)")
    ax.set_xlabel("end of breath (s)")
    ax.set_ylabel("heart-rate swing (bpm)")
    ax.set_title(title + ": swing per breath")
    if a.breaths:
        ax.legend(loc="upper left", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no breaths judged", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    return fig


def _plot_rates(plt, a, title):
    fig, (ax, axt) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1, 1.3]})
    rows = a.rates
    if rows:
        ax.bar([r.rate_bpm for r in rows], [r.fit_bpm for r in rows], width=0.35, color="#2980b9",
               label="mean fitted swing")
        ax.plot([r.rate_bpm for r in rows], [r.swing_bpm for r in rows], "o", color="#c0392b",
                label="mean peak-to-trough swing")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no valid breaths", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("breathing rate (breaths/min)")
    ax.set_ylabel("swing (bpm)")
    ax.set_title("swing per rate")
    axt.axis("off")
    cells = [["%.1f" % r.rate_bpm, "%d" % r.breaths, "%.1f" % r.swing_bpm, "%.1f" % r.fit_bpm,
              _fmt(r.phase_deg, "%.0f"), _fmt(r.coherence, "%.2f")] for r in rows]
    if a.device_assessment is not None:
        for r in a.device_assessment.steps:
            cells.append(["dev %.1f" % r.rate_bpm, "%d" % r.breaths, "%.1f" % r.swing_bpm,
                          "%.1f" % r.fit_bpm, _fmt(r.phase_deg, "%.0f"), _fmt(r.coherence, "%.2f")])
    if cells:
        t = axt.table(cellText=cells, colLabels=["rate /min", "breaths", "swing", "fit", "phase",
                                                 "coherence"], loc="center")
        t.auto_set_font_size(False)
        t.set_fontsize(8)
    axt.set_title("assessment table (dev = the device's own rows)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def write_plots(analyses, directory, stem, inputs=(), force=False):
    """Render every figure to a temporary file first; rename them into place only when all worked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise VagalError("cannot create output folder %s: %s" % (directory, e.strerror or e)) from None
    if not os.path.isdir(directory):
        raise VagalError("--out %s is not a folder" % directory)
    done = []  # (temporary, final)
    try:
        for a in analyses:
            title = "%s session %d" % (stem, a.index + 1)
            for kind, plot in (("hr", _plot_hr), ("swing", _plot_swing), ("rates", _plot_rates)):
                final = os.path.join(directory, "%s-s%d-%s.png" % (stem, a.index + 1, kind))
                check_target(final, "png", inputs, force)
                fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(final), suffix=".tmp",
                                           dir=directory)
                os.close(fd)
                done.append((tmp, final))
                fig = plot(plt, a, title)
                try:
                    fig.savefig(tmp, format="png", dpi=100)
                finally:
                    plt.close(fig)
        for tmp, final in done:
            os.replace(tmp, final)
    except OSError as e:
        raise VagalError("cannot write the plots in %s: %s" % (directory, e.strerror or e)) from None
    finally:
        for tmp, _ in done:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return [final for _, final in done]


def run(args):
    from vagal_host.analysis import analyse_session

    if os.path.isdir(args.session):
        raise VagalError("%s is a folder, not a session file" % args.session)
    analyses = analyse_session(args.session)
    directory = args.out if args.out else (os.path.dirname(os.path.abspath(args.session)))
    stem = os.path.splitext(os.path.basename(args.session))[0] or "session"
    for a in analyses:
        print("\n".join(report_lines(a)))
        print()
    written = write_plots(analyses, directory, stem, (args.session,), args.force)
    print("wrote %d plots: %s" % (len(written), ", ".join(written)))
    return 0
