"""Ground truth for a simulated person: the resonance rate from a noise-free sweep of fixed paced rates.

Why not the model's parameter: what the device is asked to find is the breathing rate of the largest
heart-rate swing (Lehrer and Vaschillo), and once a person has a phase offset, a non-resonant RSA
floor or (the baroreflex family) no resonance parameter at all, the parameter is not that rate. So
the person is built without noise, drift, lapses or phase wander and paced at each rate of a grid
(an ideal pacer, inhale share 0.4, the rate changed without a jump of phase as the device's pacer
does); after settling, the heart's beat-to-beat rate (60 / R-R interval, at the interval's middle)
over whole breaths is fitted by a periodic curve of the pacer's cycle (3 harmonics and a linear
trend); its peak-to-trough is the swing at that rate, and the fundamental's phase is the HR phase:
degrees of the HR peak after the pacer's end of inhale (negative: before). The sweep is coarse
(3.5..8.0 breaths/min, 0.25 steps), then fine (0.05 steps, +-0.3 around the coarse maximum); the
resonance is the fine argmax with a parabolic refinement. Results are cached on disk by the
person's model parameters (build/population_truth.json), as a sweep costs about a second.
"""

import hashlib
import json
import math
import os
from pathlib import Path

SWEEP_VERSION = 2
SPLIT = 0.4  # the pacer's default inhale share
COARSE = [3.5 + 0.25 * i for i in range(19)]  # 3.5 .. 8.0
FINE_HALF = 0.3
FINE_STEP = 0.05
SETTLE_FIRST_S = 90.0
SETTLE_S = 30.0
BREATHS = 3
STEP_S = 0.05
CACHE = Path(__file__).resolve().parents[2] / "build" / "population_truth.json"

_cache = None


def noise_free(kwargs):
    """The person's constructor arguments without any noise, drift, lapse or artefact."""
    quiet = dict(kwargs)
    quiet.update(adherence=1.0, noise=0.0, wander=0.0, artefact_rate=0.0, ectopic_rate=0.0,
                 hr_noise_bpm=0.0, jitter_s=0.0, phase_wander=0.0, drift_bpm=0.0, keep_beats=None)
    for k in ("bp_noise_mmhg",):
        if k in quiet:
            quiet[k] = 0.0
    return quiet


class _Sweeper:
    """One noise-free person paced at one rate after another (the phase continuous across)."""

    def __init__(self, make):
        self.person = make()
        self.t = 0.0
        self.phase = 0.0

    def hold(self, rate_bpm, settle_s):
        """Pace at rate_bpm: settle, then BREATHS whole breaths. -> (swing bpm, HR phase deg)."""
        import numpy as np

        hz = rate_bpm / 60.0
        per = self.person
        end_settle = self.t + settle_s
        # finish on a breath start after settling, then measure whole breaths
        to_start = (1.0 - self.phase) % 1.0
        t_a = end_settle + ((to_start - (end_settle - self.t) * hz) % 1.0) / hz
        t_b = t_a + BREATHS / hz
        n0 = len(per.r_beats)
        while self.t < t_b + 1.5:  # the beats of the window come LOOKAHEAD ahead; some margin
            self.t += STEP_S
            self.phase = (self.phase + STEP_S * hz) % 1.0
            per.advance(self.t, self.phase, SPLIT)
        r = np.array(per.r_beats[max(0, n0 - 1):])
        mid = 0.5 * (r[1:] + r[:-1])
        hr = 60.0 / np.diff(r)
        keep = (mid >= t_a) & (mid < t_b)
        mid, hr = mid[keep], hr[keep]
        # the pacer's cycle at time t: phase now minus the time since, at hz
        cyc = (self.phase - (self.t - mid) * hz) % 1.0
        th = 2 * math.pi * (cyc - SPLIT)
        cols = [np.ones_like(th), (mid - mid.mean()) / 60.0]
        for h in (1, 2, 3):
            cols += [np.cos(h * th), np.sin(h * th)]
        coef = np.linalg.lstsq(np.stack(cols, axis=1), hr, rcond=None)[0]
        self.residual = float(np.sqrt(np.mean((hr - np.stack(cols, axis=1) @ coef) ** 2)))
        grid = np.linspace(0, 2 * math.pi, 721)
        wave = sum(coef[2 + 2 * i] * np.cos((i + 1) * grid) + coef[3 + 2 * i] * np.sin((i + 1) * grid)
                   for i in range(3))
        return float(wave.max() - wave.min()), math.degrees(math.atan2(coef[3], coef[2]))


def sweep(make):
    """Noise-free sweep of the person make() builds. -> dict: resonance_bpm (parabolic argmax),
    swing_bpm and phase_deg at it, the curve [(rate, swing, phase)], sharpness (the swing's drop
    0.5 breaths/min either side of the peak, as a share of the peak: how clear the peak is) and
    residual_bpm (the largest rms of HR about the fitted periodic curve: above a fraction of a bpm,
    the person's heart rate is not locked to the breathing, e.g. a loop that rings by itself)."""
    s = _Sweeper(make)
    curve = {}
    first = True
    residual = 0.0
    for r in COARSE:
        curve[round(r, 3)] = s.hold(r, SETTLE_FIRST_S if first else SETTLE_S)
        residual = max(residual, s.residual)
        first = False
    top = max(curve, key=lambda r: curve[r][0])
    n = int(round(FINE_HALF / FINE_STEP))
    fine = [round(top + FINE_STEP * i, 3) for i in range(n, -n - 1, -1)]  # from above: as the coarse left off
    fine = [r for r in fine if COARSE[0] <= r <= COARSE[-1]]
    s = _Sweeper(make)
    first = True
    for r in fine:
        curve[r] = s.hold(r, SETTLE_FIRST_S if first else SETTLE_S)
        residual = max(residual, s.residual)
        first = False
    fine.sort()
    sw = [curve[r][0] for r in fine]
    i = max(range(len(fine)), key=lambda k: sw[k])
    best = fine[i]
    if 0 < i < len(fine) - 1:
        den = sw[i - 1] - 2 * sw[i] + sw[i + 1]
        if den < 0:
            best = fine[i] + FINE_STEP * 0.5 * (sw[i - 1] - sw[i + 1]) / den
    rates = sorted(curve)
    # swing and phase at the refined peak: interpolated on the fine grid
    j = min(range(len(fine) - 1), key=lambda k: abs(fine[k] + FINE_STEP / 2 - best)) if len(fine) > 1 else 0
    w = (best - fine[j]) / FINE_STEP if len(fine) > 1 else 0.0
    w = min(1.0, max(0.0, w))
    k = min(j + 1, len(fine) - 1)
    peak_swing = sw[i]
    phase = curve[fine[j]][1] * (1 - w) + curve[fine[k]][1] * w

    def swing_at(x):
        lo = max([r for r in rates if r <= x], default=rates[0])
        hi = min([r for r in rates if r >= x], default=rates[-1])
        if hi == lo:
            return curve[lo][0]
        return curve[lo][0] + (curve[hi][0] - curve[lo][0]) * (x - lo) / (hi - lo)

    drop = 1.0 - 0.5 * (swing_at(best - 0.5) + swing_at(best + 0.5)) / peak_swing if peak_swing > 0 else 0.0
    return {"version": SWEEP_VERSION, "resonance_bpm": round(best, 4), "swing_bpm": round(peak_swing, 3),
            "phase_deg": round(phase, 1), "sharpness": round(drop, 4), "residual_bpm": round(residual, 3),
            "curve": [(r, round(curve[r][0], 4), round(curve[r][1], 1)) for r in rates]}


def person_module():
    """host/virtual_board/person.py (the board's simulated person), imported from its directory."""
    import sys

    here = str(Path(__file__).resolve().parents[1] / "virtual_board")
    if here not in sys.path:
        sys.path.append(here)
    import person

    return person


def person_class(model):
    """The simulated person's class for a model family's name."""
    mod = person_module()
    if model == "bandpass":
        return mod.Person
    if model == "baroreflex":
        import baroreflex

        return baroreflex.BaroreflexPerson
    raise ValueError("no person model %r" % (model,))


def _key(model, kwargs):
    text = json.dumps([SWEEP_VERSION, model, sorted(noise_free(kwargs).items())], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:20]


def _load():
    global _cache
    if _cache is None:
        try:
            with open(CACHE) as f:
                _cache = json.load(f)
        except (OSError, ValueError):
            _cache = {}
    return _cache


def _save(key, value):
    """Add one entry to the cache file (re-read first: parallel workers add their own)."""
    global _cache
    try:
        with open(CACHE) as f:
            disk = json.load(f)
    except (OSError, ValueError):
        disk = {}
    disk.update(_load())
    disk[key] = value
    _cache = disk
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    tmp = CACHE.with_name("%s.%d.tmp" % (CACHE.name, os.getpid()))
    with open(tmp, "w") as f:
        json.dump(disk, f)
    os.replace(tmp, CACHE)


def resonance_truth(model, kwargs, cache=True):
    """sweep() of the noise-free person: model "bandpass" (person.Person) or "baroreflex"
    (baroreflex.BaroreflexPerson), kwargs its constructor arguments. Cached by those."""
    key = _key(model, kwargs)
    if cache:
        hit = _load().get(key)
        if hit is not None:
            return hit
    cls = person_class(model)
    quiet = noise_free(kwargs)
    value = sweep(lambda: cls(**quiet))
    if cache:
        _save(key, value)
    return value
