"""A simulated person for the virtual board: PPG waveform, breathing, RSA and a resonance frequency.

Portable (CPython and the MicroPython unix port), deterministic for a seed (own xorshift PRNG, so
both interpreters give the same person). Call sample(t_s, pacer_phase, split) for increasing t_s.

Breathing: with the pacer visible (pacer_phase in [0, 1), 0 = start of inhale, `split` = the
inhale's share) the person breathes on the pacer's cycle, off by a slowly wandering phase error
(phase_wander, breaths sd, 20 s correlation). Each breath they may lapse - breathe one pacer-breath
at their own spontaneous rate instead - with probability (1 - adherence)**2 (adherence 0: never
follows). With no pacer they breathe at their own rate (spont_breath_hz).
Heart rate, as in tests/test_resonance_sim.py: hr_bpm + drift + (A / 2) cos(2 pi (cycle - split) - lag),
A = rsa_bpm / sqrt(1 + x^2) and lag = atan(x), x = q (f/f_r - f_r/f), f the breathing rate: the HR
peak comes `lag` after the end of inhale (0 at resonance) and the swing peaks at resonance_hz. A and
lag settle over ~8 s after a change of the paced rate (a lapse breath has the own rate's response,
and leaves the settled one alone); drift is a slow random walk (drift_bpm sd, 60 s); every
beat's rate has its own noise (hr_noise_bpm sd) and its time a jitter (jitter_s sd).
What varies between people (issue 15; all 0 by default, which is the project's own person): the HR
phase at resonance (phase_deg: the HR peak that many degrees after the end of the person's own
inhale at resonance, added to lag), a non-resonant RSA floor (floor_bpm peak to trough, its HR peak
floor_deg after the end of inhale, added as a phasor: it flattens and shifts the curve), a breathing
lag behind the pacer (breath_lag_s: the person's end of inhale, the lung volume peak, comes that long
after the light's) and the pulse transit time (transit_s from the beat, the R wave in r_beats, to
the pulse peak in beats; transit_slope_s shorter per bpm above hr_bpm).
Beats: an integrate-and-fire on that heart rate; ectopic beats come early (65 %) with a
compensatory pause. Each beat is a systolic Gaussian at the beat time (the pulse peak: the ground
truth in self.beats) plus a dicrotic wave 0.26 s later; baseline wander, noise and motion artefacts
are added. Output 0..1 (the ADC scale).
"""

import math

TWO_PI = 2 * math.pi


class Rng:
    """xorshift32: the same stream on CPython and MicroPython."""

    def __init__(self, seed):
        self.s = (seed * 2654435761 + 12345) & 0xFFFFFFFF or 1

    def u32(self):
        s = self.s
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        self.s = s
        return s

    def uniform(self):
        return self.u32() / 4294967296.0

    def gauss(self):
        """Approximately N(0, 1): sum of 4 uniforms, rescaled."""
        return (self.uniform() + self.uniform() + self.uniform() + self.uniform() - 2.0) * 1.7320508


def resonance_gain(f_hz, f0_hz, q=2.0):
    """|H| of a second-order band-pass at f0 with quality q: 1 at f0, falling off either side."""
    if f_hz <= 0:
        return 0.0
    x = f_hz / f0_hz - f0_hz / f_hz
    return 1.0 / math.sqrt(1.0 + q * q * x * x)


def _check_range(name, v, lo, hi):
    """ValueError naming the parameter unless lo <= v <= hi."""
    if not lo <= v <= hi:
        raise ValueError("%s %r outside %r..%r" % (name, v, lo, hi))


def _wrap_half(x):
    """x wrapped into [-0.5, 0.5)."""
    return x - math.floor(x + 0.5)


class Person:
    SYS_SIGMA = 0.07
    DIC_DELAY = 0.26
    DIC_SIGMA = 0.09
    DIC_AMP = 0.35
    LOOKAHEAD = 0.4  # beats are scheduled this far ahead so the Gaussian's rise is drawn
    SLOW_S = 0.1  # the slow processes (drift, phase wander, settling) are stepped at 10 Hz
    SETTLE_S = 8.0
    DRIFT_TAU_S = 60.0
    WANDER_TAU_S = 20.0

    def __init__(self, seed=1, hr_bpm=65.0, resonance_hz=0.09, rsa_bpm=14.0, q=2.0,
                 spont_breath_hz=0.25, adherence=0.9, noise=0.01, wander=0.04,
                 artefact_rate=0.3, ectopic_rate=0.01, keep_beats=None, hr_noise_bpm=0.0,
                 jitter_s=0.0, phase_wander=0.0, drift_bpm=0.0, phase_deg=0.0, transit_s=0.0,
                 transit_slope_s=0.0015, breath_lag_s=0.0, floor_bpm=0.0, floor_deg=0.0):
        if not (0.075 <= resonance_hz <= 0.11):
            raise ValueError("resonance_hz %r outside 0.075..0.11 Hz" % resonance_hz)
        if not (0.0 <= adherence <= 1.0):
            raise ValueError("adherence %r outside 0..1" % adherence)
        if not (30 <= hr_bpm <= 200):
            raise ValueError("hr_bpm %r outside 30..200" % hr_bpm)
        if not (0.5 <= q <= 10):
            raise ValueError("q %r outside 0.5..10" % q)
        _check_range("phase_deg", phase_deg, -90.0, 90.0)
        _check_range("transit_s", transit_s, 0.0, 0.6)
        _check_range("breath_lag_s", breath_lag_s, 0.0, 3.0)
        _check_range("floor_bpm", floor_bpm, 0.0, rsa_bpm)
        self.rng = Rng(seed)
        self.hr_bpm = hr_bpm
        self.phase_rad = phase_deg * math.pi / 180.0
        self.transit_s = transit_s
        self.transit_slope = transit_slope_s
        self.breath_lag_s = breath_lag_s
        self.floor_bpm = floor_bpm
        self.floor_rad = floor_deg * math.pi / 180.0
        self.resonance_hz = resonance_hz
        self.rsa_bpm = rsa_bpm
        self.q = q
        self.spont_hz = spont_breath_hz
        self.adherence = adherence
        self.lapse_share = (1.0 - adherence) * (1.0 - adherence)
        self.noise = noise
        self.wander = wander
        self.artefact_rate = artefact_rate / 60.0  # per second
        self.ectopic_rate = ectopic_rate
        self.keep_beats = keep_beats
        self.hr_noise = hr_noise_bpm
        self.jitter = jitter_s
        self.phase_wander = phase_wander
        self.drift_sd = drift_bpm
        self.beats = []  # true pulse-peak times (s); the last keep_beats if that is set
        # the heart's beats (R waves, s): transit_s (about) before each pulse peak; without a
        # transit, the pulse peaks' own list (no second list on the board's heap)
        self.r_beats = [] if transit_s else self.beats
        self.beat_count = 0
        self.t = None
        self.breath_phase = 0.0  # the breathing cycle now, 0 = start of inhale
        self.breath_hz = spont_breath_hz  # the breathing rate now
        self.following = False
        self._paced = False
        self.lapsed_breaths = 0
        self.paced_breaths = 0
        self._own_phase = self.rng.uniform()
        self._pacer_last = None
        self._pacer_hz = None
        self._lapse_until = -1.0
        self._split = 0.4
        self._amp = None  # settled swing (bpm, peak to trough) and lag (rad)
        self._lag = 0.0
        self._drift = 0.0
        self._err = 0.0
        self._slow_t = None
        self._gen_t = 0.0  # beat generator time (runs LOOKAHEAD ahead)
        self._beat_phase = 0.5
        self._next_fire = 1.0
        self._rate_noise = 0.0
        self._ectopic_next = False
        self._recent = []  # (time, amplitude) of beats near now
        self._art_until = -1.0
        self._art_level = 0.0
        self._wander_ph = self.rng.uniform() * TWO_PI

    def response(self, f_hz):
        """(peak-to-trough HR swing in bpm, lag of the HR peak after end of inhale in rad) at f_hz."""
        if f_hz <= 0:
            return 0.0, 0.0
        x = self.q * (f_hz / self.resonance_hz - self.resonance_hz / f_hz)
        amp, lag = self.rsa_bpm / math.sqrt(1.0 + x * x), math.atan(x)
        if self.phase_rad:
            lag += self.phase_rad
        if self.floor_bpm:  # the non-resonant RSA, added as a phasor (relative to lag: no wrap)
            d = self.floor_rad - lag
            re = amp + self.floor_bpm * math.cos(d)
            im = self.floor_bpm * math.sin(d)
            amp, lag = math.sqrt(re * re + im * im), lag + math.atan2(im, re)
        return amp, lag

    def hr_now(self, ahead_s=0.0):
        """Heart rate (bpm) from the breathing state, ahead_s into the future (the beat generator
        runs LOOKAHEAD ahead of the samples: without this the RSA would lag the breathing by that)."""
        if self._paced and not self.following:  # a lapse: the response to the own breathing
            amp, lag = self.response(self.breath_hz)
        else:
            amp = self._amp if self._amp is not None else self.response(self.breath_hz)[0]
            lag = self._lag
        ph = self.breath_phase + ahead_s * self.breath_hz - self._split
        return self.hr_bpm + self._drift + 0.5 * amp * math.cos(TWO_PI * ph - lag)

    def _pacer_rate(self, dt, pacer_phase):
        """Track the pacer's rate from its phase (what a person feels of the rhythm)."""
        if pacer_phase is None:
            self._pacer_hz = None
        elif self._pacer_last is not None and dt > 0:
            d = pacer_phase - self._pacer_last
            if d < -0.5:
                d += 1.0
            if 0 <= d < 0.5:
                inst = d / dt
                if self._pacer_hz is None:
                    self._pacer_hz = inst
                else:
                    self._pacer_hz += (inst - self._pacer_hz) * min(1.0, dt / 2.0)
        last = self._pacer_last
        wrapped = pacer_phase is not None and last is not None and pacer_phase < last - 0.5
        self._pacer_last = pacer_phase
        return wrapped

    def _breathe(self, t_s, dt, pacer_phase):
        wrapped = self._pacer_rate(dt, pacer_phase)
        self._own_phase += self.spont_hz * dt
        self._own_phase -= math.floor(self._own_phase)
        paced = pacer_phase is not None and self._pacer_hz is not None and self._pacer_hz > 0
        if paced and wrapped:  # a new pacer breath: follow it, or lapse for one breath
            if self.rng.uniform() < self.lapse_share:
                self._lapse_until = t_s + 1.0 / self._pacer_hz
                self.lapsed_breaths += 1
            else:
                self.paced_breaths += 1
        self._paced = paced
        self.following = paced and t_s >= self._lapse_until
        if self.following:
            ph = pacer_phase + self._err
            if self.breath_lag_s:
                ph -= self.breath_lag_s * self._pacer_hz
            self.breath_hz = self._pacer_hz
        else:
            ph = self._own_phase
            self.breath_hz = self.spont_hz
        self.breath_phase = ph - math.floor(ph)

    def _slow(self, t_s):
        """Settling of the swing and lag, HR drift and breathing-phase wander, at SLOW_S steps.

        While paced the settled response follows the pacer's rate, lapses included: a one-breath
        lapse to the own rate (15/min: lag ~75 deg) must not leave the next paced breaths' HR peak
        tens of degrees late (interpolating the lag is a model of settling between nearby rates,
        not of a linear system's response to a brief fast breath); that lingering lag biased the
        tuner toward slower rates in proportion to the lapses (tests/test_resonance_sim.py's model
        leaves the settled response alone during lapses too)."""
        f = self._pacer_hz if self._paced else self.breath_hz
        if self._slow_t is None:
            self._slow_t = t_s
            self._amp, self._lag = self.response(f)
            return
        rng = self.rng
        while t_s - self._slow_t >= self.SLOW_S:
            dt = self.SLOW_S
            self._slow_t += dt
            a, lag = self.response(f)
            k = dt / self.SETTLE_S
            self._amp += (a - self._amp) * k
            self._lag += (lag - self._lag) * k
            if self.drift_sd:
                self._drift += (-self._drift * dt / self.DRIFT_TAU_S
                                + rng.gauss() * self.drift_sd * math.sqrt(2 * dt / self.DRIFT_TAU_S))
            if self.phase_wander:
                self._err += (-self._err * dt / self.WANDER_TAU_S
                              + rng.gauss() * self.phase_wander * math.sqrt(2 * dt / self.WANDER_TAU_S))

    def _gen_beats(self, until):
        hr = self.hr_now(until - self.t)
        step = 0.01
        while self._gen_t < until:
            dt = until - self._gen_t
            if dt > step:
                dt = step
            before = self._beat_phase
            self._beat_phase += (hr + self._rate_noise) / 60.0 * dt
            self._gen_t += dt
            if self._beat_phase >= self._next_fire:
                frac = (self._beat_phase - self._next_fire) / (self._beat_phase - before)
                tb = self._gen_t - frac * dt
                if self.jitter:
                    tb += self.jitter * self.rng.gauss()
                if self.hr_noise:
                    self._rate_noise = self.hr_noise * self.rng.gauss()
                amp = 1.0
                if self._ectopic_next:
                    amp = 0.6
                    self._ectopic_next = False
                    self._beat_phase -= self._next_fire
                    self._next_fire = 1.35  # compensatory pause: two intervals sum to two beats
                else:
                    self._beat_phase -= self._next_fire
                    self._next_fire = 1.0
                    if self.rng.uniform() < self.ectopic_rate:
                        self._next_fire = 0.65
                        self._ectopic_next = True
                amp *= 1.0 + 0.05 * self.rng.gauss()
                self._add_beat(tb, amp, hr + self._rate_noise)

    def _add_beat(self, tb, amp, hr):
        """A heart beat at tb (R wave) and its pulse peak at the finger transit_s later (shorter at
        a higher heart rate, as the pre-ejection period and pulse wave velocity go: transit_slope_s
        seconds per bpm)."""
        if self.transit_s:
            self.r_beats.append(tb)
            ptt = self.transit_s - self.transit_slope * (hr - self.hr_bpm)
            tb += ptt if ptt > 0.05 else 0.05
        self.beats.append(tb)
        self.beat_count += 1
        if self.keep_beats is not None and len(self.beats) > self.keep_beats:
            self.beats.pop(0)
            if self.transit_s:
                self.r_beats.pop(0)
        self._recent.append((tb, amp))

    def advance(self, t_s, pacer_phase=None, split=None):
        """Move the person to time t_s (seconds, increasing): breathing, slow processes and the
        beats up to LOOKAHEAD ahead (in self.beats); no PPG value. -> seconds since the last call."""
        dt = 0.0 if self.t is None else t_s - self.t
        if dt < 0:
            raise ValueError("sample times must increase")
        self.t = t_s
        if split is not None and 0.05 < split < 0.95:
            self._split = split
        self._breathe(t_s, dt, pacer_phase)
        self._slow(t_s)
        if self._gen_t == 0.0:
            self._gen_t = t_s
        self._gen_beats(t_s + self.LOOKAHEAD)
        while self._recent and self._recent[0][0] < t_s - 1.2:
            self._recent.pop(0)
        return dt

    def sample(self, t_s, pacer_phase=None, split=None):
        """PPG value 0..1 at time t_s (seconds, increasing); pacer_phase in [0, 1) or None; split
        the pacer's inhale share (0.4 if not known)."""
        dt = self.advance(t_s, pacer_phase, split)
        v = 0.0
        for tb, amp in self._recent:
            x = (t_s - tb) / self.SYS_SIGMA
            if -4.0 < x < 4.0:
                v += amp * math.exp(-0.5 * x * x)
            y = (t_s - tb - self.DIC_DELAY) / self.DIC_SIGMA
            if -4.0 < y < 4.0:
                v += amp * self.DIC_AMP * math.exp(-0.5 * y * y)
        v += self.wander * math.sin(0.3 * t_s + self._wander_ph)
        v += 0.3 * self.wander * math.sin(TWO_PI * self.breath_phase)
        v += self.noise * self.rng.gauss()
        if dt > 0 and self.rng.uniform() < self.artefact_rate * dt:
            self._art_until = t_s + 0.5 + 1.5 * self.rng.uniform()
        if t_s < self._art_until:
            self._art_level += 0.08 * self.rng.gauss()
            v += self._art_level
        else:
            self._art_level *= 0.9
        out = 0.35 + 0.3 * v
        return 0.0 if out < 0.0 else (1.0 if out > 1.0 else out)


def spec_names():
    """The person's settings as the virtual board takes them (VAGAL_VIRTUAL_PERSON "key=value,...";
    the population runner builds the same string): short key -> constructor argument. A function,
    not a module dict, so the board's heap holds it only while a person is made. The key "model"
    picks the class: 0 the band-pass person (Person), 1 the baroreflex loop
    (baroreflex.BaroreflexPerson, a module of its own: loaded only for it)."""
    return {"seed": "seed", "hr": "hr_bpm", "resonance": "resonance_hz", "adherence": "adherence",
            "rsa": "rsa_bpm", "noise": "noise", "artefacts": "artefact_rate",
            "ectopics": "ectopic_rate", "breath": "spont_breath_hz", "q": "q",
            "hrnoise": "hr_noise_bpm", "jitter": "jitter_s", "pwander": "phase_wander",
            "drift": "drift_bpm", "phase": "phase_deg", "transit": "transit_s", "blag": "breath_lag_s",
            "floor": "floor_bpm", "floordeg": "floor_deg"}


def spec_args(kv):
    """{short key: number} -> (class, constructor arguments); ValueError naming an unknown key."""
    model = kv.get("model", 0)
    if model == 1:
        from baroreflex import BaroreflexPerson as cls
    elif model == 0:
        cls = Person
    else:
        raise ValueError("VAGAL_VIRTUAL_PERSON: model %r is not 0 (band-pass) or 1 (baroreflex)" % (model,))
    extra = getattr(cls, "SPEC_EXTRA", {})
    names = spec_names()
    args = {}
    for k, v in kv.items():
        if k == "model":
            continue
        name = names.get(k) or extra.get(k)
        if name is None:
            raise ValueError("VAGAL_VIRTUAL_PERSON: unknown setting %r" % k)
        args[name] = int(v) if k == "seed" else v
    return cls, args


def from_spec(kv, **more):
    """The person a {short key: number} spec describes (more: extra constructor arguments)."""
    cls, args = spec_args(kv)
    args.update(more)
    return cls(**args)

