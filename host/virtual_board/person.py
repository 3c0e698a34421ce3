"""A simulated person for the virtual board: PPG waveform, breathing, RSA and a resonance frequency.

Portable (CPython and the MicroPython unix port), deterministic for a seed (own xorshift PRNG, so
both interpreters give the same person). Call sample(t_s, pacer_phase) for increasing t_s.

Breathing: a phase integrator. With the pacer visible (pacer_phase in [0, 1), 0 = start of inhale)
the breathing rate moves toward the pacer's by `adherence` and the phase is pulled onto the pacer's
(at adherence 1 it follows it); otherwise the person breathes at their spontaneous rate.
Heart rate: hr_bpm + (rsa_bpm / 2) * G(f_breath) * sin(2 pi phase), where G is a second-order
resonance curve peaking (G = 1) at resonance_hz - breathing there gives the biggest swing.
Beats: an integrate-and-fire on the instantaneous heart rate; ectopic beats come early (65 %) with a
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


def _wrap_half(x):
    """x wrapped into [-0.5, 0.5)."""
    return x - math.floor(x + 0.5)


class Person:
    SYS_SIGMA = 0.07
    DIC_DELAY = 0.26
    DIC_SIGMA = 0.09
    DIC_AMP = 0.35
    LOOKAHEAD = 0.4  # beats are scheduled this far ahead so the Gaussian's rise is drawn

    def __init__(self, seed=1, hr_bpm=65.0, resonance_hz=0.09, rsa_bpm=14.0, q=2.0,
                 spont_breath_hz=0.25, adherence=0.9, noise=0.01, wander=0.04,
                 artefact_rate=0.3, ectopic_rate=0.01, keep_beats=None):
        if not (0.075 <= resonance_hz <= 0.11):
            raise ValueError("resonance_hz %r outside 0.075..0.11 Hz" % resonance_hz)
        if not (0.0 <= adherence <= 1.0):
            raise ValueError("adherence %r outside 0..1" % adherence)
        if not (30 <= hr_bpm <= 200):
            raise ValueError("hr_bpm %r outside 30..200" % hr_bpm)
        self.rng = Rng(seed)
        self.hr_bpm = hr_bpm
        self.resonance_hz = resonance_hz
        self.rsa_bpm = rsa_bpm
        self.q = q
        self.spont_hz = spont_breath_hz
        self.adherence = adherence
        self.noise = noise
        self.wander = wander
        self.artefact_rate = artefact_rate / 60.0  # per second
        self.ectopic_rate = ectopic_rate
        self.keep_beats = keep_beats
        self.beats = []  # true pulse-peak times (s); the last keep_beats if that is set
        self.beat_count = 0
        self.t = None
        self.breath_phase = 0.0  # cycles
        self.breath_hz = spont_breath_hz
        self._pacer_last = None
        self._pacer_hz = None
        self._gen_t = 0.0  # beat generator time (runs LOOKAHEAD ahead)
        self._beat_phase = 0.5
        self._next_fire = 1.0
        self._ectopic_next = False
        self._recent = []  # (time, amplitude) of beats near now
        self._art_until = -1.0
        self._art_level = 0.0
        self._wander_ph = self.rng.uniform() * TWO_PI

    def hr_now(self):
        """Instantaneous heart rate (bpm) from the breathing state."""
        g = resonance_gain(self.breath_hz, self.resonance_hz, self.q)
        return self.hr_bpm + 0.5 * self.rsa_bpm * g * math.sin(TWO_PI * self.breath_phase)

    def _breathe(self, dt, pacer_phase):
        if pacer_phase is not None and self._pacer_last is not None and dt > 0:
            d = pacer_phase - self._pacer_last
            if d < -0.5:
                d += 1.0
            if 0 <= d < 0.5:
                inst = d / dt
                if self._pacer_hz is None:
                    self._pacer_hz = inst
                else:
                    self._pacer_hz += (inst - self._pacer_hz) * min(1.0, dt / 2.0)
        if pacer_phase is None:
            self._pacer_hz = None
        self._pacer_last = pacer_phase
        a = self.adherence
        if pacer_phase is not None and self._pacer_hz is not None:
            f = a * self._pacer_hz + (1.0 - a) * self.spont_hz
            pull = 2.0 * a * _wrap_half(pacer_phase - self.breath_phase)  # 1/s toward the pacer
        else:
            f = self.spont_hz
            pull = 0.0
        self.breath_hz += (f - self.breath_hz) * min(1.0, dt / 5.0)
        ph = self.breath_phase + (self.breath_hz + pull) * dt
        if a >= 1.0 and pacer_phase is not None and self._pacer_hz is not None:
            ph = self.breath_phase + _wrap_half(pacer_phase - self.breath_phase)
        self.breath_phase = ph - math.floor(ph)

    def _gen_beats(self, until):
        hz = self.hr_now() / 60.0
        step = 0.01
        while self._gen_t < until:
            dt = until - self._gen_t
            if dt > step:
                dt = step
            before = self._beat_phase
            self._beat_phase += hz * dt
            self._gen_t += dt
            if self._beat_phase >= self._next_fire:
                frac = (self._beat_phase - self._next_fire) / (self._beat_phase - before)
                tb = self._gen_t - frac * dt
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
                self.beats.append(tb)
                self.beat_count += 1
                if self.keep_beats is not None and len(self.beats) > self.keep_beats:
                    self.beats.pop(0)
                self._recent.append((tb, amp))

    def sample(self, t_s, pacer_phase=None):
        """PPG value 0..1 at time t_s (seconds, increasing); pacer_phase in [0, 1) or None."""
        dt = 0.0 if self.t is None else t_s - self.t
        if dt < 0:
            raise ValueError("sample times must increase")
        self.t = t_s
        self._breathe(dt, pacer_phase)
        if self._gen_t == 0.0:
            self._gen_t = t_s
        self._gen_beats(t_s + self.LOOKAHEAD)
        while self._recent and self._recent[0][0] < t_s - 1.2:
            self._recent.pop(0)
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
