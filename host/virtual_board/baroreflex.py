"""The baroreflex person for the virtual board and the populations: a beat-to-beat loop (person.py's
Person for breathing, beats, pulse shapes, noise and artefacts; its own heart rate). Portable, like
person.py; a module of its own so the band-pass person's board does not load it."""

import math

from person import Person, _check_range


def lung_volume(cycle, split):
    """Lung volume 0..1 over a breath (cycle 0..1 from the start of inhale): a raised cosine up to
    its peak at the end of inhale (split), down over the exhale."""
    if cycle < split:
        return 0.5 - 0.5 * math.cos(math.pi * cycle / split)
    return 0.5 + 0.5 * math.cos(math.pi * (cycle - split) / (1.0 - split))


class BaroreflexPerson(Person):
    """A beat-to-beat baroreflex loop (after DeBoer, Karemaker and Strackee 1987): the resonance is
    not a parameter, it emerges from the loop's delay and gains.

    Per beat n (at t_n, interval I_n to the next; pressures in mmHg, times in s):
      T_n = T0 (1 - vascular_gain y_n)             arterial time constant (peripheral resistance)
      D_n = S_{n-1} exp(-I_{n-1} / T_n)            diastolic: the Windkessel's decay over the interval
      S_n = D_n + PP0 + starling (I_{n-1} - I0) - resp_mmhg V(t_n - mech_delay_s) + noise
      I_n = 60 / (hr_bpm + drift) + vagal (S_n - S0) - resp_ms/1000 V(t_n) + noise
    y_n is the sympathetic drive to the vessels: S - S0 as it was delay_s earlier, through a first-
    order effector lag (effector_s). V is the lung volume (0..1, peak at the person's end of
    inhale): breathing lowers systolic pressure (intrathoracic pressure on the left heart, after
    mech_delay_s) and shortens the interval directly (central respiratory gating of the vagus, the
    non-resonant RSA). The pressure change the vessels answer after delay_s + effector_s is what
    makes the loop ring near 0.1 Hz (a longer delay: a slower resonance); the vagal limb turns the
    pressure swing into the heart-rate swing within the beat. loop_gain is the vascular limb's
    static loop gain (below 1 at the ringing frequency: stable, sharper as it nears it).
    Beats, their pulse shapes at the finger (transit_s), breathing, lapses, noise and artefacts are
    Person's; hr_noise_bpm adds to each interval, bp_noise_mmhg to each systolic pressure.
    """

    S0 = 120.0
    PP0 = 40.0
    STARLING = 10.0  # mmHg of pulse pressure per s of the preceding interval
    HISTORY_S = 12.0
    SPEC_EXTRA = {"delay": "delay_s", "effector": "effector_s", "loopgain": "loop_gain",
                  "vagal": "vagal_s_mmhg", "respbp": "resp_mmhg", "respms": "resp_ms",
                  "mechdelay": "mech_delay_s", "bpnoise": "bp_noise_mmhg"}

    def __init__(self, seed=1, hr_bpm=65.0, delay_s=3.0, effector_s=1.5, loop_gain=1.0,
                 vagal_s_mmhg=0.012, resp_mmhg=4.0, resp_ms=20.0, mech_delay_s=1.0,
                 bp_noise_mmhg=0.0, **kw):
        _check_range("delay_s", delay_s, 0.5, 10.0)
        _check_range("effector_s", effector_s, 0.1, 10.0)
        _check_range("loop_gain", loop_gain, 0.0, 5.0)
        _check_range("vagal_s_mmhg", vagal_s_mmhg, 0.0, 0.05)
        kw.pop("resonance_hz", None)
        kw.pop("rsa_bpm", None)
        kw.pop("q", None)
        Person.__init__(self, seed=seed, hr_bpm=hr_bpm, **kw)
        self.delay_s = delay_s
        self.effector_s = effector_s
        self.vagal = vagal_s_mmhg
        self.resp_mmhg = resp_mmhg
        self.resp_s = resp_ms / 1000.0
        self.mech_delay_s = mech_delay_s
        self.bp_noise = bp_noise_mmhg
        i0 = 60.0 / hr_bpm
        self.t0 = i0 / math.log(self.S0 / (self.S0 - self.PP0))  # the operating point: D0 = S0 - PP0
        # static loop gain: dS/dT at the operating point times T0 times the vascular gain
        a = (self.S0 - self.PP0) / self.S0
        ds_dt = self.PP0 * a * i0 / (self.t0 * self.t0) / ((1.0 - a) * (1.0 - a))
        self.vascular_gain = loop_gain / (ds_dt * self.t0)
        self._s = self.S0
        self._i = i0
        self._y = 0.0
        self._hist = []  # (t, S - S0) of the recent beats
        self._next_beat = None
        self.pressures = []  # systolic pressure of each beat (the last keep_beats if set)

    def _volume_at(self, t_s):
        """Lung volume at t_s (near now: the breathing extrapolated at its current rate)."""
        c = self.breath_phase + (t_s - self.t) * self.breath_hz
        return lung_volume(c - math.floor(c), self._split)

    def _delayed(self, t_s):
        """S - S0 at t_s (linear between the beats kept; the oldest kept before that)."""
        h = self._hist
        if not h:
            return 0.0
        if t_s <= h[0][0]:
            return h[0][1]
        for k in range(len(h) - 1, 0, -1):
            ta, sa = h[k - 1]
            if ta <= t_s:
                tb, sb = h[k]
                if t_s >= tb:
                    return sb
                return sa + (sb - sa) * (t_s - ta) / (tb - ta)
        return h[-1][1]

    def hr_now(self, ahead_s=0.0):
        return 60.0 / self._i

    def _gen_beats(self, until):
        rng = self.rng
        if self._next_beat is None:
            self._next_beat = self.t + 0.5 * self._i
        while self._next_beat < until:
            tb = self._next_beat
            i_prev = self._i
            # the sympathetic drive: the pressure delay_s ago, through the effector's lag
            self._y += (self._delayed(tb - self.delay_s) - self._y) * (1.0 - math.exp(-i_prev / self.effector_s))
            tc = self.t0 * (1.0 - self.vascular_gain * self._y)
            if tc < 0.2 * self.t0:
                tc = 0.2 * self.t0
            d = self._s * math.exp(-i_prev / tc)
            s = d + self.PP0 + self.STARLING * (i_prev - 60.0 / self.hr_bpm)
            s -= self.resp_mmhg * self._volume_at(tb - self.mech_delay_s)
            if self.bp_noise:
                s += self.bp_noise * rng.gauss()
            self._s = s
            self._hist.append((tb, s - self.S0))
            while self._hist[0][0] < tb - self.HISTORY_S:
                self._hist.pop(0)
            hr = self.hr_bpm + self._drift
            i = 60.0 / (hr if hr > 30.0 else 30.0) + self.vagal * (s - self.S0)
            i -= self.resp_s * self._volume_at(tb)
            if self.hr_noise:
                i += self.hr_noise * i * i / 60.0 * rng.gauss()  # hr_noise bpm as an interval
            i = 0.3 if i < 0.3 else (2.0 if i > 2.0 else i)
            amp = 1.0
            if self._ectopic_next:  # the premature beat, then the compensatory pause
                amp = 0.6
                self._ectopic_next = False
                i = i * 1.35
            elif self.ectopic_rate and rng.uniform() < self.ectopic_rate:
                self._ectopic_next = True
                i = i * 0.65
            self._i = i
            t_beat = tb + (self.jitter * rng.gauss() if self.jitter else 0.0)
            amp *= 1.0 + 0.05 * rng.gauss()
            self.pressures.append(s)
            if self.keep_beats is not None and len(self.pressures) > self.keep_beats:
                self.pressures.pop(0)
            self._add_beat(t_beat, amp, 60.0 / i)
            self._next_beat = tb + i
