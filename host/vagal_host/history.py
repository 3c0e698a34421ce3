"""`vagal history`: the library's sessions over days and weeks, as an HTML page with figures.

Why: the report of one session tells the user to compare it with their earlier sessions; this page
is that comparison. Same figure style as `vagal report` (its _figure/_save and CSS), written through
the same atomic folder (export.AtomicDir), so a page is never left half-written.
"""

import datetime
import html
import os

from vagal_host.export import AtomicDir
from vagal_host.report import CSS, _figure, _legend, _save

FIGURES = ("minutes", "rate", "swing", "heart")


def _when(row):
    """The session's time as a datetime (the day at noon when only the day is known), or None."""
    if row["started_at"]:
        try:
            t = datetime.datetime.fromisoformat(row["started_at"])
            return t.replace(tzinfo=None)
        except ValueError:
            pass
    if row["day"]:
        try:
            return datetime.datetime.fromisoformat(row["day"] + "T12:00:00")
        except ValueError:
            pass
    return None


def _dates_axis(ax):
    import matplotlib.dates as mdates

    loc = mdates.AutoDateLocator(minticks=3, maxticks=10)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
    ax.grid(True, alpha=0.3)


def fig_minutes(rows, path):
    """Minutes practised per day (bars) and the mean of the last 7 days (line)."""
    per_day = {}
    for r, t in rows:
        per_day[t.date()] = per_day.get(t.date(), 0.0) + (r["duration_s"] or 0) / 60.0
    first, last = min(per_day), max(per_day)
    days = [first + datetime.timedelta(days=i) for i in range((last - first).days + 1)]
    mins = [per_day.get(d, 0.0) for d in days]
    week = [sum(mins[max(0, i - 6):i + 1]) / 7.0 for i in range(len(days))]
    fig, (ax,) = _figure(1, 3.0)
    x = [datetime.datetime.combine(d, datetime.time(12)) for d in days]
    ax.bar(x, mins, width=0.8, color="#5b8fd0", label="minutes that day")
    ax.plot(x, week, color="#d0702a", lw=2, label="7-day mean")
    ax.set_ylabel("minutes")
    _dates_axis(ax)
    _legend(ax)
    _save(fig, path)
    return True


def fig_rate(rows, path):
    """The stored resonance rate (what an assessment found) and each session's pacing rate."""
    res = [(t, r["resonance_mbpm"] / 1000.0) for r, t in rows if r["resonance_mbpm"]]
    pace = [(t, r["rate_mbpm"] / 1000.0) for r, t in rows if r["rate_mbpm"]]
    if not res and not pace:
        return False
    fig, (ax,) = _figure(1, 3.0)
    if pace:
        ax.plot([p[0] for p in pace], [p[1] for p in pace], "o", ms=3, color="#5b8fd0", alpha=0.6,
                label="pacing rate at the end of a session")
    if res:
        ax.step([p[0] for p in res], [p[1] for p in res], where="post", color="#2a9d5c", lw=2,
                label="stored resonance rate")
    ax.set_ylabel("breaths / min")
    _dates_axis(ax)
    _legend(ax)
    _save(fig, path)
    return True


def _weekly(points):
    """Mean per calendar week -> [(monday noon, mean)]."""
    weeks = {}
    for t, v in points:
        monday = (t - datetime.timedelta(days=t.weekday())).date()
        weeks.setdefault(monday, []).append(v)
    return [(datetime.datetime.combine(d, datetime.time(12)) + datetime.timedelta(days=3), sum(v) / len(v))
            for d, v in sorted(weeks.items())]


def _panel(ax, points, colour, label, unit):
    ax.plot([p[0] for p in points], [p[1] for p in points], "o", ms=3, color=colour, alpha=0.5,
            label=label + " (a session)")
    w = _weekly(points)
    ax.plot([p[0] for p in w], [p[1] for p in w], "-", color=colour, lw=2, label="weekly mean")
    ax.set_ylabel(unit)
    _dates_axis(ax)
    _legend(ax)


def _two_panels(path, top, bottom):
    """Two per-session panels with weekly means; top/bottom = (points, colour, label, unit)."""
    if not top[0] and not bottom[0]:
        return False
    fig, axes = _figure(2, 5.0)
    for ax, (points, colour, label, unit) in zip(axes, (top, bottom)):
        if points:
            _panel(ax, points, colour, label, unit)
    _save(fig, path)
    return True


def fig_swing(rows, path):
    """Heart-rate swing per breath and coherence, per session, with weekly means."""
    return _two_panels(path,
                       ([(t, r["swing_x10"] / 10.0) for r, t in rows if r["swing_x10"] and r["breaths"]],
                        "#c0392b", "swing", "swing, bpm"),
                       ([(t, r["coherent_pct"]) for r, t in rows if r["coherent_pct"] is not None],
                        "#8e44ad", "coherent", "% coherent"))


def fig_heart(rows, path):
    """Resting heart rate and RMSSD per session (the device's numbers), with weekly means."""
    return _two_panels(path,
                       ([(t, r["hr_x10"] / 10.0) for r, t in rows if r["hr_x10"]],
                        "#d35400", "heart rate", "heart rate, bpm"),
                       ([(t, r["rmssd_us"] / 1000.0) for r, t in rows if r["rmssd_us"]],
                        "#16a085", "RMSSD", "RMSSD, ms"))


SECTIONS = (
    ("minutes", "Minutes practised per day", fig_minutes,
     "Each bar is the time you breathed with the device that day; the line is the mean of the last seven days."),
    ("rate", "Your breathing rate", fig_rate,
     "The green steps are the resonance rate the device stored after an assessment; the dots the rate "
     "each session paced at by its end (practice mode keeps tuning it toward your resonance)."),
    ("swing", "Heart-rate swing and coherence", fig_swing,
     "How much your heart rate rose and fell with each breath (more is better), and how often your heart "
     "rhythm was coherent (one clear slow wave), per session and as weekly means."),
    ("heart", "Heart rate and RMSSD", fig_heart,
     "Mean heart rate and RMSSD (beat-to-beat variability) during each session. They move with sleep, "
     "stress and illness; a trend over weeks says more than one session."),
)


def build(lib, out_dir):
    """Write index.html and the figures; -> (index path, figures drawn, sessions plotted, undated)."""
    rows = lib.sessions()
    dated = [(r, _when(r)) for r in rows]
    undated = [r for r, t in dated if t is None]
    dated = sorted([(r, t) for r, t in dated if t is not None], key=lambda p: p[1])
    drawn = []
    parts = []
    with AtomicDir(out_dir) as out:
        if dated:
            for name, title, fn, text in SECTIONS:
                fname = name + ".png"
                if fn(dated, out.path(fname)):
                    drawn.append(fname)
                    parts.append("<h2>%s</h2>\n<p>%s</p>\n<img src='%s' alt='%s'>"
                                 % (title, text, fname, html.escape(title)))
        with open(out.path("index.html"), "w", encoding="utf-8") as f:
            f.write(_page(lib, dated, undated, parts))
    return os.path.join(out_dir, "index.html"), drawn, len(dated), len(undated)


def _page(lib, dated, undated, parts):
    out = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
           "<title>Your breathing history</title><style>%s</style></head><body>" % CSS,
           "<h1>Your breathing history</h1>"]
    if not dated:
        out.append("<p class='missing'>No dated sessions in the library yet (vagal sync, vagal import).</p>")
    else:
        first, last = dated[0][1], dated[-1][1]
        days = {t.date() for _, t in dated}
        total = sum((r["duration_s"] or 0) for r, _ in dated) / 60.0
        out.append("<p class='note'>From the library <code>%s</code>.</p>" % html.escape(str(lib.path)))
        out.append("<h2>Summary</h2><table>")
        for label, value in (
                ("sessions", "%d (%s to %s)" % (len(dated), first.date(), last.date())),
                ("days practised", "%d of %d" % (len(days), (last.date() - first.date()).days + 1)),
                ("minutes in all", "%.0f" % total),
                ("minutes a practising day", "%.1f" % (total / len(days)))):
            out.append("<tr><th>%s</th><td><b>%s</b></td></tr>" % (html.escape(label), html.escape(value)))
        out.append("</table>")
    if undated:
        out.append("<p class='note'>%d session%s without a date (kept on the board before it was ever "
                   "told the date) are in the library but not in these figures.</p>"
                   % (len(undated), "" if len(undated) == 1 else "s"))
    out.extend(parts)
    out.append("</body></html>")
    return "\n".join(out) + "\n"
