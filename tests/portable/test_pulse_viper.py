"""The viper BeatDetector (pulse_viper.py, the device's per-sample path) gives byte-identical beats,
qualities and state to the pure-Python reference on synthetic sweeps: every sample rate, heart
rates from 40 to 180 bpm, weak and strong pulses, noise, ectopic beats, atrial fibrillation, bad
stretches of every kind, coarse ADCs, wild values and the tick wrap. Where the runtime has no viper
(CPython, WebAssembly) BeatDetector is the reference itself and these tests skip."""

import math

import portable
import pulse_twin
import synth_ppg
from vagal.ticks import TICKS_MAX


def _need_viper():
    if not pulse_twin.available():
        raise portable.Skip("no viper on this runtime: BeatDetector is the reference here")


def _check(x, fs, min_beats, **kw):
    beats, handed = pulse_twin.compare(x, fs, **kw)
    assert beats >= min_beats, (beats, min_beats)
    return beats, handed


def test_identical_at_every_sample_rate_and_heart_rate():
    _need_viper()
    for fs in (50, 100, 125, 250, 500, 1000):
        for hr in (40, 70, 110, 180):
            x, truth = synth_ppg.ppg(fs, 10, hr_bpm=hr, seed=fs + hr)
            _check(x, fs, len(truth) // 2)


def test_the_fast_path_does_the_work():
    """Nearly every sample stays in viper: the reference runs confirmed peaks and bad samples."""
    _need_viper()
    x, truth = synth_ppg.ppg(250, 60, seed=3)
    beats, handed = _check(x, 250, 60)
    assert handed * 100 < len(x), (handed, len(x))


def test_identical_on_weak_strong_noisy_and_irregular_pulses():
    _need_viper()
    fs = 125
    for amp, noise, wander in ((300, 20, 100), (2000, 300, 3000), (30000, 60, 1500), (8000, 1500, 6000)):
        x, _ = synth_ppg.ppg(fs, 30, amp=amp, noise=noise, wander=wander, seed=amp)
        _check(x, fs, 0)
    for every in (3, 5, 9):
        x, truth = synth_ppg.ppg(fs, 40, ectopic_every=every, amp_mod=0.3, seed=every)
        _check(x, fs, len(truth) // 2)
    for dic, dic_s in ((0.6, 0.3), (0.9, 0.25), (0.35, 0.45)):
        x, truth = synth_ppg.ppg(fs, 30, dicrotic=dic, dicrotic_s=dic_s, seed=7)
        _check(x, fs, len(truth) // 3)
    x, truth = synth_ppg.af_ppg(fs, 60, sinus_from_s=40, seed=11)
    _check(x, fs, len(truth) // 2)


def test_identical_through_bad_stretches():
    _need_viper()
    fs = 100
    rng = synth_ppg.Rng(5)
    for kind in ("flat", "zero", "rail", "clipped", "spikes", "short_zero", "motion", "swing"):
        x, _ = synth_ppg.ppg(fs, 40, hr_bpm=72, seed=17)
        for i in range(10 * fs, 18 * fs):
            v = x[i]
            if kind == "flat":
                v = 30000 + int(20 * rng.gauss())
            elif kind == "zero":
                v = 0
            elif kind == "rail":
                v = 65535
            elif kind == "clipped":
                v = 32768 + (v - 32768) * 4
                v = 44000 if v > 44000 else v
            elif kind == "spikes":
                v = (65535 if i % 2 else 0) if i % 97 == 0 else v
            elif kind == "short_zero":
                v = 0 if i < 10 * fs + fs // 10 else v
            elif kind == "motion":
                v += int(30000 * (rng.uniform() - 0.5)) + (12000 if (i // 37) % 2 else -12000)
            elif kind == "swing":
                v += int(9600 * math.sin(2 * math.pi * 0.25 * i / fs))
            x[i] = 0 if v < 0 else 65535 if v > 65535 else v
        _check(x, fs, 10)


def test_identical_on_coarse_adcs_wild_values_and_across_the_tick_wrap():
    _need_viper()
    fs = 250
    x, truth = synth_ppg.ppg(fs, 30, seed=29)
    for bits, res in ((10, 10), (12, 12), (12, 8), (14, 14)):
        _check([v >> (16 - bits) for v in x], fs, len(truth) // 2, adc_bits=bits, resolution=res)
    wild = list(x)
    for i in range(5 * fs, 7 * fs):
        wild[i] = 70000 + i if i % 3 else -1000 - i
    _check(wild, fs, 10)
    _check(x, fs, len(truth) // 2, start_tick=TICKS_MAX - 5000000)
    _check([30000] * (20 * fs), fs, 0)                   # a line held flat: clipping checks every sample


def test_identical_after_reset():
    _need_viper()
    from vagal import pulse
    fs = 125
    x, _ = synth_ppg.ppg(fs, 10, seed=41)
    det = pulse.BeatDetector(fs)
    for i in range(len(x)):
        det.push(x[i], i * 8000)
    det.reset()
    ref = pulse.ReferenceBeatDetector(fs)
    from vagal.pulse_viper import _VARS
    for i in range(len(_VARS)):
        assert det._st[i] == getattr(ref, _VARS[i]), _VARS[i]
