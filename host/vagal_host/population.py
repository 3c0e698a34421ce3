"""Issues #4 and 15 acceptance on the virtual board: simulated populations, each person on their own board.

Why here and not in tests/test_resonance_sim.py: that test drives the core classes directly; this
runs the whole firmware (app, modes, protocol, settings) in the MicroPython unix port against the
simulated person (host/virtual_board/person.py), exactly as a host would talk to a Pico. Per person:

  (a) assessment: a board booted in `mode` assess; read to `assess_result` (its refined `rate_mbpm`);
  (b) practice: a board booted from the settings file the assessment board left behind (whatever
      the assessment stored for the tuner reaches it), set to practice at `resonance_mbpm` 1
      breath/min away from the true resonance with `session_min` 10: the `summary` line's final
      pacer rate when the timed session ends.

Both sessions start by themselves from the settings file, so no command reaches a max-speed board
at a scheduling-dependent virtual time: a person's result depends only on their seed.

Families (docs/resonance.md, 'Simulated populations'): "own" (the project's person: HR peak at the
end of inhale at resonance), "bandpass" (the same model with the physiology that varies between
people: HR phase at resonance, pulse transit, breathing lag, broad curves, a non-resonant floor) and
"baroreflex" (a beat-to-beat loop whose resonance emerges from its delay). The truth of the last two
is the noise-free sweep's resonance (vagal_host.truth). Success is landing within +-0.25
breaths/min of it; a tuner that ends on its range end is counted separately (and as a miss in "not
on range end"), as is any result outside the paceable 4..7 breaths/min. People run in parallel
worker processes, each board at max speed (a discrete-event virtual clock).

    python -m vagal_host.population N [--family own|bandpass|baroreflex|all] [--per-band] [--fast]
        [--workers W] [--seed0 S] [--step-s S] [--practice-min M]
"""

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import random
import sys
import time

from vagal import link as link_mod
from vagal import protocol

from vagal_host.errors import VagalError

TOLERANCE_BPM = 0.25
PRACTICE_MIN = 10.0
OFFSET_BPM = 1.0  # tuning starts this far from the true resonance
READ_TIMEOUT_S = 0.5
WALL_LIMIT_S = 600.0  # per phase of one person; a board that stalls this long is a failure


FAMILIES = ("own", "bandpass", "baroreflex")
PACE_MIN_BPM, PACE_MAX_BPM = 4.0, 7.0  # firmware/vagal/resonance.py ABS_MIN_MBPM / ABS_MAX_MBPM
PHASE_BANDS = ((-60.0, -20.0), (-20.0, 20.0), (20.0, 60.0))  # HR phase at resonance, deg
MAX_REDRAWS = 50


def _tune_start(rng, resonance_bpm):
    """1 breath/min above or below the resonance (a coin), the other side if that is not paceable."""
    up = rng.random() < 0.5
    start = resonance_bpm + (OFFSET_BPM if up else -OFFSET_BPM)
    if not 4.0 <= start <= 7.0:
        start = resonance_bpm + (-OFFSET_BPM if up else OFFSET_BPM)
    return int(round(start * 1000))


def _draw_own(seed):
    """The project's own person (issue #4's ranges, tests/test_resonance_sim.py): HR peak at the
    end of inhale at resonance, no pulse transit, no breathing lag; truth = its parameter."""
    rng = random.Random(seed)
    p = {
        "seed": seed,
        "resonance_bpm": rng.uniform(4.5, 6.5),
        "hr": rng.uniform(50.0, 90.0),
        "rsa": rng.uniform(6.0, 24.0),  # peak-to-trough HR swing at resonance, bpm
        "q": rng.uniform(1.5, 3.0),
    }
    p.update(_noise_and_adherence(rng))
    p["tune_start_mbpm"] = _tune_start(rng, p["resonance_bpm"])
    p["family"] = "own"
    return p


def _noise_and_adherence(rng):
    """The own person's noise, drift and adherence draws (in this order: the same for a seed)."""
    return {
        "hrnoise": rng.uniform(0.5, 2.0),
        "jitter": rng.uniform(0.002, 0.010),
        "pwander": rng.uniform(0.02, 0.07),
        "adherence": rng.uniform(0.7, 1.0),
        "ectopics": rng.uniform(0.0, 0.01),
        "noise": rng.uniform(0.005, 0.02),
        "artefacts": rng.uniform(0.0, 0.3),
        "drift": 2.0,
    }


def _common(rng, seed):
    """What the new families share: heart rate, noise and adherence (the own person's ranges),
    pulse transit and breathing lag."""
    p = {"seed": seed, "hr": rng.uniform(50.0, 90.0)}
    p.update(_noise_and_adherence(rng))
    p["transit"] = rng.uniform(0.15, 0.35)  # R wave to finger pulse peak, s
    p["blag"] = rng.uniform(0.1, 0.8)  # breathing behind the pacer, s
    return p


def _draw_bandpass(rng, seed):
    """The band-pass person with the physiology that varies: the HR phase the device sees at
    resonance (against the pacer's end of inhale) drawn over -60..+60 deg (the model's own
    phase_deg is that minus the breathing lag's share), a broad or sharp curve (Q 0.7..3) and a
    non-resonant RSA floor (0..15 % of the swing, its HR peak -30..+30 deg about the end of inhale)."""
    p = _common(rng, seed)
    f = rng.uniform(4.5, 6.5)
    seen = rng.uniform(-60.0, 60.0)
    p.update(model_resonance_bpm=f, rsa=rng.uniform(6.0, 24.0), q=rng.uniform(0.7, 3.0),
             phase_target_deg=seen)
    p["phase"] = max(-90.0, min(90.0, seen - 360.0 * p["blag"] * f / 60.0))
    p["floor"] = rng.uniform(0.0, 0.15) * p["rsa"]
    p["floordeg"] = rng.uniform(-30.0, 30.0)
    return p


_MODEL_KEYS = ("hr", "rsa", "q", "hrnoise", "jitter", "pwander", "adherence", "ectopics", "noise",
               "artefacts", "drift", "phase", "transit", "blag", "floor", "floordeg")


def person_model(p):
    """-> (model family of person.py, {spec key: value}) for a drawn person p."""
    model = "baroreflex" if p.get("family") == "baroreflex" else "bandpass"
    if model == "baroreflex":
        kv = {"seed": p["seed"], "model": 1}
    else:
        kv = {"seed": p["seed"], "resonance": p.get("model_resonance_bpm", p.get("resonance_bpm")) / 60.0}
    for k in _MODEL_KEYS + tuple(p.get("baro_keys", ())):
        if k in p:
            kv[k] = p[k]
    if model == "baroreflex":
        kv.pop("rsa", None)
        kv.pop("q", None)
    return model, kv


def person_kwargs(p, **more):
    """The constructor arguments of p's simulated person. -> (class, kwargs)."""
    from vagal_host import truth

    cls, args = truth.person_module().spec_args(person_model(p)[1])
    args.update(more)
    return cls, args


def sweep_truth(p):
    """The noise-free sweep of p's person (vagal_host.truth; cached)."""
    from vagal_host import truth

    model, _ = person_model(p)
    return truth.resonance_truth(model, person_kwargs(p)[1])


def _annotate(p, sw):
    p["sweep_bpm"] = sw["resonance_bpm"]
    p["sweep_phase_deg"] = sw["phase_deg"]
    p["sweep_swing_bpm"] = sw["swing_bpm"]
    p["sharpness"] = sw["sharpness"]


MAX_SWING_BPM = 40.0
FLAT_SHARPNESS = 0.02  # a swing curve that falls less than this 0.5 breaths/min from its peak
MAX_RESIDUAL_BPM = 0.5


def redraw_reason(sw):
    """Why a drawn person's noise-free sweep is not kept (None: kept): a resonance outside the
    paceable range, or a loop that rings by itself (its HR not locked to the breathing, residual
    above MAX_RESIDUAL_BPM) or nearly (a swing above MAX_SWING_BPM)."""
    if not PACE_MIN_BPM <= sw["resonance_bpm"] <= PACE_MAX_BPM:
        return "slow" if sw["resonance_bpm"] < PACE_MIN_BPM else "fast"
    if sw["residual_bpm"] > MAX_RESIDUAL_BPM or sw["swing_bpm"] > MAX_SWING_BPM:
        return "rings"
    return None


def draw_person(seed, family="own", sweep=False):
    """One member of a population. family "own": the project's person as before (the same draw
    for a seed). "bandpass", "baroreflex": the truth is the noise-free sweep's resonance
    (vagal_host.truth), re-drawn (same stream, counted in "redraws") while that lies outside the
    paceable 4.0..7.0 breaths/min. sweep: also annotate the own person with its sweep."""
    if family not in FAMILIES:
        raise VagalError("family must be one of %s, not %r" % ("|".join(FAMILIES), family))
    if family == "own":
        p = _draw_own(seed)
        if sweep:
            _annotate(p, sweep_truth(p))
        return p
    rng = random.Random("%s-%d" % (family, seed))
    draw = _draw_bandpass if family == "bandpass" else _draw_baroreflex
    why = []
    for _ in range(MAX_REDRAWS):
        p = draw(rng, seed)
        p["family"] = family
        sw = sweep_truth(p)
        reason = redraw_reason(sw)
        if reason is None:
            break
        why.append(reason)
    else:
        raise VagalError("no %s person with a paceable resonance in %d draws (seed %d)"
                         % (family, MAX_REDRAWS, seed))
    _annotate(p, sw)
    p["resonance_bpm"] = sw["resonance_bpm"]
    p["redraws"] = why
    p["tune_start_mbpm"] = _tune_start(rng, p["resonance_bpm"])
    return p


BARO_KEYS = ("delay", "effector", "loopgain", "vagal", "respbp", "respms", "mechdelay", "bpnoise")


def _draw_baroreflex(rng, seed):
    """The baroreflex loop (baroreflex.BaroreflexPerson, no resonance parameter): the vascular limb's
    delay 3..6 s and effector lag 0.5..2 s set where it rings, its static loop gain 1.4..2.4 how
    sharply; the vagal limb 6..15 ms/mmHg; breathing lowers systolic pressure by 2..6 mmHg with its
    trough -3.5..0 s about the end of inhale (intrathoracic pressure falls from mid-inspiration)
    and shortens the interval directly by 0..40 ms (central RSA); systolic pressure noise 0.5..2."""
    p = _common(rng, seed)
    p.update(delay=rng.uniform(3.0, 6.0), effector=rng.uniform(0.5, 2.0), loopgain=rng.uniform(1.4, 2.4),
             vagal=rng.uniform(0.006, 0.015), respbp=rng.uniform(2.0, 6.0), respms=rng.uniform(0.0, 40.0),
             mechdelay=rng.uniform(-3.5, 0.0), bpnoise=rng.uniform(0.5, 2.0))
    p["baro_keys"] = BARO_KEYS
    return p


def phase_band(p):
    """The HR-phase band of p (PHASE_BANDS, from the sweep's phase at resonance) as "lo..hi", or
    "outside" beyond them."""
    ph = p.get("sweep_phase_deg")
    if ph is None:
        return "-"
    for lo, hi in PHASE_BANDS:
        if lo <= ph < hi:
            return "%+.0f..%+.0f" % (lo, hi)
    return "outside"


def _spec(p):
    from vagal_host.virtual import person_spec

    kv = person_model(p)[1]
    kv.setdefault("resonance", None)
    return person_spec(**kv)


class Link:
    """Commands out, decoded device lines in (checksummed and sequence-checked by vagal.protocol)."""

    def __init__(self, port):
        import serial

        self.ser = serial.Serial(port, timeout=READ_TIMEOUT_S)
        self.stats = link_mod.LinkStats()
        self.rid = 0
        self.buf = b""

    def send(self, kind, *args):
        self.rid += 1
        self.ser.write(protocol.encode_command(kind, self.rid, *args).encode())
        return self.rid

    def messages(self, until, what, limit_s=WALL_LIMIT_S):
        """Yield decoded messages until until(msg) is true (that one included); VagalError naming
        `what` if the board goes quiet or takes longer than limit_s."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit_s:
            line = self.ser.readline()
            if not line.endswith(b"\n"):
                continue
            msg = self.stats.accept(line.rstrip(b"\r\n"))
            if msg is None:
                continue
            yield msg
            if until(msg):
                return
        raise VagalError("no %s from the virtual board within %g s" % (what, limit_s))

    def command(self, kind, *args):
        """Send a command and wait for its ok; VagalError with the board's reason on err."""
        rid = self.send(kind, *args)
        for m in self.messages(lambda m: m.kind in ("ok", "err") and m["id"] == rid, "reply to " + kind, 60):
            if m.kind == "err" and m["id"] == rid:
                raise VagalError("%s %s: %s" % (kind, " ".join(map(str, args)), m["reason"]))
        return rid

    def close(self):
        self.ser.close()


def _board_session(p, settings, until, what, trace=False):
    """One virtual board for person p, booted with `settings` (a session starts by itself, so no
    command reaches a max-speed board at a scheduling-dependent virtual time: the run depends only
    on the seed). Reads device lines until until(msg). -> (messages kept, link stats, the settings
    file as the board left it)."""
    from vagal_host.virtual import VirtualBoard

    vb = VirtualBoard(speed="max", person=_spec(p), respawn=False)
    with open(vb.settings_path, "w") as f:
        json.dump(dict(settings, autostart=True), f)
    kept = []
    try:
        vb.start()
        link = Link(vb.port)
        try:
            for m in link.messages(until, what):
                if m.kind in ("assess_step", "assess_result", "summary", "session") or (
                        trace and m.kind == "breath"):
                    kept.append(m)
            stats = link.stats
        finally:
            link.close()
    except VagalError as e:
        raise VagalError("%s (board log: %s)" % (e, vb.log_text()[-300:].strip()))
    finally:
        vb.stop()
    try:
        with open(vb.settings_path) as f:
            stored = json.load(f)
    except (OSError, ValueError) as e:
        raise VagalError("the board's settings file %s is unreadable after the session: %s"
                         % (vb.settings_path, e))
    return kept, stats, stored


class _Skip(Exception):
    """No tuning session for this person (run_person(tune=False))."""


def run_person(p, step_s=None, practice_min=PRACTICE_MIN, assess=True, trace=False, tune=True):
    """Assessment (unless assess is False) on one virtual board, then tuning from 1 breath/min away
    on another (unless tune is False), both started from the settings file. -> result row (dict):
    assess_steps rows (rate_mbpm, breaths, swing_x10, fit_x10, phase_deg, coherence_x100); with
    trace, the practice's breaths as (t_ms, valid, fit_x10, phase_deg, rate_mbpm) in
    row["tune_trace"] and the assessment's as (t_ms, valid, swing_x10, fit_x10, phase_deg, rate_mbpm)
    in row["assess_trace"] (to see why a run converges or not)."""
    row = dict(p)
    t0 = time.monotonic()
    lost = corrupt = 0
    stored = {}
    try:
        if assess:
            settings = {"mode": "assess"}
            if step_s is not None:
                settings["assess_step_s"] = int(step_s)
            kept, stats, stored = _board_session(p, settings, lambda m: m.kind == "assess_result",
                                                 "assess_result", trace)
            steps = [(m["rate_mbpm"], m["breaths"], m["swing_x10"], m["fit_x10"], m["phase_deg"],
                      m["coherence_x100"]) for m in kept if m.kind == "assess_step"]
            if trace:
                row["assess_trace"] = [(m["t_ms"], m["valid"], m["swing_x10"], m["fit_x10"], m["phase_deg"],
                                        m["rate_mbpm"]) for m in kept if m.kind == "breath"]
            kept = [m for m in kept if m.kind != "breath"]
            last = kept[-1]
            row.update(assess_state=last["state"], assess_mbpm=last["rate_mbpm"],
                       assess_chosen_mbpm=last["chosen_mbpm"], assess_steps=steps,
                       assess_min=round(last["t_ms"] / 60000.0, 2))
            lost, corrupt = stats.lost, stats.corrupt
        if not tune:
            raise _Skip()
        # (b) practice, tuning from 1 breath/min away, a timed session (session_min) that ends
        # with its summary
        settings = practice_settings(stored, p["tune_start_mbpm"], practice_min)
        kept, stats, _ = _board_session(p, settings, lambda m: m.kind == "session" and m["state"] == "stop",
                                     "%g minutes of practice" % practice_min, trace)
        summary = [m for m in kept if m.kind == "summary"]
        if not summary:
            raise VagalError("the practice session stopped without a summary line")
        summary = summary[-1]
        if trace:
            row["tune_trace"] = [(m["t_ms"], m["valid"], m["fit_x10"], m["phase_deg"], m["rate_mbpm"])
                                 for m in kept if m.kind == "breath"]
        row.update(tune_final_mbpm=summary["rate_mbpm"], tune_breaths=summary["breaths"],
                   tune_mode=summary["mode"], tune_min=round(summary["t_ms"] / 60000.0, 2))
        row["tune_lo_mbpm"], row["tune_hi_mbpm"] = tuner_range(p["tune_start_mbpm"], settings)
        row.update(lost=lost + stats.lost, corrupt=corrupt + stats.corrupt)
    except _Skip:
        row.update(lost=lost, corrupt=corrupt)
    except VagalError as e:
        row["error"] = str(e)
    _judge(row)
    row["wall_s"] = round(time.monotonic() - t0, 1)
    return row


class _FastRun:
    """The app's loop without the app: person.py's beats (no PPG, no detector) reach the core's
    Pipeline (HRV, meter) vagal.pipeline.BEAT_REPORT_LAG_US after their peak, as the detector hands
    them over; the pacer, meter and controller run every TICK_US. The person sees the pacer from its
    third breath (the board's light watcher needs two troughs)."""

    def __init__(self, p, rate_mbpm):
        from vagal.pacer import Pacer
        from vagal.pipeline import Pipeline

        cls, args = person_kwargs(p, keep_beats=64)
        self.person = cls(**args)
        self.pipe = Pipeline(Pacer(rate_mbpm=rate_mbpm))
        self.meter = self.pipe.meter
        self.t = 7000
        self.s = 0.0
        self.last = None
        self.pipe.pacer.start(self.t)

    def run(self, seconds, ctrl, done=lambda: False):
        from vagal.pacer import PHASE_ONE
        from vagal.pipeline import BEAT_REPORT_LAG_US, TICK_US
        from vagal.ticks import ticks_add

        per, pipe = self.person, self.pipe
        pacer = pipe.pacer
        pipe.ctrl = ctrl
        lag_s = BEAT_REPORT_LAG_US / 1e6
        for _ in range(int(seconds * 1e6 / TICK_US)):
            self.t = ticks_add(self.t, TICK_US)
            self.s += TICK_US / 1e6
            pacer.update(self.t)
            per.advance(self.s, pacer.phase / PHASE_ONE if pacer.breaths >= 2 else None,
                        pacer.split / PHASE_ONE)
            for tb in per.beats:  # the true beats, each delivered once, lag_s after its peak
                if tb > self.s - lag_s:
                    break
                if self.last is not None and tb <= self.last:
                    continue
                ibi = 0 if self.last is None else int(round((tb - self.last) * 1e6))
                self.last = tb
                pipe.beat(ticks_add(self.t, -int(round((self.s - tb) * 1e6))), ibi)
            pipe.pace(self.t)  # the meter, then the controller and the pacer's glide
            if done():
                return


def run_person_fast(p, step_s=None, practice_min=PRACTICE_MIN, assess=True, trace=False, tune=True):
    """run_person's row from the core classes in CPython (_FastRun): ~0.5 s a person instead of
    ~20 s on a board, for iterating on the algorithms on hundreds of people. Not the acceptance:
    no PPG, detector or app (the board's valid-breath share is ~5 % lower)."""
    from vagal.assessment import Assessment
    from vagal.tuner import Tuner

    row = dict(p)
    stored = {}
    if assess:
        run = _FastRun(p, 6500)
        a = Assessment(run.meter, step_s=step_s or 120)
        a.start(run.t)
        run.run(3600, a, lambda: a.state != Assessment.RUNNING)
        row.update(assess_state="done" if a.state == Assessment.DONE else "failed",
                   assess_mbpm=a.result_mbpm,
                   assess_steps=[(a.rates[i], a.n[i], a.mean_swing_x10(i), a.mean_fit_x10(i),
                                  a.mean_phase_deg(i), a.mean_coherence_x100(i))
                                 for i in range(len(a.rates))])
        if hasattr(a, "stored_settings"):  # what the device would store for the tuner
            stored = dict(a.stored_settings())
    if tune:
        run = _FastRun(p, p["tune_start_mbpm"])
        kwargs = tuner_kwargs(practice_settings(stored, p["tune_start_mbpm"], practice_min))
        t = Tuner(run.meter, p["tune_start_mbpm"], **kwargs)
        t.start(run.t)
        run.run(practice_min * 60, t)
        row["tune_final_mbpm"] = t.rate_mbpm
        row["tune_lo_mbpm"], row["tune_hi_mbpm"] = _range_of(t, p["tune_start_mbpm"])
        row["tuner_settings"] = sorted(kwargs)
    _judge(row)
    return row


_PRACTICE_KEYS = ("mode", "resonance_mbpm", "tuning", "session_min", "autostart")


def practice_settings(stored, start_mbpm, practice_min):
    """The practice board's settings: what the assessment board left in its settings file (or, in
    --fast, Assessment.stored_settings() if it has one), then the practice's own: tuning from
    start_mbpm, a timed session of practice_min minutes."""
    settings = dict(stored)
    settings.update(mode="practice", resonance_mbpm=start_mbpm, tuning=True, session_min=int(practice_min))
    return settings


def tuner_kwargs(settings, named_only=False):
    """The settings a Tuner(meter, start_mbpm, **kwargs) takes by name (the practice's own keys
    left out: they are the session's, not the tuner's); all of them if the Tuner takes **kwargs,
    unless named_only (a whole settings file: brightness and the like are not the tuner's)."""
    import inspect

    from vagal.tuner import Tuner

    params = inspect.signature(Tuner.__init__).parameters
    if not named_only and any(q.kind == q.VAR_KEYWORD for q in params.values()):
        names = set(settings)
    else:
        names = set(params) - {"self", "meter", "start_mbpm"}
    return {k: v for k, v in settings.items() if k in names and k not in _PRACTICE_KEYS}


def _range_of(t, start_mbpm):
    """(lo, hi) mbpm the tuner t may move in: its lo/hi if it has them, else start +- its span."""
    lo, hi = getattr(t, "lo", None), getattr(t, "hi", None)
    if lo is None or hi is None:
        span = getattr(t, "span_mbpm", None) or getattr(t, "span", None)
        if span is None:
            return None, None
        lo, hi = start_mbpm - span, start_mbpm + span
    return int(lo), int(hi)


def tuner_range(start_mbpm, settings):
    """The range a board's tuner had (a CPython Tuner built as the board would: same start, same
    settings): (lo, hi) mbpm."""
    from vagal.resonance import ResonanceMeter
    from vagal.tuner import Tuner

    return _range_of(Tuner(ResonanceMeter(), start_mbpm, **tuner_kwargs(settings, named_only=True)),
                     start_mbpm)


END_TOLERANCE_MBPM = 5


def _judge(row):
    """Errors against the truth, a tuner result on its range end, results outside the paceable range."""
    fr = row["resonance_bpm"]
    a = row.get("assess_mbpm")
    row["assess_err_bpm"] = a / 1000.0 - fr if a and row.get("assess_state") == "done" else None
    f = row.get("tune_final_mbpm")
    row["tune_err_bpm"] = f / 1000.0 - fr if f else None
    lo, hi = row.get("tune_lo_mbpm"), row.get("tune_hi_mbpm")
    row["tune_on_end"] = bool(f and lo is not None and (abs(f - lo) <= END_TOLERANCE_MBPM
                                                         or abs(f - hi) <= END_TOLERANCE_MBPM))
    lo_p, hi_p = int(PACE_MIN_BPM * 1000), int(PACE_MAX_BPM * 1000)
    row["outside"] = [k for k in ("assess_mbpm", "tune_final_mbpm")
                      if row.get(k) and not lo_p <= row[k] <= hi_p]


def _within(errors):
    ok = sum(1 for e in errors if e is not None and abs(e) <= TOLERANCE_BPM + 1e-9)
    return ok / len(errors) if errors else 0.0


def family_bands(family):
    """The HR-phase bands a family's people fall in: the own person's phase is 0 at resonance."""
    names = [phase_band({"sweep_phase_deg": 0.5 * (lo + hi)}) for lo, hi in PHASE_BANDS]
    return [names[1]] if family == "own" else names


def pick_people(n, seed0=1, start=None, family="own", per_band=False):
    """The people of a run: seeds seed0.. of the family, or with start "below"/"above" the next n
    whose tuning starts on that side of their resonance. per_band: n in each HR-phase band the
    family reaches (family_bands; people beyond +-60 deg skipped), drawn in seed order."""
    if start not in (None, "below", "above"):
        raise VagalError("start must be below or above, not %r" % (start,))
    if family not in FAMILIES:
        raise VagalError("family must be one of %s, not %r" % ("|".join(FAMILIES), family))
    bands = family_bands(family)
    want = n * len(bands) if per_band else n
    counts = dict.fromkeys(bands, 0)
    people = []
    seed = seed0
    while len(people) < want:
        if seed - seed0 > 100 * want:
            raise VagalError("%d %s people per band not found in %d seeds (bands so far %r)"
                             % (n, family, seed - seed0, counts))
        p = draw_person(seed, family, sweep=True)
        seed += 1
        below = p["tune_start_mbpm"] < p["resonance_bpm"] * 1000
        if start is not None and below != (start == "below"):
            continue
        if per_band:
            b = phase_band(p)
            if b not in counts or counts[b] >= n:
                continue
            counts[b] += 1
        people.append(p)
    return people


def group_stats(rows):
    """The acceptance's numbers for one group of rows: assessment and tuning within +-0.25, tuning
    within with a result on its range end counted as a miss, those end hits, results outside the
    paceable range, failed runs, mean signed and absolute errors."""
    def mean(xs):
        return sum(xs) / len(xs) if xs else None

    ae = [r.get("assess_err_bpm") for r in rows]
    te = [r.get("tune_err_bpm") for r in rows]
    te_off_end = [None if r.get("tune_on_end") else r.get("tune_err_bpm") for r in rows]
    a_ok = [e for e in ae if e is not None]
    t_ok = [e for e in te if e is not None]
    return {
        "n": len(rows),
        "assessment_within": _within(ae) if any(e is not None for e in ae) or any(
            "assess_state" in r for r in rows) else None,
        "tuning_within": _within(te) if any("tune_final_mbpm" in r for r in rows) else None,
        "tuning_within_off_end": _within(te_off_end) if any("tune_final_mbpm" in r for r in rows) else None,
        "tune_on_end": sum(1 for r in rows if r.get("tune_on_end")),
        "outside": sum(1 for r in rows if r.get("outside")),
        "failed": sum(1 for r in rows if "error" in r),
        "assess_bias": mean(a_ok), "assess_mae": mean([abs(e) for e in a_ok]),
        "tune_bias": mean(t_ok), "tune_mae": mean([abs(e) for e in t_ok]),
        "truth_minus_model": mean(_truth_gaps(rows)),
        "truth_minus_model_max": max([abs(d) for d in _truth_gaps(rows)], default=None),
        "redraws": sum(len(r.get("redraws", ())) for r in rows),
    }


def _truth_gaps(rows):
    """Sweep resonance minus the model's resonance parameter, for the people that have one."""
    return [r["sweep_bpm"] - r.get("model_resonance_bpm", r["resonance_bpm"]) for r in rows
            if "sweep_bpm" in r and (r.get("family", "own") == "own" or "model_resonance_bpm" in r)]


def groups(rows):
    """[(family, band or "all", stats)]: each family whole, then each of its HR-phase bands."""
    out = []
    for fam in FAMILIES:
        fr = [r for r in rows if r.get("family", "own") == fam]
        if not fr:
            continue
        out.append((fam, "all", group_stats(fr)))
        for b in family_bands(fam) + ["outside"]:
            br = [r for r in fr if phase_band(r) == b]
            if br:
                out.append((fam, b, group_stats(br)))
    return out


def run_population(n, workers, seed0=1, step_s=None, practice_min=PRACTICE_MIN, assess=True,
                   trace=False, start=None, tune=True, fast=False, family="own", per_band=False):
    """n people (seeds seed0..) of a family ("all": n of each), each on a virtual board, `workers`
    at a time in worker processes. per_band: n in each HR-phase band instead. start
    "below"/"above": only people whose tuning starts below/above their resonance (the next n such
    seeds; while investigating one side); assess False: tuning only (half the time); tune False:
    assessment only; fast: the core classes in CPython instead of boards (run_person_fast).

    -> {"rows": [...], "assessment_within": share, "tuning_within": share, "groups": per family and
    band (group_stats), ...}; a person whose board failed counts as a miss (their row says why)."""
    if n < 1 or workers < 1:
        raise VagalError("need at least one person and one worker (n=%r, workers=%r)" % (n, workers))
    if practice_min != int(practice_min) or not 1 <= practice_min <= 120:
        raise VagalError("practice minutes must be a whole number 1..120 (the session_min setting), "
                         "not %r" % (practice_min,))
    if family != "all" and family not in FAMILIES:
        raise VagalError("family must be all or one of %s, not %r" % ("|".join(FAMILIES), family))
    people = []
    for fam in (FAMILIES if family == "all" else (family,)):
        people += pick_people(n, seed0, start, fam, per_band)
    m = len(people)
    if not fast:
        from vagal_host.virtual import build

        build()  # once, before the workers start their boards
    t0 = time.monotonic()
    ctx = multiprocessing.get_context("spawn")  # no forked copies of a threaded parent
    with concurrent.futures.ProcessPoolExecutor(max_workers=min(workers, m), mp_context=ctx) as pool:
        rows = list(pool.map(run_person_fast if fast else run_person, people, [step_s] * m, [practice_min] * m,
                             [assess] * m, [trace] * m, [tune] * m))
    whole = group_stats(rows)
    return {
        "n": m,
        "family": family,
        "per_band": per_band,
        "fast": fast,
        "workers": workers,
        "tolerance_bpm": TOLERANCE_BPM,
        "practice_min": practice_min,
        "assess_step_s": step_s,
        "rows": rows,
        "assessment_within": _within([r["assess_err_bpm"] for r in rows]) if assess else None,
        "tuning_within": _within([r["tune_err_bpm"] for r in rows]) if tune else None,
        "tuning_within_off_end": whole["tuning_within_off_end"] if tune else None,
        "tune_on_end": whole["tune_on_end"],
        "outside": whole["outside"],
        "groups": [{"family": f, "band": b, **st} for f, b, st in groups(rows)],
        "failed": sum(1 for r in rows if "error" in r),
        "wall_s": round(time.monotonic() - t0, 1),
    }


def _fmt(e):
    return "   --" if e is None else "%+5.2f" % e


def _pct(x):
    return "   --" if x is None else "%4.0f %%" % (100 * x)


def group_table(result):
    """The per family and HR-phase band table (markdown), as the report and make bench print it."""
    lines = ["| family | HR phase band | people | assessment within | bias | tuning within | "
             "not on range end | on range end | outside 4-7 | failed |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for g in result["groups"]:
        lines.append("| %s | %s | %d | %s | %s | %s | %s | %d | %d | %d |" % (
            g["family"], g["band"], g["n"], _pct(g["assessment_within"]), _fmt(g["assess_bias"]).strip(),
            _pct(g["tuning_within"]), _pct(g["tuning_within_off_end"]), g["tune_on_end"], g["outside"],
            g["failed"]))
    return "\n".join(lines)


def report(result):
    lines = ["fam  seed  f_r/min  HR phase  HR  swing  sharp  adh   assess        err   "
             "tune start->final   err"]
    for r in result["rows"]:
        lines.append("%-4s %4d  %6.2f  %+6.0f  %3.0f  %5.1f  %5.3f  %4.2f  %-8s %5.2f %s   %5.2f -> %5.2f  %s%s%s" % (
            r.get("family", "own")[:4], r["seed"], r["resonance_bpm"],
            r.get("sweep_phase_deg") if r.get("sweep_phase_deg") is not None else float("nan"),
            r["hr"], r.get("sweep_swing_bpm") or r.get("rsa") or 0.0, r.get("sharpness") or 0.0,
            r["adherence"], r.get("assess_state", "-"), (r.get("assess_mbpm") or 0) / 1000.0,
            _fmt(r["assess_err_bpm"]), r["tune_start_mbpm"] / 1000.0, (r.get("tune_final_mbpm") or 0) / 1000.0,
            _fmt(r["tune_err_bpm"]), " END" if r.get("tune_on_end") else "",
            "   ERROR " + r["error"] if "error" in r else ""))
    if result["assessment_within"] is not None:
        lines.append("assessment within +-%.2f breaths/min: %.0f %% of %d" % (
            result["tolerance_bpm"], 100 * result["assessment_within"], result["n"]))
    if result["tuning_within"] is not None:
        lines.append("tuning from 1 breath/min away, %g min: within +-%.2f: %.0f %% of %d (%.0f %% with "
                     "the %d results on the tuner's range end counted as misses)" % (
                         result["practice_min"], result["tolerance_bpm"], 100 * result["tuning_within"],
                         result["n"], 100 * result["tuning_within_off_end"], result["tune_on_end"]))
    lines.append("%d results outside the paceable %.1f..%.1f breaths/min" % (
        result["outside"], PACE_MIN_BPM, PACE_MAX_BPM))
    lines.append("")
    lines.append(group_table(result))
    lines.append("")
    for g in result["groups"]:
        if g["band"] != "all":
            continue
        why = {}
        for r in result["rows"]:
            if r.get("family", "own") == g["family"]:
                for w in r.get("redraws", ()):
                    why[w] = why.get(w, 0) + 1
        gap = ("truth (noise-free sweep) - model parameter: mean %+.3f, largest %.3f breaths/min" % (
            g["truth_minus_model"], g["truth_minus_model_max"]) if g["truth_minus_model"] is not None
            else "no resonance parameter: the truth is the noise-free sweep's")
        lines.append("%s: %s; %d people drawn again%s" % (
            g["family"], gap, g["redraws"],
            " (%s)" % ", ".join("%s %d" % kv for kv in sorted(why.items())) if why else ""))
        fam_rows = [r for r in result["rows"] if r.get("family", "own") == g["family"]]
        flat = [r for r in fam_rows if (r.get("sharpness") or 0.0) < FLAT_SHARPNESS]
        if flat:
            clear = [r for r in fam_rows if r not in flat]
            lines.append("  %d with a flat curve (swing down < %.0f %% 0.5 breaths/min either side): "
                         "assessment %s, tuning %s within; the %d others: %s, %s" % (
                             len(flat), 100 * FLAT_SHARPNESS, _pct(_within([r.get("assess_err_bpm") for r in flat])).strip(),
                             _pct(_within([r.get("tune_err_bpm") for r in flat])).strip(), len(clear),
                             _pct(_within([r.get("assess_err_bpm") for r in clear])).strip(),
                             _pct(_within([r.get("tune_err_bpm") for r in clear])).strip()))
    lines.append("")
    lines.append("%d boards failed; %.0f s wall with %d workers%s" % (
        result["failed"], result["wall_s"], result["workers"], " (--fast: core classes, no boards)"
        if result.get("fast") else ""))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m vagal_host.population", description=__doc__.split("\n")[0])
    ap.add_argument("n", type=int, nargs="?", default=50, help="people (default 50)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed0", type=int, default=1)
    ap.add_argument("--step-s", type=int, help="assessment step length, s (default: the board's, 120)")
    ap.add_argument("--practice-min", type=float, default=PRACTICE_MIN)
    ap.add_argument("--no-assess", action="store_true", help="tuning only (half the time)")
    ap.add_argument("--no-tune", action="store_true", help="assessment only")
    ap.add_argument("--fast", action="store_true",
                    help="the core classes in CPython on person.py's beats, no boards (~40x faster; "
                         "for iterating, not the acceptance)")
    ap.add_argument("--family", default="own", choices=FAMILIES + ("all",),
                    help="own: the project's person (default); bandpass: with the physiology that "
                         "varies; baroreflex: a beat-to-beat loop; all: n of each")
    ap.add_argument("--per-band", action="store_true",
                    help="n people in each HR-phase band (-60..-20, -20..+20, +20..+60 deg at "
                         "resonance) the family reaches, not n in all")
    ap.add_argument("--start", choices=("below", "above"),
                    help="only people whose tuning starts below/above their resonance")
    ap.add_argument("--trace", action="store_true",
                    help="keep each practice breath (t, valid, fit, phase, rate) in the JSON")
    ap.add_argument("--json", metavar="FILE", help="also write the whole result as JSON")
    args = ap.parse_args(argv)
    try:
        result = run_population(args.n, args.workers, args.seed0, args.step_s, args.practice_min,
                                not args.no_assess, args.trace, args.start, not args.no_tune, args.fast,
                                args.family, args.per_band)
    except VagalError as e:
        print("vagal population: %s" % e, file=sys.stderr)
        return 2
    print(report(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
