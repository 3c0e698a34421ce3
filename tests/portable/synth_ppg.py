"""Synthetic finger PPG with known beat times, for the core's tests on every runtime.

A beat is a systolic wave (asymmetric Gaussian: fast rise, slower fall) plus a dicrotic wave after
it; heart rate varies with a breathing-like sine; optional ectopic (early, weak) beats, baseline
wander and noise from a deterministic integer PRNG (identical on CPython and MicroPython).
The true pulse-peak times are returned with the samples.
"""

import math
from array import array


class Rng:
    """xorshift-style PRNG on 30-bit ints: the same sequence on every runtime."""

    def __init__(self, seed):
        self.s = (seed * 2654435 + 12345) & 0x3FFFFFFF or 1

    def next(self):
        s = self.s
        s ^= (s << 7) & 0x3FFFFFFF
        s ^= s >> 9
        s ^= (s << 8) & 0x3FFFFFFF
        self.s = s
        return s

    def uniform(self):
        return self.next() / 1073741824.0

    def gauss(self):
        # sum of 4 uniforms, scaled to unit variance
        return (self.uniform() + self.uniform() + self.uniform() + self.uniform() - 2.0) * 1.7320508


def beat_times(duration_s, hr_bpm=70.0, rsa_bpm=4.0, breath_hz=0.1, ectopic_every=0, seed=1):
    """True pulse-peak times (s) and a parallel list of ectopic flags."""
    rng = Rng(seed)
    t = 0.35 + 0.3 * rng.uniform()
    times = []
    ectopic = []
    n = 0
    while t < duration_s:
        times.append(t)
        n += 1
        is_ect = ectopic_every and n % ectopic_every == 0
        ectopic.append(bool(is_ect))
        hr = hr_bpm + rsa_bpm * math.sin(2 * math.pi * breath_hz * t)
        ibi = 60.0 / hr * (1.0 + 0.01 * rng.gauss())
        if ectopic_every and (n + 1) % ectopic_every == 0:
            ibi *= 0.65          # the next beat comes early...
        elif is_ect:
            ibi *= 1.35          # ...and the one after it late (compensatory pause)
        t += ibi
    return times, ectopic


def ppg(fs, duration_s, hr_bpm=70.0, amp=8000, dicrotic=0.35, noise=60, wander=1500,
        ectopic_every=0, seed=1, base=32768, amp_mod=0.0, dicrotic_s=0.32):
    """Samples (ints, read_u16 scale) at fs Hz and the list of true peak times. amp_mod: depth of
    a breathing-rate (0.1 Hz) modulation of each pulse's size, as breathing gives on a finger;
    dicrotic_s: the dicrotic wave's delay after the pulse peak."""
    times, ect = beat_times(duration_s, hr_bpm, ectopic_every=ectopic_every, seed=seed)
    heights = []
    for j in range(len(times)):
        a = 0.45 if ect[j] else 1.0
        if amp_mod:
            a *= 1.0 + amp_mod * math.sin(2 * math.pi * 0.1 * times[j])
        heights.append(a)
    out = _samples(fs, duration_s, times, heights, amp, dicrotic, dicrotic_s, base, wander, noise,
                   Rng(seed + 101))
    return out, times


def af_ppg(fs, duration_s, mean_ibi_s=0.6, spread=0.35, dicrotic=0.35, sinus_from_s=None, amp=8000,
           noise=60, seed=1, base=32768, dicrotic_s=0.32):
    """An irregularly irregular rhythm, as in atrial fibrillation: each interval uniform within
    +-spread of the mean, and each pulse as tall as its filling time allows (a beat after a short
    interval is weak and early, where a dicrotic wave would be). From sinus_from_s on, a regular
    rhythm at the same mean. Samples (read_u16 scale) and the true peak times."""
    rng = Rng(seed)
    times = []
    heights = []
    t = 0.5
    prev = mean_ibi_s
    while t < duration_s:
        h = 1.0 - (mean_ibi_s - prev) / mean_ibi_s
        times.append(t)
        heights.append(0.15 if h < 0.15 else 1.0 if h > 1.0 else h)
        s = spread if sinus_from_s is None or t < sinus_from_s else 0.01
        prev = mean_ibi_s * (1.0 + s * (2.0 * rng.uniform() - 1.0))
        t += prev
    return _samples(fs, duration_s, times, heights, amp, dicrotic, dicrotic_s, base, 0, noise, rng), times


def _samples(fs, duration_s, times, heights, amp, dicrotic, dicrotic_s, base, wander, noise, rng):
    """Each beat a systolic wave (fast rise, slower fall) and a dicrotic wave, scaled by its
    height; plus a 0.1 Hz baseline wander and noise. 2 bytes a sample: fits MicroPython's small
    test heap."""
    n = int(duration_s * fs)
    out = array("H", bytes(2 * n))
    k = 0
    nb = len(times)
    for i in range(n):
        t = i / fs
        while k + 1 < nb and times[k + 1] < t - 1.0:
            k += 1
        v = 0.0
        j = k
        while j < nb and times[j] < t + 0.4:
            dt = t - times[j]
            a = heights[j]
            if dt < 0:
                v += a * math.exp(-(dt * dt) / (2 * 0.06 * 0.06))
            else:
                v += a * math.exp(-(dt * dt) / (2 * 0.12 * 0.12))
            dd = dt - dicrotic_s
            v += a * dicrotic * math.exp(-(dd * dd) / (2 * 0.06 * 0.06))
            j += 1
        x = base + amp * v
        if wander:
            x += wander * math.sin(2 * math.pi * 0.1 * t + 0.5)
        x = int(x + noise * rng.gauss())
        out[i] = 0 if x < 0 else 65535 if x > 65535 else x
    return out
