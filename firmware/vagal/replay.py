"""Replay a recording through the core and write the beats CSV: one code path for every engine.

The host runs this on CPython; `--engine micropython` runs the very same function inside the
MicroPython unix port (and the tests inside the WebAssembly port). Output is formatted with integer
arithmetic only, so the files are byte-identical across runtimes.

Samples are stamped by TickClock at the recording's rate (num/den Hz); beat times are reported in
seconds from the first sample, unwrapped across the 2**30 us tick period.
"""

from vagal.pipeline import Pipeline
from vagal.pulse import OK, QUALITY_NAMES, BeatDetector
from vagal.ticks import TickClock, ticks_diff

HEADER = "time_s,ibi_ms,amplitude,confidence,accepted\n"


def _fmt_fixed(v, scale, digits):
    """v / scale with `digits` decimals, from ints only (no float formatting differences)."""
    sign = ""
    if v < 0:
        sign = "-"
        v = -v
    return "%s%d.%0*d" % (sign, v // scale, digits, v % scale)


class Replay:
    """Feeds samples to a BeatDetector and the core's pipeline (HRV's verdict on each interval), writes
    beat rows, keeps the run's totals."""

    def __init__(self, fs_num, fs_den, out, start_tick=0, resolution=12):
        fs = (fs_num + fs_den // 2) // fs_den
        self.det = BeatDetector(fs, 16, resolution)
        self.pipe = Pipeline()  # beats and quality reach HRV (and the meter) as on the device
        self.clock = TickClock(fs_num, fs_den, start_tick)
        self.out = out
        self.t_first = self.clock.now
        self.el_s = 0            # elapsed time of the current sample: whole seconds ...
        self.el_us = 0           # ... and microseconds (two ints: never beyond 2**30)
        self.prev_tick = self.clock.now
        self.samples = 0
        self.state_samples = [0] * len(QUALITY_NAMES)
        self.ibi_sum_ms = 0
        self.ibi_n = 0
        out.write(HEADER)

    def feed(self, x):
        t = self.clock.now
        det = self.det
        if self.samples:
            self.el_us += ticks_diff(t, self.prev_tick)
            while self.el_us >= 1000000:
                self.el_us -= 1000000
                self.el_s += 1
        self.prev_tick = t
        self.samples += 1
        was_ok = det.quality
        if det.push(x, t):
            lag = ticks_diff(t, det.beat_t_us)         # how long ago the peak was
            s = self.el_s
            us = self.el_us - lag
            while us < 0:
                us += 1000000
                s -= 1
            ibi = det.beat_ibi_us
            accepted = 1 if self.pipe.beat(det.beat_t_us, ibi) else 0
            if accepted:
                self.ibi_sum_ms += ibi // 1000
                self.ibi_n += 1
            self.out.write("%s,%s,%d,%d,%d\n" % (
                "%d.%06d" % (s, us),
                _fmt_fixed(ibi, 1000, 3), det.beat_amp, det.beat_conf, accepted))
        if det.quality != was_ok:
            self.pipe.signal(det.quality == OK)
        self.state_samples[det.quality] += 1
        self.clock.tick()

    def summary(self, fs_num, fs_den):
        """One line: beats, mean HR from accepted intervals, seconds in each quality state."""
        parts = ["beats=%d" % self.det.beats]
        if self.ibi_n:
            parts.append("mean_hr=%s" % _fmt_fixed(60000 * 10 * self.ibi_n // self.ibi_sum_ms, 10, 1))
        else:
            parts.append("mean_hr=-")
        for i in range(len(QUALITY_NAMES)):
            n = self.state_samples[i]
            if n:
                # seconds with one decimal: n * den * 10 / num
                parts.append("%s=%ss" % (QUALITY_NAMES[i], _fmt_fixed(n * fs_den * 10 // fs_num, 10, 1)))
        return " ".join(parts)


def run_file(in_path, out_path, fs_num, fs_den, resolution=12):
    """Replay a file of one integer sample per line (what the host hands other engines)."""
    with open(out_path, "w") as out:
        r = Replay(fs_num, fs_den, out, 0, resolution)
        with open(in_path) as f:
            for line in f:
                r.feed(int(line))
        s = r.summary(fs_num, fs_den)
    return s
