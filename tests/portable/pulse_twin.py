"""Run the reference BeatDetector and the viper one (pulse_viper) side by side on the same samples
and ticks, and fail at the first sample where they differ: push()'s result, the quality, a beat's
time, interval, amplitude or confidence, and at the end every scalar and array of the state. Used by
test_pulse_viper.py (synthetic sweeps) and tests/test_pulse_viper_recordings.py (every shared recording) on
the MicroPython unix port; on a runtime without viper, available() is False."""

from vagal import pulse
from vagal.ticks import TickClock


def available():
    """True where BeatDetector is the viper fast path (MicroPython with a native emitter)."""
    return pulse.BeatDetector is not pulse.ReferenceBeatDetector


def compare(samples, fs_num, fs_den=1, adc_bits=16, resolution=12, start_tick=0):
    """Feed both detectors; return (beats, samples the fast path handed to the reference)."""
    from vagal.pulse_viper import _VARS

    fs = (fs_num + fs_den // 2) // fs_den
    ref = pulse.ReferenceBeatDetector(fs, adc_bits, resolution)
    fast = pulse.BeatDetector(fs, adc_bits, resolution)
    clock = TickClock(fs_num, fs_den, start_tick)
    n = 0
    for x in samples:
        t = clock.tick()
        a = ref.push(x, t)
        b = fast.push(x, t)
        if a != b or ref.quality != fast.quality:
            raise AssertionError("sample %d (x=%d): reference %r quality %d, viper %r quality %d"
                                 % (n, x, a, ref.quality, b, fast.quality))
        if a:
            r = (ref.beat_t_us, ref.beat_ibi_us, ref.beat_amp, ref.beat_conf)
            f = (fast.beat_t_us, fast.beat_ibi_us, fast.beat_amp, fast.beat_conf)
            if r != f:
                raise AssertionError("sample %d: reference beat %r, viper beat %r" % (n, r, f))
        n += 1
    st = fast._st
    for i in range(len(_VARS)):
        if getattr(ref, _VARS[i]) != st[i]:
            raise AssertionError("after %d samples: %s is %r in the reference, %r in viper"
                                 % (n, _VARS[i], getattr(ref, _VARS[i]), st[i]))
    for name in ("_b1", "_b2", "_sb", "_hx", "_hs", "_ht", "_a", "_qt", "_qi", "_qa", "_qc"):
        if list(getattr(ref, name)) != list(getattr(fast, name)):
            raise AssertionError("after %d samples: array %s differs" % (n, name))
    if ref.beats != fast.beats:
        raise AssertionError("beats: reference %d, viper %d" % (ref.beats, fast.beats))
    return ref.beats, fast.by_reference
