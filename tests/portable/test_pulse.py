"""The beat detector on synthetic signals with known beats: accuracy, latency, quality states,
tick wrap-around and an allocation-free per-sample path (checked on the MicroPython runtimes)."""

import math
from array import array

from vagal.pulse import BeatDetector, QUALITY_NAMES, OK, LEARNING, NO_CONTACT, DROPOUT, SATURATED
from vagal.ticks import TickClock, ticks_diff, TICKS_MAX
import portable
import synth_ppg


def run(samples, fs, start_tick=0, det=None):
    """Feed samples; returns (beats as (t_s, ibi_us, conf), latencies_s, quality per sample)."""
    det = det or BeatDetector(fs)
    clock = TickClock(fs, 1, start_tick)
    t0 = clock.now
    beats = []
    lat = []
    qual = bytearray(len(samples))
    for i in range(len(samples)):
        t = clock.now
        if det.push(samples[i], t):
            tb = ticks_diff(det.beat_t_us, t0) / 1e6
            beats.append((tb, det.beat_ibi_us, det.beat_conf))
            lat.append(ticks_diff(t, det.beat_t_us) / 1e6)
        qual[i] = det.quality
        clock.tick()
    return beats, lat, qual


def match(found, truth, tol=0.05):
    """(hits, misses, extras) of found times against true times within tol seconds."""
    hits = 0
    used = [False] * len(found)
    for t in truth:
        for j in range(len(found)):
            if not used[j] and abs(found[j] - t) <= tol:
                used[j] = True
                hits += 1
                break
    return hits, len(truth) - hits, used.count(False)


def test_finds_every_beat_on_a_clean_signal():
    for fs in (100, 250):
        x, truth = synth_ppg.ppg(fs, 40, hr_bpm=72, seed=fs)
        beats, lat, _ = run(x, fs)
        hits, miss, extra = match([b[0] for b in beats], truth, 0.03)
        assert miss == 0 and extra == 0, (fs, hits, miss, extra)


def test_rates_from_50_to_1000_hz():
    for fs in (50, 125, 500, 1000):
        x, truth = synth_ppg.ppg(fs, 12, hr_bpm=65, seed=3)
        beats, _, _ = run(x, fs)
        hits, miss, extra = match([b[0] for b in beats], truth, 0.04)
        assert miss == 0 and extra == 0, (fs, miss, extra)


def test_peak_time_is_sub_sample_precise():
    fs = 100
    x, truth = synth_ppg.ppg(fs, 30, hr_bpm=60, noise=0, wander=0, dicrotic=0.0, seed=5)
    beats, _, _ = run(x, fs)
    errs = []
    for t, _, _ in beats:
        best = min(truth, key=lambda u: abs(u - t))
        errs.append(abs(best - t))
    # the time is the vertex of the low-passed pulse: on this asymmetric wave (fast rise, slow
    # fall) it sits a fixed ~18 ms after the raw maximum, the same for every beat, so intervals
    # are exact; the spread between beats is a fraction of the 10 ms sample period
    assert max(errs) < 0.025, max(errs)
    spread = max(errs) - min(errs)
    assert spread < 0.004, spread


def test_intervals_match_the_true_intervals():
    fs = 250
    x, truth = synth_ppg.ppg(fs, 40, hr_bpm=75, noise=30, seed=7)
    beats, _, _ = run(x, fs)
    errs = []
    for k in range(1, len(beats)):
        t, ibi, _ = beats[k]
        if ibi:
            j = min(range(len(truth)), key=lambda i: abs(truth[i] - t))
            if j:
                errs.append(abs(ibi / 1e6 - (truth[j] - truth[j - 1])))
    assert len(errs) > 40
    assert sum(errs) / len(errs) < 0.004, sum(errs) / len(errs)


def test_dicrotic_wave_is_not_a_beat():
    fs = 100
    x, truth = synth_ppg.ppg(fs, 40, hr_bpm=58, dicrotic=0.6, seed=9)
    beats, _, _ = run(x, fs)
    hits, miss, extra = match([b[0] for b in beats], truth, 0.05)
    assert extra == 0 and miss <= 1, (hits, miss, extra)


def test_the_rest_of_a_dicrotic_upstroke_is_not_a_pulse():
    """A tall dicrotic wave late in a slow pulse (PulseSensor captures show it up to 440 ms after
    the peak): set aside, the rest of its upstroke started a new candidate at once, taken as a
    beat, and with the mean interval halved every wave after it was a beat too."""
    fs = 100
    for hr, dic, delay in ((55, 0.8, 0.45), (50, 0.7, 0.44)):
        x, truth = synth_ppg.ppg(fs, 40, hr_bpm=hr, dicrotic=dic, dicrotic_s=delay, seed=6)
        beats, _, _ = run(x, fs)
        hits, miss, extra = match([b[0] for b in beats], truth, 0.05)
        assert miss == 0 and extra == 0, (hr, hits, miss, extra)


def test_weak_early_beats_of_an_irregular_rhythm_are_found():
    """Atrial fibrillation: a beat after a short interval is weak and early, where a dicrotic
    wave would be. When such upstrokes come at a different delay each time, or a beat's worth
    of time goes missing around one set aside, they are beats (old: 43 and 8 of 181 lost)."""
    fs = 125
    for dicrotic, seed in ((0.0, 4), (0.5, 8)):
        x, truth = synth_ppg.af_ppg(fs, 90, 0.5, 0.35, dicrotic, seed=seed)
        beats, lat, _ = run(x, fs)
        hits, miss, extra = match([b[0] for b in beats if b[0] > 2.45], [t for t in truth if t > 2.5], 0.06)
        assert miss <= 4 and extra == 0, (dicrotic, hits, miss, extra)
        assert max(lat) <= 0.5


def test_dicrotic_waves_after_an_irregular_rhythm_are_set_aside_again():
    """A minute of atrial fibrillation teaches the detector that weak early upstrokes are beats;
    then a regular rhythm with a tall, late dicrotic wave: the wave repeats at the same delay
    after every beat, so after a few it is set aside again."""
    fs = 125
    a, ta = synth_ppg.af_ppg(fs, 60, 0.5, 0.35, 0.0, seed=1)
    b, tb = synth_ppg.ppg(fs, 60, hr_bpm=58, dicrotic=0.6, dicrotic_s=0.42, wander=0, seed=1)
    x = array("H", bytes(a) + bytes(b))
    truth = list(ta) + [t + 60 for t in tb]
    beats, _, _ = run(x, fs)
    found = [t for t, _, _ in beats]
    hits, miss, extra = match([t for t in found if 2.45 < t < 60], [t for t in truth if 2.5 < t < 60], 0.06)
    assert miss <= 6 and extra == 0, ("fibrillation", hits, miss, extra)
    hits, miss, extra = match([t for t in found if 60.5 < t < 75], [t for t in truth if 60.55 < t < 74.95], 0.06)
    assert miss == 0 and extra <= 4, ("first 15 s of the regular rhythm", hits, miss, extra)
    hits, miss, extra = match([t for t in found if t > 74.95], [t for t in truth if t > 75], 0.06)
    assert miss == 0 and extra == 0, ("after", hits, miss, extra)


def test_weaker_beats_of_a_fast_heart_are_not_taken_for_dicrotic_waves():
    # above 130 bpm every interval is shorter than the 450 ms in which a weak upstroke may be the
    # dicrotic wave; breathing makes every other few pulses 30 % smaller (exercise recovery): with
    # the 450 ms alone, 4 of 92 beats at 140 bpm were missed (6 of 152 in 60 s at 160 bpm)
    fs = 250
    for hr in (140, 160, 180):
        x, truth = synth_ppg.ppg(fs, 40, hr_bpm=hr, amp_mod=0.3, dicrotic=0.2, seed=hr)
        beats, _, _ = run(x, fs)
        whole = [t for t in truth if t < 39.6]      # the last one ends after the data
        hits, miss, extra = match([b[0] for b in beats], whole, 0.05)
        assert miss == 0 and extra == 0, (hr, hits, miss, extra)


def test_each_beat_is_emitted_within_half_a_second_of_its_peak():
    fs = 250
    x, truth = synth_ppg.ppg(fs, 30, hr_bpm=55, seed=11)
    beats, lat, _ = run(x, fs)
    # including the first beats, found by the rescan of the learning window at start-up
    late = [l for l in lat if l > 0.5 or l < 0]
    assert not late, late
    assert len(lat) > 20


def test_beats_after_a_bad_stretch_are_on_time_too():
    fs = 250
    x, truth = synth_ppg.ppg(fs, 40, hr_bpm=48, seed=5)
    for i in range(10 * fs, 14 * fs):
        x[i] = 0                    # a drop-out: the detector relearns after it
    beats, lat, _ = run(x, fs)
    late = [l for l in lat if l > 0.5 or l < 0]
    assert not late, late
    after = [b for b in beats if b[0] > 14.0]
    assert len(after) >= len([t for t in truth if t > 14.0]) - 3, (len(after), truth)


def test_beats_the_rescan_finds_too_late_are_not_reported():
    """After a drop-out, learning can run its whole 2 s when the first upstroke it sees began
    before it did and the later ones are weaker; the rescan then finds beats up to 2 s old. The
    resonance meter waits only for beats reported within 0.5 s of their peaks, so those are not
    reported (they still start the next interval). Found on BIDMC after its lost-PPG stretch."""
    fs = 125
    worst = 0
    for k in range(12):
        x, truth = synth_ppg.ppg(fs, 16, hr_bpm=70, seed=41)
        end = int((6.0 + 0.07 * k) * fs)
        for i in range(5 * fs, end):
            x[i] = 0
        for i in range(end + fs * 3 // 2, len(x)):
            x[i] = 32768 + (x[i] - 32768) * 6 // 10     # the pulse weakens as the finger settles
        beats, lat, _ = run(x, fs)
        worst = max(worst, max(lat))
        assert len([t for t, _, _ in beats if t > end / fs + 3.5]) >= 6, k
    assert 0 < worst <= 0.5, worst


def test_same_beats_across_the_tick_wrap():
    fs = 125
    x, truth = synth_ppg.ppg(fs, 20, seed=13)
    a, _, _ = run(x, fs, 0)
    # start 5 s before ticks_us wraps at 2**30
    b, _, _ = run(x, fs, TICKS_MAX - 5000000)
    assert len(a) == len(b) and len(a) > 15
    for i in range(len(a)):
        assert abs(a[i][0] - b[i][0]) < 1e-6 and a[i][1] == b[i][1], (i, a[i], b[i])


def _stretch(fs, kind):
    """10 s of pulse, 8 s of a bad signal of the given kind, 12 s of pulse; the bad window."""
    x, truth = synth_ppg.ppg(fs, 30, hr_bpm=70, seed=17)
    lo, hi = 10 * fs, 18 * fs
    rng = synth_ppg.Rng(5)
    for i in range(lo, hi):
        if kind == "flat":
            x[i] = 30000 + int(20 * rng.gauss())      # finger off: ADC noise only
        elif kind == "zero":
            x[i] = 0
        elif kind == "rail":
            x[i] = 65535
        elif kind == "clipped":
            # gain too high: the pulse clips at the sensor amplifier's ceiling
            v = 32768 + (x[i] - 32768) * 4
            x[i] = 44000 if v > 44000 else (v if v > 0 else 0)
    return x, truth, lo / fs, hi / fs


def test_no_beats_and_a_named_state_in_bad_stretches():
    fs = 100
    expect = {"flat": NO_CONTACT, "zero": DROPOUT, "rail": SATURATED, "clipped": SATURATED}
    for kind in ("flat", "zero", "rail", "clipped"):
        x, truth, a, b = _stretch(fs, kind)
        beats, _, qual = run(x, fs)
        inside = [t for t, _, _ in beats if a + 0.3 < t < b]
        assert not inside, (kind, inside)
        states = list(qual[int((a + 1.5) * fs):int(b * fs)])
        assert expect[kind] in states, (kind, [QUALITY_NAMES[q] for q in states[::50]])
        # recovers on its own within a few beats of the good signal returning
        after = [t for t, _, _ in beats if t > b + 4.95]
        later = [t for t in truth if t > b + 5.0]
        hits, miss, extra = match(after, later, 0.05)
        assert miss == 0 and extra == 0, (kind, miss, extra)
        assert qual[-1] == OK, (kind, QUALITY_NAMES[qual[-1]])


def _misses_after(fs, hr, dicrotic, start, after_s=2.5):
    """Beats missed after after_s when the recording begins `start` samples into the signal."""
    x, truth = synth_ppg.ppg(fs, 14, hr_bpm=hr, dicrotic=dicrotic, seed=hr)
    x = x[start:]
    beats, _, _ = run(x, fs)
    found = [t for t, _, _ in beats]
    end = len(x) / fs - 0.4                             # a beat is confirmed after its peak
    later = [t - start / fs for t in truth if after_s < t - start / fs < end]
    hits, miss, extra = match([t for t in found if after_s - 0.1 < t < end + 0.1], later, 0.1)
    return miss


def test_the_pulse_is_learned_whatever_the_phase_the_signal_starts_in():
    """Learning takes its first whole upstroke. Begun just after a pulse, that was its dicrotic
    wave; begun halfway up an upstroke, the first pulse measured was that upstroke's tail. Either
    way every whole pulse after it looked 3x too big, was rejected as motion, and the detector
    went 'noisy': 5-15 beats lost at start-up (95 and 120 bpm below, one start in twelve of a
    cycle). Now learning ends on an upstroke only if it rose half the raw range seen meanwhile,
    the first two pulses after learning may set the size, and the first pulse's foot is measured
    on the signal, not on an empty history read as zero."""
    fs = 100
    for hr, dicrotic in ((95, 0.35), (120, 0.35), (120, 0.6), (75, 0.6)):
        period = fs * 60 // hr
        lost = [_misses_after(fs, hr, dicrotic, k) for k in range(0, period, max(1, period // 12))]
        assert sum(lost) == 0, (hr, dicrotic, lost)


def test_an_idle_sensor_on_a_coarse_adc_is_not_learned_as_a_pulse():
    """A PulseSensor with no finger idles at mid-rail with a few counts of noise. Read by a 10-bit
    ADC (heartpy data2's first 4 s and 8-14 s) those counts are four times coarser than the noise
    floor set for the RP2040's 12 bits, and the low-passed noise was learned as a pulse: a beat
    every 300-650 ms. Told the samples' resolution, the floor is four of its counts."""
    fs = 117
    rng = synth_ppg.Rng(5)
    idle = [(512 + int(7 * rng.uniform()) - 3) << 6 for _ in range(20 * fs)]    # 509..515, x64
    beats, _, _ = run(idle, fs, det=BeatDetector(fs, 16, 10))
    assert not beats, [t for t, _, _ in beats]
    x, truth = synth_ppg.ppg(fs, 20, hr_bpm=70, seed=3, amp=6000, noise=0)
    pulse = [(v >> 6) << 6 for v in x]                  # a real pulse in the same 10-bit counts
    beats, _, _ = run(pulse, fs, det=BeatDetector(fs, 16, 10))
    hits, miss, extra = match([t for t, _, _ in beats if t > 2.5], [t for t in truth if t > 2.6], 0.05)
    assert miss == 0 and extra == 0, (miss, extra)


def test_a_quiet_stretch_is_not_learned_as_the_pulse():
    """After a drop-out the detector relearns the pulse size. Learning from a quiet stretch (no
    finger yet, ADC noise just above the flat-line limit) once set a threshold noise crosses, and
    the mean pulse slope sum never grew back from it: beats were invented between pulses for as
    long as the session lasted."""
    fs = 125
    x, truth = synth_ppg.ppg(fs, 45, hr_bpm=70, seed=23)
    rng = synth_ppg.Rng(9)
    for i in range(10 * fs, 11 * fs):
        x[i] = 0                                        # the cable pulled: a drop-out
    for i in range(11 * fs, 15 * fs):
        x[i] = 30000 + int(220 * (rng.uniform() - 0.5))  # no pulse, noise of about 14 counts
    beats, _, qual = run(x, fs)
    found = [t for t, _, _ in beats]
    assert not [t for t in found if 10.3 < t < 15.0], found
    later = [t for t in truth if t > 18.0]
    hits, miss, extra = match([t for t in found if t > 17.95], later, 0.05)
    assert miss == 0 and extra == 0, (miss, extra)


def test_a_weak_pulse_on_a_quiet_adc_is_not_taken_for_clipping():
    """A pulse of 40 12-bit counts with half a count of noise: between beats the signal holds
    within a count for longer than 200 ms, as a clipped top does. At the bottom, mid-range, that
    is the end of diastole, not an amplifier at its rail (it once read as saturated, and beats
    were lost to it)."""
    fs = 250
    x, truth = synth_ppg.ppg(fs, 40, hr_bpm=60, amp=640, noise=8, wander=100, seed=29)
    for i in range(len(x)):
        x[i] = (x[i] >> 4) << 4                     # 12-bit counts, as the ADC gives them
    beats, _, qual = run(x, fs)
    clipped = [i / fs for i in range(len(qual)) if qual[i] == SATURATED]
    assert not clipped, clipped[:5]
    found = [t for t, _, _ in beats if t > 2.45]
    hits, miss, extra = match(found, [t for t in truth if t > 2.5], 0.05)
    assert miss == 0 and extra == 0, (miss, extra, found, truth)


def test_a_one_sample_spike_costs_no_beat():
    """A glitch to a rail or to zero, one sample long, is bridged with the last good sample: it
    once held detection off for a settling time and a relearning, about three beats each."""
    fs = 125
    x, truth = synth_ppg.ppg(fs, 60, hr_bpm=75, seed=31)
    spikes = [int((5.3 + 4.1 * k) * fs) for k in range(13)]
    for n, i in enumerate(spikes):
        x[i] = 65535 if n % 2 else 0
    beats, _, qual = run(x, fs)
    hits, miss, extra = match([t for t, _, _ in beats if t > 2.45], [t for t in truth if t > 2.5], 0.05)
    assert miss == 0 and extra == 0, (miss, extra)
    assert not [i for i in range(int(3 * fs), len(qual)) if qual[i] != OK]


def test_a_short_drop_out_keeps_what_was_learned():
    """100 ms of zeros (a cable wiggle) while the pulse is followed: no beat in it, and no
    relearning after it, so detection resumes as soon as the filters have settled."""
    fs = 250
    x, truth = synth_ppg.ppg(fs, 40, hr_bpm=60, seed=37)
    lo = int(20.55 * fs)
    for i in range(lo, lo + fs // 10):
        x[i] = 0
    beats, _, qual = run(x, fs)
    states = [qual[i] for i in range(int(3 * fs), len(qual))]
    assert DROPOUT in states and LEARNING not in states, sorted(set(states))
    found = [t for t, _, _ in beats]
    assert not [t for t in found if 20.55 < t < 20.65], found
    hits, miss, extra = match([t for t in found if t > 21.95], [t for t in truth if t > 22.0], 0.05)
    assert miss == 0 and extra == 0, (miss, extra)
    # a second of zeros is a lost sensor: the pulse is learned again after it
    for i in range(int(30.2 * fs), int(31.2 * fs)):
        x[i] = 0
    _, _, qual = run(x, fs)
    assert LEARNING in [qual[i] for i in range(int(31.2 * fs), len(qual))]


def test_beats_on_a_baseline_that_swings_with_breathing():
    """The baseline swinging 1.2 pulse heights each way at 15 breaths/min: on its rising side
    the signal falls too slowly after a peak to fall a fifth of the pulse within the peak window
    (9 of 63 beats were dropped). A maximum 250 ms old that the signal has left is the peak."""
    fs = 100
    x, truth = synth_ppg.ppg(fs, 60, hr_bpm=66, wander=0, seed=43)
    for i in range(len(x)):
        v = x[i] + int(9600 * math.sin(2 * math.pi * 0.25 * i / fs))
        x[i] = 0 if v < 0 else 65535 if v > 65535 else v
    beats, lat, _ = run(x, fs)
    hits, miss, extra = match([t for t, _, _ in beats if t > 2.45], [t for t in truth if t > 2.5], 0.06)
    assert miss == 0 and extra == 0, (miss, extra)
    assert max(lat) <= 0.5


def test_motion_burst_gives_no_beats_inside():
    fs = 100
    x, truth = synth_ppg.ppg(fs, 40, hr_bpm=70, seed=19)
    rng = synth_ppg.Rng(3)
    lo, hi = 15 * fs, 19 * fs
    for i in range(lo, hi):
        # large, jerky movement: steps and swings several times the pulse
        v = x[i] + int(30000 * (rng.uniform() - 0.5)) + (12000 if (i // 37) % 2 else -12000)
        x[i] = 0 if v < 0 else 65535 if v > 65535 else v
    beats, _, qual = run(x, fs)
    found = [t for t, _, _ in beats]
    inside = [t for t in found if 15.5 < t < 19.0]
    truth_inside = [t for t in truth if 15.5 < t < 19.0]
    assert len(inside) <= len(truth_inside) // 3, (inside, truth_inside)
    later = [t for t in truth if t > 25]
    hits, miss, extra = match([t for t in found if t > 24.5], later, 0.05)
    assert miss == 0 and extra == 0, (miss, extra)


def test_push_allocates_nothing():
    fs = 250
    x, truth = synth_ppg.ppg(fs, 6, seed=23)
    det = BeatDetector(fs)
    clock = TickClock(fs, 1, TICKS_MAX - 2000000)   # crosses the wrap while locked
    n = [0]

    def feed(i0, i1):
        beats = 0
        i = i0
        while i < i1:
            if det.push(x[i], clock.tick()):
                beats += 1
            i += 1
        return beats

    # warm up outside the lock (first-call attribute caches), then the rest with the heap locked:
    # learning, the rescan, detection, beats, a bridged spike, a short drop-out kept through
    # and a quality change all happen inside
    x[int(2.5 * fs)] = 65535
    for i in range(int(3.2 * fs), int(3.26 * fs)):
        x[i] = 0
    feed(0, 10)
    beats = portable.no_alloc(feed, 10, len(x))
    assert beats >= 4, beats
    for i in range(0, 2 * fs):
        x[i] = 0
    det2 = BeatDetector(fs)
    det = det2
    feed(0, 10)
    portable.no_alloc(feed, 10, len(x))
    assert det.quality in (0, 1, 4)
    # a quiet start: learning finds nothing above the noise and begins again, still locked
    rng = synth_ppg.Rng(2)
    for i in range(0, 3 * fs):
        x[i] = 30000 + int(200 * (rng.uniform() - 0.5))
    det = BeatDetector(fs)
    feed(0, 10)
    portable.no_alloc(feed, 10, len(x))


def test_wild_values_are_held_before_they_can_leave_small_int_range():
    # 12-bit samples far outside 0..4095 (a bad driver, a corrupt file): shifted first, 2**27
    # would become 2**31 and allocate on a 32-bit port; held first, it is the rail
    fs = 250
    det = BeatDetector(fs, 12)
    clock = TickClock(fs, 1, 0)
    wild = [(1 << 27) - 1 if i % 2 else -(1 << 27) for i in range(2 * fs)]

    def feed():
        for v in wild:
            det.push(v, clock.tick())

    det.push(2048, clock.tick())
    portable.no_alloc(feed)
    assert det.quality in (SATURATED, DROPOUT), det.quality
    assert det._s1 < (1 << 30) and det._s2 < (1 << 30)


def test_a_stalled_sample_clock_breaks_the_interval_chain_and_allocates_nothing():
    # The board's sampling can stall (a flash write, a hung USB write): the ticks then jump 30 s
    # between two samples. The interval across the jump, its confidence, the mean interval and the
    # sub-sample interpolation all multiply tick differences; 30 s would pass 2**30 (and allocate on
    # the RP2040 and the 32-bit WebAssembly port). The jump is put at every sample around one pulse
    # peak (the interpolation's two samples) and between beats.
    fs = 100
    x, truth = synth_ppg.ppg(fs, 12, seed=5, noise=0, wander=0)
    peak = int(truth[5] * fs)
    ibis = array("i", [0] * 64)
    cur = [None, None, 0]       # detector, clock, beats so far (a closure over more than five
                                # values and arguments allocates its call frame on MicroPython)

    def feed(at):
        det = cur[0]
        clock = cur[1]
        i = 0
        while i < len(x):
            if i == at:
                clock.now = (clock.now + 30000000) & TICKS_MAX
            if det.push(x[i], clock.tick()) and cur[2] < 64:
                ibis[cur[2]] = det.beat_ibi_us
                cur[2] += 1
            i += 1

    for at in [-1] + list(range(peak - 6, peak + 12)) + [peak + 40]:
        cur[0] = BeatDetector(fs)
        cur[1] = TickClock(fs, 1, 0)
        cur[2] = 0
        cur[0].push(x[0], cur[1].tick())
        portable.no_alloc(feed, at)
        got = ibis[:cur[2]]
        assert len(got) >= 10, (at, list(got))
        for ibi in got:
            assert 0 <= ibi < 2000000, (at, list(got))     # no interval across the jump
        zeros = sum(1 for ibi in got if ibi == 0)
        assert zeros == (1 if at < 0 else 2), (at, list(got))   # the chain restarts once


def test_rejects_bad_sample_rates():
    for fs in (0, 49, 1001):
        portable.assert_raises(ValueError, BeatDetector, fs)
    for bits in (8, 11, 17, "12"):
        portable.assert_raises(ValueError, BeatDetector, 250, bits)


def test_12_bit_counts_give_the_beats_of_the_same_signal_in_read_u16_scale():
    # raw 12-bit counts hold each level for 16 read_u16 units: pushed as if 16-bit they would look
    # like a stuck, tiny signal; with adc_bits=12 the detector sees exactly the shifted samples
    fs = 250
    x16, truth = synth_ppg.ppg(fs, 30, amp=6000, seed=31)
    x12 = [v >> 4 for v in x16]
    beats12, _, _ = run(x12, fs, det=BeatDetector(fs, 12))
    beats16, _, _ = run([v << 4 for v in x12], fs)
    assert beats12 == beats16
    hits, miss, extra = match([b[0] for b in beats12], truth, 0.03)
    assert miss == 0 and extra == 0, (hits, miss, extra)


def test_samples_outside_the_adc_range_are_held_at_its_rails():
    fs = 250
    x, truth = synth_ppg.ppg(fs, 20, seed=37)
    wild = list(x)
    for i in range(5 * fs, 7 * fs):
        wild[i] = 70000 + i  # above read_u16's top: the rail
    for i in range(12 * fs, 14 * fs):
        wild[i] = -1000 - i  # below ground: a drop-out
    railed = list(x)
    for i in range(5 * fs, 7 * fs):
        railed[i] = 65535
    for i in range(12 * fs, 14 * fs):
        railed[i] = 0
    beats_w, _, q_w = run(wild, fs)
    beats_r, _, q_r = run(railed, fs)
    assert beats_w == beats_r and q_w == q_r
    assert SATURATED in list(q_w[5 * fs + fs // 2:7 * fs]) and DROPOUT in list(q_w[12 * fs + fs // 2:14 * fs])
