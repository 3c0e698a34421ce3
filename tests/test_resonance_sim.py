"""Resonance assessment, closed-loop tuning and wind-down on a simulated population (CPython).

Each simulated person has a resonance rate f_r (4.5-6.5 breaths/min): the heart-rate swing with
each breath follows a resonance curve A(f) = A_r / sqrt(1 + Q^2 (f/f_r - f_r/f)^2) and the HR peak
lags the end of inhale by atan(Q (f/f_r - f_r/f)) (0 at resonance). On top: slow HR drift, per-beat
HR noise, beat-timing jitter, occasional ectopic beats, breathing-phase wander and lapses (breaths
not following the pacer). Beats go through vagal.pipeline (vagal.hrv's cleaner, then the
ResonanceMeter), exactly as on the device; the real Pacer integrates the phase.
host/virtual_board/person.py (another part) is not used: it was not available when this was
written, and this model is the one the test needs.

    .venv/bin/python tests/test_resonance_sim.py [N]     prints the population numbers
"""

import math
import random
import sys

from vagal.pacer import PHASE_ONE, Pacer
from vagal.pipeline import BEAT_REPORT_LAG_US, Pipeline
from vagal.assessment import Assessment
from vagal.tuner import Tuner
from vagal.ticks import ticks_add
from vagal.winddown import WindDown

STEP_US = 100000  # simulation / pacer update step
POPULATION = 50


class Person:
    """A simulated person breathing with the pacer (floats: host-side model only)."""

    def __init__(self, seed):
        rng = random.Random(seed)
        self.rng = rng
        self.fr = rng.uniform(4.5, 6.5)  # resonance, breaths/min
        self.hr0 = rng.uniform(50.0, 90.0)
        self.a_r = rng.uniform(6.0, 24.0)  # peak-to-trough HR swing at resonance, bpm
        self.q = rng.uniform(1.5, 3.0)
        self.hr_noise = rng.uniform(0.5, 2.0)  # per-beat HR noise, bpm sd
        self.jitter_s = rng.uniform(0.002, 0.010)  # beat timing jitter, s sd
        self.wander = rng.uniform(0.02, 0.07)  # breathing phase error, breaths sd
        self.lapse = rng.uniform(0.0, 0.08)  # share of breaths not following the pacer
        self.ectopic = rng.uniform(0.0, 0.01)
        self.drift_bpm = 2.0  # slow HR wander, sd
        self.following = True
        self._drift = 0.0
        self._err = 0.0
        self._amp = None
        self._lag = 0.0
        self._cardiac = 0.0
        self._next_noise = 0.0
        self._lapse_left = 0.0
        self._lapse_phase = 0.0
        self._own = rng.uniform(0.0, 1.0)  # own breathing phase when not following
        self._own_rate = rng.uniform(12.0, 16.0)
        # HR phase against the end of inhale at resonance: not 0 for most people (pulse transit,
        # breathing lag, the baroreflex delay); the old rules steered to 0 and missed by 0.4-0.5
        self.phase0 = rng.uniform(-60.0, 60.0)

    def response(self, f):
        x = self.q * (f / self.fr - self.fr / f)
        return self.a_r / math.sqrt(1.0 + x * x), math.atan(x) + math.radians(self.phase0)

    def step(self, dt, pacer_cycle, rate_bpm, split_frac):
        """Advance dt seconds; returns a list of beat times (s, relative to this step's start)."""
        rng = self.rng
        a, lag = self.response(rate_bpm)
        k = dt / 8.0  # the response settles within a few seconds of a rate change
        if self._amp is None:
            self._amp, self._lag = a, lag
        self._amp += (a - self._amp) * k
        self._lag += (lag - self._lag) * k
        self._drift += -self._drift * dt / 60.0 + rng.gauss(0.0, self.drift_bpm * math.sqrt(2 * dt / 60.0))
        self._err += -self._err * dt / 20.0 + rng.gauss(0.0, self.wander * math.sqrt(2 * dt / 20.0))
        self._own = (self._own + self._own_rate / 60.0 * dt) % 1.0
        if self._lapse_left > 0:
            self._lapse_left -= dt
        elif rng.random() < self.lapse * dt * rate_bpm / 60.0:
            self._lapse_left = 60.0 / rate_bpm
            self._lapse_phase = rng.uniform(0, 1)
        if not self.following:
            cyc = self._own
            amp = self.response(self._own_rate)[0]
            lag = self.response(self._own_rate)[1]
        else:
            cyc = pacer_cycle + self._err
            amp = self._amp
            lag = self._lag
            if self._lapse_left > 0:
                cyc = pacer_cycle * 0.6 + self._lapse_phase
                amp *= 0.4
        hr = self.hr0 + self._drift + 0.5 * amp * math.cos(2 * math.pi * (cyc - split_frac) - lag)
        beats = []
        c0 = self._cardiac
        c1 = c0 + (hr + self._next_noise) / 60.0 * dt
        while c1 >= 1.0:
            frac = (1.0 - c0) / (c1 - c0)
            beats.append(frac * dt + rng.gauss(0.0, self.jitter_s))
            self._next_noise = rng.gauss(0.0, self.hr_noise)
            rest = (c1 - 1.0) / (c1 - c0)  # share of the step after the beat
            c0 = 0.0
            c1 = (hr + self._next_noise) / 60.0 * dt * rest
            if rng.random() < self.ectopic:
                c1 += 0.3  # a premature beat
        self._cardiac = c1
        return beats


class Run:
    """The device loop around a controller (anything with update(now_us) and rate_mbpm): the core's
    Pipeline, beats handed over vagal.pipeline.BEAT_REPORT_LAG_US after their peak."""

    def __init__(self, person, rate_mbpm):
        self.person = person
        self.pipe = Pipeline(Pacer(rate_mbpm=rate_mbpm))
        self.pacer = self.pipe.pacer
        self.meter = self.pipe.meter
        self.t = 7000  # ticks, us
        self.sim_s = 0.0
        self.last_beat_s = None
        self.pending = []
        self.pacer.start(self.t)

    def run(self, seconds, controller, on_step=None):
        p = self.pacer
        self.pipe.ctrl = controller
        steps = int(seconds * 1e6 / STEP_US)
        for _ in range(steps):
            self.t = ticks_add(self.t, STEP_US)
            self.sim_s += STEP_US / 1e6
            p.update(self.t)
            # beats are handed over after their peak, as the detector does
            while self.pending and self.pending[0] <= self.sim_s - BEAT_REPORT_LAG_US / 1e6:
                self._deliver(self.pending.pop(0))
            self.pipe.pace(self.t)
            cycle = p.phase / PHASE_ONE
            for b in self.person.step(STEP_US / 1e6, cycle, p.rate_mbpm / 1000.0, p.split / PHASE_ONE):
                self.pending.append(self.sim_s + b)
            self.pending.sort()
            if on_step is not None:
                on_step(self)

    def _deliver(self, beat_s):
        if self.last_beat_s is None:
            ibi = 0
        else:
            ibi = int(round((beat_s - self.last_beat_s) * 1e6))
        self.last_beat_s = beat_s
        back = int(round((self.sim_s - beat_s) * 1e6))
        self.pipe.beat(ticks_add(self.t, -back), ibi)


def assess(seed, **kw):
    person = Person(seed)
    run = Run(person, 6500)
    a = Assessment(run.meter, **kw)
    a.start(run.t)
    while a.state == Assessment.RUNNING and run.sim_s < 30 * 60:
        run.run(10, a)
    return person, a


def tune(seed, minutes=10, **kw):
    person = Person(seed)
    rng = random.Random(seed + 1000)
    up = rng.random() < 0.5
    start = person.fr + (1.0 if up else -1.0)
    if start > 7.0 or start < 4.0:
        start = person.fr + (-1.0 if up else 1.0)
    start_mbpm = int(round(start * 1000))
    run = Run(person, start_mbpm)
    # the reference an assessment stores: the person's own phase at their swing peak
    kw.setdefault("resonance_phase_deg", int(round(person.phase0)))
    tuner = Tuner(run.meter, start_mbpm, **kw)
    tuner.start(run.t)
    run.run(minutes * 60, tuner)
    return person, tuner, start_mbpm


def population_assessment(n=POPULATION, seed0=1, **kw):
    errors = []
    for i in range(n):
        person, a = assess(seed0 + i, **kw)
        got = a.result_mbpm / 1000.0 if a.state == Assessment.DONE else float("nan")
        errors.append(got - person.fr)
    return errors


def population_tuning(n=POPULATION, seed0=1, minutes=10, **kw):
    errors = []
    for i in range(n):
        person, tuner, _ = tune(seed0 + i, minutes, **kw)
        errors.append(tuner.center_mbpm / 1000.0 - person.fr)
    return errors


def share_within(errors, tol=0.25):
    return sum(1 for e in errors if abs(e) <= tol + 1e-9) / len(errors)


# The target is 90 % for both; with this population's adherence noise the measured shares
# are lower (docs/resonance.md). These floors catch regressions; raise them as the methods improve.
ASSESSMENT_FLOOR = 0.86  # measured 92 % (resonance curve + phase line; 86-92 % on seeds 101-250)
TUNING_FLOOR = 0.94  # measured 98 % (phase line's zero, 250 mbpm/min); Kesten's gain: 96 %


def test_assessment_picks_the_resonance_rate_within_0_25():
    errors = population_assessment()
    assert share_within(errors) >= ASSESSMENT_FLOOR, sorted(round(e, 2) for e in errors)


def test_tuning_converges_from_1_bpm_away_in_10_minutes():
    errors = population_tuning()
    assert share_within(errors) >= TUNING_FLOOR, sorted(round(e, 2) for e in errors)


def test_tuning_off_holds_the_start_rate():
    person = Person(3)
    run = Run(person, 6000)
    tuner = Tuner(run.meter, 6000)
    tuner.start(run.t)
    tuner.set_enabled(False, run.t)
    run.run(180, tuner)
    assert tuner.center_mbpm == 6000 and run.pacer.rate_mbpm == 6000


def test_tuning_rate_changes_are_bounded_and_continuous():
    person, tuner, start = tune(5, minutes=6, speed_mbpm_min=100)
    assert abs(tuner.center_mbpm - start) <= 6 * 100 + 1
    assert tuner.lo <= tuner.center_mbpm <= tuner.hi


def test_meter_swing_matches_the_simulated_swing_at_resonance():
    person = Person(11)
    person.hr_noise = 0.3
    person.jitter_s = 0.001
    person.lapse = 0.0
    person.ectopic = 0.0
    person.wander = 0.01
    rate = int(round(person.fr * 1000))
    run = Run(person, rate)
    fits = []
    phases = []

    def collect(r, seen=[0]):
        m = r.meter
        if m.seq != seen[0]:
            seen[0] = m.seq
            if m.valid and r.sim_s > 30:
                fits.append(m.fit_x10 / 10.0)
                phases.append(m.phase_deg)

    run.run(240, None, collect)
    assert len(fits) >= 10
    mean_fit = sum(fits) / len(fits)
    a, _ = person.response(rate / 1000.0)
    assert abs(mean_fit - a) < 0.15 * a + 1.0, (mean_fit, a)
    assert abs(sum(phases) / len(phases) - person.phase0) < 20, (phases, person.phase0)


def test_winddown_with_a_person_who_does_not_follow_holds_then_ends():
    person = Person(7)
    person.following = False
    run = Run(person, 10500)
    w = WindDown(end_mbpm=6000, minutes=8, meter=run.meter)
    w.start(run.t)
    run.run(8 * 60, w)
    assert w.held_ms > 60000 and not w.done  # held while not entrained
    run.run(8 * 60, w)
    assert w.done  # the hold is bounded: the ramp still ends


def test_winddown_with_a_following_person_is_rarely_held():
    person = Person(8)
    run = Run(person, 10500)
    w = WindDown(end_mbpm=int(round(person.fr * 1000)), minutes=8, meter=run.meter)
    w.start(run.t)
    run.run(8 * 60 + 90, w)
    assert w.held_ms < 90000, w.held_ms
    assert w.done


def test_winddown_20_minutes_follows_the_curve_within_0_1_bpm():
    run = Run(Person(9), 10500)
    w = WindDown(end_mbpm=5500, minutes=20)  # no pulse: a plain timed ramp
    w.start(run.t)
    worst = [0]

    def check(r):
        if not w.done:
            want = w.curve_mbpm(w.ramp_ms)
            worst[0] = max(worst[0], abs(r.pacer.rate_mbpm - want))
        r.pacer.set_brightness(w.brightness_pct)

    run.run(20 * 60 + 5, w, check)
    assert w.done and w.brightness_pct == 0 and w.haptic_pct == 0
    assert worst[0] <= 100, worst[0]
    assert run.pacer.rate_mbpm == 5500


def main(argv):
    n = int(argv[0]) if argv else POPULATION
    ea = population_assessment(n)
    print("assessment: %d people, within +-0.25 bpm: %.0f %%, mean |error| %.3f, worst %.2f"
          % (n, 100 * share_within(ea), sum(abs(e) for e in ea) / n, max(abs(e) for e in ea)))
    et = population_tuning(n)
    print("tuning from 1 bpm away, 10 min: within +-0.25 bpm: %.0f %%, mean |error| %.3f, worst %.2f"
          % (100 * share_within(et), sum(abs(e) for e in et) / n, max(abs(e) for e in et)))


if __name__ == "__main__":
    main(sys.argv[1:])
