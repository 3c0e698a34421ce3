"""Re-analysis of a recorded session with the device's own core code (issue #4).

Contract (used by `vagal resonance` and `vagal report`; keep it stable):

    analyse_session(path) -> [SessionAnalysis, ...]    one per start..stop session in the file, in
                                                       order; a file with beats but no `session`
                                                       lines gives one. VagalError when the file is
                                                       unreadable or holds no beats and no pacer lines.
    analyse(session) -> same, from a vagal_host.session.Session already read.

A SessionAnalysis has plain Python fields (times in seconds from the session start, rates in
breaths/min, heart rates in bpm; lists of namedtuples defined below):
    index, source, mode, modes [(t_s, mode)], ended ("stop", "reboot", "restart" or "end of file"),
    beats [Beat], hr [HrPoint] (at each accepted interval's midpoint, as the meter places it),
    pacer [PacerPoint] (inhale: the line's dir was `in`), quality [QualitySpan], breaths [Breath],
    coherence [CoherencePoint], rates [RateRow], device_breaths [Breath],
    device_coherence [CoherencePoint], device_assessment DeviceAssessment or None,
    device_summary DeviceSummary or None, summary Summary.

Why re-run instead of plotting what the device sent: old sessions (and devices that did not send
breath lines) get the same numbers, and a changed core can be judged on recorded data. The beat,
quality and pacer lines are fed to vagal.pipeline.Pipeline (HRV, and the ResonanceMeter with its
Coherence), the wiring the app itself runs (docs/resonance.md, "Wiring"). What the
lines cannot carry, and how it is rebuilt:

* The pacer's state between its lines (sent every 200 ms and at each turn): the unwrapped phase is
  interpolated between consecutive lines (the count of whole breaths between them comes from their
  rates), and `pace()` is called on a 20 ms grid between lines, as the app calls it after each
  ~50 Hz pacer update. The inhale share (`split`) is not on the wire: for each breath it is the
  whole percentage 20..80 consistent with every `in`/`out` line of that breath.
* When the device handed a beat to the meter: its peak time plus REPORT_LAG_MS, kept between the
  pacer lines around it in the file (lines are written in the order the device sent them); when the
  device sent its own breath lines, beats before / after one in the file are fed before / after
  that breath is judged.
* Line times are whole milliseconds (the device has microseconds), so a beat within 1 ms of a
  breath boundary, or a beat's position in the breath's sinusoid fit, can round the other way:
  fit and phase can differ from the device's by a unit, rarely more (tests/test_analysis.py).
The meter starts each session with the signal quality that was in force at its start.
"""

import collections
import math

from vagal.coherence import INVALID
from vagal.pacer import PHASE_ONE
from vagal.pipeline import BEAT_REPORT_LAG_US, TICK_US, Pipeline
from vagal.ticks import TICKS_MAX, ticks_diff

from vagal_host.errors import VagalError
from vagal_host.session import RECORD_TYPES, other_board, read_session

GRID_MS = TICK_US // 1000  # the app updates the pacer (and the meter) every 20 ms
MAX_INTERP_MS = 2000  # pacer lines further apart than this (lines lost): no phase in between
REPORT_LAG_MS = BEAT_REPORT_LAG_US // 1000  # when the detector hands a beat over (vagal.pipeline)
RATE_GROUP_BPM = 0.5  # the per-rate table groups breaths by their rate rounded to this
COHERENCE_INSIDE_S = 45  # a coherence value counts for a rate if the rate held this long before it

Beat = collections.namedtuple("Beat", "t_s ibi_ms amp conf accepted")
HrPoint = collections.namedtuple("HrPoint", "t_s bpm")
PacerPoint = collections.namedtuple("PacerPoint", "t_s rate_bpm phase led inhale")
QualitySpan = collections.namedtuple("QualitySpan", "t0_s t1_s state")
Breath = collections.namedtuple("Breath", "t_s valid swing_bpm fit_bpm phase_deg hr_bpm rate_bpm")
CoherencePoint = collections.namedtuple("CoherencePoint", "t_s ratio peak_hz")
RateRow = collections.namedtuple("RateRow", "rate_bpm breaths swing_bpm fit_bpm phase_deg coherence")
AssessResult = collections.namedtuple("AssessResult", "t_s state rate_bpm chosen_bpm date")
DeviceAssessment = collections.namedtuple("DeviceAssessment", "steps result")
DeviceSummary = collections.namedtuple(
    "DeviceSummary", "duration_s mode hr_bpm swing_bpm coherent_pct rate_bpm breaths")
Summary = collections.namedtuple(
    "Summary", "duration_s mean_hr_bpm mean_swing_bpm coherent_pct final_rate_bpm mode valid_breaths")

_T = RECORD_TYPES


class PacerView:
    """What ResonanceMeter.pace() reads from a vagal.pacer.Pacer, rebuilt from `pacer` lines.

    phase: 0..2**24 within the breath; breaths: whole breaths since the session's pacer started;
    rate_mbpm: the current (gliding) rate; split: the phase where inhale turns to exhale.
    """

    __slots__ = ("phase", "breaths", "rate_mbpm", "split")

    def __init__(self):
        self.phase = 0
        self.breaths = 0
        self.rate_mbpm = 6000
        self.split = PHASE_ONE * 40 // 100

    def set_total(self, total, rate_mbpm, split):
        self.breaths = total // PHASE_ONE
        self.phase = total - self.breaths * PHASE_ONE
        self.rate_mbpm = rate_mbpm
        self.split = split


class SessionAnalysis:
    """One session re-analysed (fields: see the module docstring)."""

    def __init__(self, index, source):
        self.index = index
        self.source = source
        self.mode = None
        self.modes = []
        self.ended = "end of file"
        self.beats = []
        self.hr = []
        self.pacer = []
        self.quality = []
        self.breaths = []
        self.coherence = []
        self.rates = []
        self.device_breaths = []
        self.device_coherence = []
        self.device_assessment = None
        self.device_summary = None
        self.summary = None

    @property
    def valid_breaths(self):
        return [b for b in self.breaths if b.valid]


def _tick(t_ms):
    """Session milliseconds -> the microsecond tick the device had (middle of that millisecond)."""
    return (t_ms * 1000 + 500) & TICKS_MAX


def _bad(session, rec, why):
    return VagalError("%s: %s line (seq %d, %.3f s): %s" % (session.path, type(rec).__name__.lower(),
                                                            rec.seq, rec.host_t, why))


def _split_sessions(session):
    """[(source, records, quality_at_start, ended)] in file order."""
    kinds = {"session": _T["session"], "hello": _T["hello"], "quality": _T["quality"]}
    closing = (_T["summary"], _T["assess_result"], _T["assess_step"])
    groups = []
    current = None
    quality_outside = "ok"
    any_session = any(type(r) is kinds["session"] for r in session.records)
    if not any_session:
        return [("none", list(session.records), "ok", "end of file")]
    board = None  # (board id, boot id) of the last hello
    for r in session.records:
        t = type(r)
        if t is kinds["hello"]:
            seen, board = board, (r.board, r.boot)
        if t is kinds["hello"] and (r.seq == 0 or other_board(seen, r)):
            if current is not None:
                current[3] = "reboot"
                groups.append(current)
                current = None
            if groups:
                groups[-1][4] = True  # a rebooted device sends nothing more about it
            quality_outside = "learning"
            continue
        if t is kinds["session"]:
            if r.state == "start":
                if current is not None:
                    current[3] = "restart"
                    groups.append(current)
                if groups:
                    groups[-1][4] = True
                current = [r.source, [r], quality_outside, "end of file", False]
            elif r.state == "stop":
                if current is not None:
                    current[1].append(r)
                    current[3] = "stop"
                    groups.append(current)
                    current = None
            continue
        if current is not None:
            current[1].append(r)
            if t is kinds["quality"]:
                quality_outside = r.state
        elif t is kinds["quality"]:
            quality_outside = r.state
        elif t in closing and groups and not groups[-1][4]:
            groups[-1][1].append(r)  # the session's own summary / assessment, sent after its stop
    if current is not None:
        groups.append(current)
    return [tuple(g[:4]) for g in groups]


def _check(session, records):
    """Reject values the device never sends, naming the line."""
    for r in records:
        t = type(r)
        if t is _T["pacer"]:
            if not 0 <= r.phase < PHASE_ONE:
                raise _bad(session, r, "phase %d outside 0..%d" % (r.phase, PHASE_ONE - 1))
            if not 1000 <= r.rate_mbpm <= 20000:
                raise _bad(session, r, "rate %d mbpm is not a breathing rate" % r.rate_mbpm)
            if r.dir not in ("in", "out"):
                raise _bad(session, r, "dir %r is neither in nor out" % r.dir)
        elif t is _T["beat"]:
            if r.ibi_us < 0:
                raise _bad(session, r, "negative interval %d us" % r.ibi_us)


def _anchors(session, pacers):
    """Unwrapped pacer phase at each pacer line and the inhale split of each breath."""
    totals = []
    total = None
    prev = None
    for p in pacers:
        if prev is None:
            total = p.phase
        else:
            dt = p.t_ms - prev.t_ms
            if dt < 0:
                raise _bad(session, p, "time %d ms goes backwards (previous pacer line %d ms)"
                           % (p.t_ms, prev.t_ms))
            delta = (p.phase - prev.phase) % PHASE_ONE
            expected = (prev.rate_mbpm + p.rate_mbpm) / 2.0 * dt * PHASE_ONE / 60e6
            wraps = max(0, int(round((expected - delta) / PHASE_ONE)))
            total += delta + wraps * PHASE_ONE
        totals.append(total)
        prev = p
    # split per breath: every `in` line says split > phase, every `out` line split <= phase
    bounds = {}
    for p, tot in zip(pacers, totals):
        b = tot // PHASE_ONE
        lo, hi = bounds.get(b, (0, PHASE_ONE))
        if p.dir == "in":
            lo = max(lo, p.phase + 1)
        else:
            hi = min(hi, p.phase)
        bounds[b] = (lo, hi)
    splits = {}
    pct_prev = 40
    for b in sorted(bounds):
        lo, hi = bounds[b]
        fits = [pct for pct in range(20, 81) if lo <= PHASE_ONE * pct // 100 <= hi]
        if fits:
            pct = min(fits, key=lambda v: abs(v - pct_prev))
            splits[b] = PHASE_ONE * pct // 100
            pct_prev = pct
        else:  # lost lines or an unknown pacer: the middle of what the lines allow
            splits[b] = (lo + hi) // 2 if lo <= hi else PHASE_ONE * pct_prev // 100
    return totals, splits


class _Replay:
    """Feeds one session's lines to the core's Pipeline as the app does (module docstring); the pacer
    is a PacerView of the recorded pacer lines and there is no controller (its decisions are in
    those lines)."""

    def __init__(self, out, quality_at_start):
        self.out = out
        self.pacer = PacerView()
        self.pipe = Pipeline(pacer=self.pacer)
        self.meter = self.pipe.meter
        self.ok = quality_at_start == "ok"
        if not self.ok:
            self.pipe.signal(False)
        self._seq = self.meter.seq
        self._coh_seq = self.meter.coherence.seq
        self.splits = {}

    def beat(self, r):
        ibi = r.ibi_us
        accepted = self.pipe.beat(_tick(r.t_ms), ibi)
        self.out.beats.append(Beat(r.t_ms / 1000.0, ibi / 1000.0, r.amp, r.conf, bool(accepted)))
        if accepted:
            self.out.hr.append(HrPoint((r.t_ms - ibi / 2000.0) / 1000.0, 60e6 / ibi))

    def quality(self, r):
        self.ok = r.state == "ok"
        self.pipe.signal(self.ok)

    def pace(self, t_ms, total, rate_mbpm):
        b = total // PHASE_ONE
        split = self.splits.get(b, self.pacer.split)
        self.pacer.set_total(total, rate_mbpm, split)
        now = _tick(t_ms)
        self.pipe.pace(now)
        m = self.meter
        if m.seq != self._seq:
            self._seq = m.seq
            end_ms = t_ms + 0.5 - ticks_diff(now, m.breath_end_us) / 1000.0
            self.out.breaths.append(Breath(
                math.floor(end_ms) / 1000.0, bool(m.valid), m.swing_x10 / 10.0, m.fit_x10 / 10.0,
                m.phase_deg, m.hr_x10 / 10.0, m.breath_rate_mbpm / 1000.0))
        c = m.coherence
        if c.seq != self._coh_seq:
            self._coh_seq = c.seq
            if c.coherence_x100 == INVALID:
                self.out.coherence.append(CoherencePoint(t_ms / 1000.0, None, None))
            else:
                self.out.coherence.append(CoherencePoint(
                    t_ms / 1000.0, c.coherence_x100 / 100.0, c.peak_mhz / 1000.0))


def _run_segment(session, out, records, quality_at_start):
    pacer_t = _T["pacer"]
    beat_t = _T["beat"]
    quality_t = _T["quality"]
    breath_t = _T["breath"]
    pacers = [r for r in records if type(r) is pacer_t]
    totals, splits = _anchors(session, pacers)
    rp = _Replay(out, quality_at_start)
    rp.splits = splits
    # pass over the lines in file order; beats and quality changes wait in `pending` for the next
    # pacer line, which bounds when the device could have sent them
    pending = []  # [emission_ms, order, kind, record]
    floor = None  # earliest emission for events after a device breath line in this window
    k = 0  # index of the next pacer line
    prev_t = None
    prev_total = None
    prev_rate = None
    order = 0

    def flush(until_t, until_total, until_rate):
        events = []
        for e in pending:
            t = e[0]
            if until_t is not None and t > until_t:
                t = until_t
            events.append((t, 0, e[1], e[2], e[3]))
        if prev_t is not None and until_t is not None and until_t - prev_t <= MAX_INTERP_MS:
            span = until_t - prev_t
            t = prev_t + GRID_MS
            while t < until_t:
                tot = prev_total + (until_total - prev_total) * (t - prev_t) // span
                rate = prev_rate + (until_rate - prev_rate) * (t - prev_t) // span
                events.append((t, 1, 0, "pace", (tot, rate)))
                t += GRID_MS
        events.sort(key=lambda e: (e[0], e[1], e[2]))
        for t, _, _, kind, rec in events:
            if kind == "beat":
                rp.beat(rec)
            elif kind == "quality":
                rp.quality(rec)
            else:
                rp.pace(int(t), rec[0], rec[1])
        del pending[:]

    for r in records:
        t = type(r)
        order += 1
        if t is pacer_t:
            flush(r.t_ms, totals[k], r.rate_mbpm)
            floor = None
            rp.pace(r.t_ms, totals[k], r.rate_mbpm)
            prev_t, prev_total, prev_rate = r.t_ms, totals[k], r.rate_mbpm
            k += 1
            out.pacer.append(PacerPoint(r.t_ms / 1000.0, r.rate_mbpm / 1000.0,
                                        r.phase / float(PHASE_ONE), r.led, r.dir == "in"))
        elif t is beat_t or t is quality_t:
            if t is beat_t:
                e = r.t_ms + REPORT_LAG_MS
            else:
                e = r.t_ms
            if prev_t is not None and e < prev_t:
                e = prev_t
            if floor is not None and e < floor:
                e = floor
            pending.append([e, order, "beat" if t is beat_t else "quality", r])
        elif t is breath_t:
            # the device judged this breath now: what came before it in the file was in its meter
            judged = r.t_ms + 700
            for e in pending:
                if e[0] > judged - 1:
                    e[0] = judged - 1
            floor = judged + GRID_MS + 1
    flush(None, None, None)
    return rp


def _device_lines(out, records):
    for r in records:
        t = type(r)
        if t is _T["breath"]:
            out.device_breaths.append(Breath(r.t_ms / 1000.0, bool(r.valid), r.swing_x10 / 10.0,
                                             r.fit_x10 / 10.0, r.phase_deg, r.hr_x10 / 10.0,
                                             r.rate_mbpm / 1000.0))
        elif t is _T["coherence"]:
            ok = r.ratio_x100 >= 0
            out.device_coherence.append(CoherencePoint(
                r.t_ms / 1000.0, r.ratio_x100 / 100.0 if ok else None,
                r.peak_mhz / 1000.0 if ok else None))
        elif t is _T["assess_step"]:
            if out.device_assessment is None:
                out.device_assessment = DeviceAssessment([], None)
            out.device_assessment.steps.append(RateRow(
                r.rate_mbpm / 1000.0, r.breaths, r.swing_x10 / 10.0, r.fit_x10 / 10.0, r.phase_deg,
                r.coherence_x100 / 100.0 if r.coherence_x100 >= 0 else None))
        elif t is _T["assess_result"]:
            steps = out.device_assessment.steps if out.device_assessment else []
            out.device_assessment = DeviceAssessment(steps, AssessResult(
                r.t_ms / 1000.0, r.state, r.rate_mbpm / 1000.0, r.chosen_mbpm / 1000.0,
                None if r.date == "-" else r.date))
        elif t is _T["summary"]:
            out.device_summary = DeviceSummary(r.t_ms / 1000.0, r.mode, r.hr_x10 / 10.0,
                                               r.swing_x10 / 10.0, r.coherent_pct,
                                               r.rate_mbpm / 1000.0, r.breaths)
        elif t is _T["mode"]:
            out.modes.append((r.t_ms / 1000.0, r.mode))
            out.mode = r.mode


def circular_mean_deg(degrees):
    """Mean direction of angles in degrees (-180..180), None for no angles or no mean direction."""
    c = sum(math.cos(math.radians(d)) for d in degrees)
    s = sum(math.sin(math.radians(d)) for d in degrees)
    if not degrees or (abs(c) < 1e-9 and abs(s) < 1e-9):
        return None
    return math.degrees(math.atan2(s, c))


def rate_group(rate_bpm):
    """The rate a breath is grouped under: rounded to RATE_GROUP_BPM."""
    return round(rate_bpm / RATE_GROUP_BPM) * RATE_GROUP_BPM


def rate_table(breaths, coherence, pacer):
    """Per-rate rows like the device's assess_step, from valid breaths grouped by rounded rate.

    A coherence value (over the last 64 s) counts for a rate when every pacer line in the
    COHERENCE_INSIDE_S before it rounds to that rate, so its window lies mostly at that rate.
    """
    groups = collections.OrderedDict()
    for b in breaths:
        if b.valid:
            groups.setdefault(rate_group(b.rate_bpm), []).append(b)
    coh = collections.defaultdict(list)
    for c in coherence:
        if c.ratio is None:
            continue
        window = {rate_group(p.rate_bpm) for p in pacer if c.t_s - COHERENCE_INSIDE_S <= p.t_s <= c.t_s}
        if len(window) == 1:
            coh[window.pop()].append(c.ratio)
    rows = []
    for rate in sorted(groups, reverse=True):
        bs = groups[rate]
        n = len(bs)
        cs = coh.get(rate)
        rows.append(RateRow(rate, n, sum(b.swing_bpm for b in bs) / n, sum(b.fit_bpm for b in bs) / n,
                            circular_mean_deg([b.phase_deg for b in bs]),
                            sum(cs) / len(cs) if cs else None))
    return rows


def _summarise(out, records):
    times = [r.t_ms for r in records if hasattr(r, "t_ms")]
    stop = [r for r in records if type(r) is _T["session"] and r.state == "stop"]
    duration = (stop[-1].t_ms if stop else (max(times) if times else 0)) / 1000.0
    ibis = [b.ibi_ms for b in out.beats if b.accepted]
    mean_hr = 60e3 * len(ibis) / sum(ibis) if ibis else None
    valid = out.valid_breaths
    mean_swing = sum(b.swing_bpm for b in valid) / len(valid) if valid else None
    coh_pct = (100.0 * sum(1 for c in out.coherence if c.ratio is not None and c.ratio >= 1.0)
               / len(out.coherence)) if out.coherence else None
    final_rate = out.pacer[-1].rate_bpm if out.pacer else None
    out.summary = Summary(duration, mean_hr, mean_swing, coh_pct, final_rate, out.mode, len(valid))


def _quality_spans(out, records, quality_at_start, end_s):
    spans = []
    state = quality_at_start
    t0 = 0.0
    for r in records:
        if type(r) is _T["quality"]:
            t = r.t_ms / 1000.0
            if r.state != state:
                if t > t0:
                    spans.append(QualitySpan(t0, t, state))
                state = r.state
                t0 = t
    if end_s > t0 or not spans:
        spans.append(QualitySpan(t0, max(end_s, t0), state))
    out.quality = spans


def analyse(session):
    """Re-analyse a Session (vagal_host.session.read_session); see the module docstring."""
    results = []
    for source, records, quality_at_start, ended in _split_sessions(session):
        kinds = {type(r) for r in records}
        if _T["beat"] not in kinds and _T["pacer"] not in kinds:
            continue
        _check(session, records)
        out = SessionAnalysis(len(results), source)
        out.ended = ended
        _device_lines(out, records)
        _run_segment(session, out, records, quality_at_start)
        _summarise(out, records)
        _quality_spans(out, records, quality_at_start, out.summary.duration_s)
        out.rates = rate_table(out.breaths, out.coherence, out.pacer)
        results.append(out)
    if not results:
        raise VagalError("%s holds no session with beats or pacer lines (%d lines decoded, %d corrupt)"
                         % (session.path, len(session.records), session.corrupt))
    return results


def analyse_session(path):
    """Read a session file and re-analyse every session in it (module docstring)."""
    return analyse(read_session(path))
