# Runs inside the MicroPython unix port (python -m vagal_host.bench starts it): times the device's
# per-sample work against an empty loop measured in the same process, so that the ratio carries
# over to the RP2040. Usage: micropython per_sample.py SAMPLES_FILE FS SETTINGS_PATH
# Prints one "key value" line per measure (times in microseconds, integers).
import sys
import time
from array import array

from vagal import pulse
import vagal.app

# The pure-Python reference detector, also inside the app: the ratio to an empty iteration carries
# over to the RP2040 only for bytecode (the unix port's BeatDetector is the viper one; the chip's
# own figures are measured on the emulated RP2040, bench section 6).
BeatDetector = getattr(pulse, "ReferenceBeatDetector", pulse.BeatDetector)
vagal.app.BeatDetector = BeatDetector
from vagal.ticks import TickClock, ticks_add, ticks_diff

try:
    import micropython
except ImportError:  # pragma: no cover
    micropython = None


def load(path, fs):
    xs = array("H")
    with open(path) as f:
        for line in f:
            xs.append(int(line))
    ts = array("i", bytes(4 * len(xs)))
    clock = TickClock(fs, 1)
    for i in range(len(xs)):
        ts[i] = clock.now
        clock.tick()
    return xs, ts


BLOCK = 256  # samples per timed block: short enough that one pass usually runs it unpreempted
BIG = 0x3FFFFFFF


def detector_blocks(xs, ts, fs, passes):
    """Detector and empty loop timed block by block, each block's quickest of `passes` passes
    (fresh detector each pass, same samples): CPU contention from other processes must hit the
    same block in every pass to count. Returns (detector us, empty us, beats)."""
    n = len(xs)
    nb = (n + BLOCK - 1) // BLOCK
    best_d = array("i", [BIG] * nb)
    best_e = array("i", [BIG] * nb)
    beats = 0
    ticks_us = time.ticks_us
    tdiff = time.ticks_diff
    for _ in range(passes):
        det = BeatDetector(fs)
        push = det.push
        for b in range(nb):
            lo = b * BLOCK
            hi = lo + BLOCK if lo + BLOCK < n else n
            t0 = ticks_us()
            for i in range(lo, hi):
                pass
            e = tdiff(ticks_us(), t0)
            t0 = ticks_us()
            for i in range(lo, hi):
                push(xs[i], ts[i])
            d = tdiff(ticks_us(), t0)
            if e < best_e[b]:
                best_e[b] = e
            if d < best_d[b]:
                best_d[b] = d
        beats = det.beats
    return sum(best_d), sum(best_e), beats


def detector_allocates(xs, ts, fs):
    """1 if the per-sample path allocated (MemoryError under heap_lock), 0 if not, -1 unknown."""
    if micropython is None or not hasattr(micropython, "heap_lock"):
        return -1
    det = BeatDetector(fs)
    push = det.push
    for i in range(len(xs) // 4):  # prime the detector outside the lock
        push(xs[i], ts[i])
    micropython.heap_lock()
    try:
        for i in range(len(xs) // 4, len(xs)):
            push(xs[i], ts[i])
    except MemoryError:
        micropython.heap_unlock()
        return 1
    micropython.heap_unlock()
    return 0


class SampleBoard:
    """The Board contract (docs/architecture.md) serving a recording; read() copies like the
    board's timer path, `per_poll` samples per poll as the 10 ms sample task would find."""

    settings_path = "/settings.json"
    board_id = "bench"
    lost_samples = 0

    def __init__(self, xs, ts, fs, per_poll, settings_path):
        self.fs = fs
        self.xs = xs
        self.ts = ts
        self.r = 0
        self.avail = 0
        self.per_poll = per_poll
        self.settings_path = settings_path
        self.bytes_out = 0

    def start(self):
        pass

    def next_poll(self):
        end = self.r + self.per_poll
        if end > len(self.xs):
            end = len(self.xs)
        self.avail = end
        return self.r < len(self.xs)

    def read(self, xbuf, tbuf):
        r = self.r
        n = 0
        cap = len(xbuf)
        xs = self.xs
        ts = self.ts
        while r < self.avail and n < cap:
            xbuf[n] = xs[r]
            tbuf[n] = ts[r]
            r += 1
            n += 1
        self.r = r
        return n

    def now_us(self):
        i = self.r - 1 if self.r else 0
        return self.ts[i]

    def ticks_us(self):
        return self.now_us()

    def ticks_ms(self):
        return self.now_us() // 1000

    def set_led(self, level):
        pass

    def set_motor(self, level):
        pass

    def button(self):
        return 0

    def feed(self):
        pass

    def serial_read(self, buf):
        return 0

    def serial_write(self, data, n=-1):
        self.bytes_out += n if n >= 0 else len(data)


def app_loop(xs, ts, fs, settings_path, passes):
    """App.poll_samples over the whole recording (the device's per-sample path end to end), timed
    in blocks of polls, each block's quickest of `passes` passes with a fresh app."""
    from vagal.app import PACER_MS as SAMPLE_MS, App  # samples are drained every LED period

    per_poll = (fs * SAMPLE_MS + 999) // 1000
    polls_per_block = BLOCK // per_poll
    nb = (len(xs) + per_poll * polls_per_block - 1) // (per_poll * polls_per_block)
    best = array("i", [BIG] * nb)
    sent = 0
    for _ in range(passes):
        board = SampleBoard(xs, ts, fs, per_poll, settings_path)
        app = App(board, settings_path)
        app.begin()
        poll = app.poll_samples
        nxt = board.next_poll
        more = True
        b = 0
        while more:
            t0 = time.ticks_us()
            k = 0
            while k < polls_per_block:
                more = nxt()
                if not more:
                    break
                poll()
                k += 1
            d = time.ticks_diff(time.ticks_us(), t0)
            if b < nb and d < best[b]:
                best[b] = d
            b += 1
        sent = board.bytes_out
    return sum(best), sent


def read_loop(xs, ts, fs, passes):
    """SampleBoard.read alone, polled as app_loop polls it: the stand-in board's share of app_us."""
    from vagal.app import SAMPLE_BUF, PACER_MS as SAMPLE_MS

    per_poll = (fs * SAMPLE_MS + 999) // 1000
    xbuf = array("H", bytes(2 * SAMPLE_BUF))
    tbuf = array("i", bytes(4 * SAMPLE_BUF))
    best = BIG
    for _ in range(passes):
        board = SampleBoard(xs, ts, fs, per_poll, "")
        read = board.read
        nxt = board.next_poll
        t0 = time.ticks_us()
        while nxt():
            read(xbuf, tbuf)
        d = time.ticks_diff(time.ticks_us(), t0)
        if d < best:
            best = d
    return best


def update_work(xs, ts, fs, up_t, beat_t):
    """Pacer + resonance meter (with coherence) at the app's pacer period, HRV cleaning + meter on
    each detected beat: the time of every call goes into up_t / beat_t (us)."""
    from vagal.app import PACER_MS
    from vagal.hrv import HRV
    from vagal.pacer import Pacer
    from vagal.resonance import ResonanceMeter

    det = BeatDetector(fs)
    hrv = HRV(32)
    pacer = Pacer()
    meter = ResonanceMeter()
    pacer.start(ts[0])
    next_update = ts[0]
    n_up = 0
    n_beat = 0
    coh_results = 0
    seq = meter.coherence.seq
    for i in range(len(xs)):
        t = ts[i]
        if det.push(xs[i], t):
            t0 = time.ticks_us()
            ibi = det.beat_ibi_us
            ok = hrv.add(ibi) if ibi else False
            meter.beat(det.beat_t_us, ibi, ok)
            if n_beat < len(beat_t):
                beat_t[n_beat] = time.ticks_diff(time.ticks_us(), t0)
            n_beat += 1
        if ticks_diff(t, next_update) >= 0:
            next_update = ticks_add(next_update, PACER_MS * 1000)
            t0 = time.ticks_us()
            pacer.update(t)
            meter.pace(t, pacer)
            if n_up < len(up_t):
                up_t[n_up] = time.ticks_diff(time.ticks_us(), t0)
            n_up += 1
            if meter.coherence.seq != seq:
                seq = meter.coherence.seq
                coh_results += 1
    return n_up, n_beat, coh_results


def update_costs(xs, ts, fs, passes=3):
    """Per-call times of update_work, each call's quickest of `passes` identical runs (a preemption
    or GC pause would have to hit the same call every time): (updates, update us total, worst
    update, beats, beat us total, worst beat, coherence results)."""
    from vagal.app import PACER_MS

    n_up_max = len(xs) * 1000 // (fs * PACER_MS) + 2
    n_beat_max = len(xs) * 4 // fs + 2  # up to 240 bpm
    up_best = array("i", [BIG] * n_up_max)
    beat_best = array("i", [BIG] * n_beat_max)
    up_t = array("i", bytes(4 * n_up_max))
    beat_t = array("i", bytes(4 * n_beat_max))
    for _ in range(passes):
        n_up, n_beat, coh = update_work(xs, ts, fs, up_t, beat_t)
        for i in range(n_up_max):
            if up_t[i] < up_best[i]:
                up_best[i] = up_t[i]
        for i in range(n_beat_max):
            if beat_t[i] < beat_best[i]:
                beat_best[i] = beat_t[i]
    n_up = min(n_up, n_up_max)
    n_beat = min(n_beat, n_beat_max)
    return (n_up, sum(up_best[:n_up]), max(up_best[:n_up]) if n_up else 0,
            n_beat, sum(beat_best[:n_beat]), max(beat_best[:n_beat]) if n_beat else 0, coh)


def main(path, fs, settings_path):
    xs, ts = load(path, fs)
    n = len(xs)
    out = [("samples", n)]
    d, e, beats = detector_blocks(xs, ts, fs, 5)
    out.append(("empty_n", n))
    out.append(("empty_us", e))
    out.append(("detector_us", d))
    out.append(("detector_beats", beats))
    out.append(("detector_allocates", detector_allocates(xs, ts, fs)))
    try:
        a, sent = app_loop(xs, ts, fs, settings_path, 5)
        out.append(("app_us", a))
        out.append(("app_bytes_out", sent))
        out.append(("read_us", read_loop(xs, ts, fs, 5)))
    except Exception as e:  # the app is being rewired by others: report, keep the other numbers
        out.append(("app_error", "%s: %s" % (type(e).__name__, e)))
    try:
        r = update_costs(xs, ts, fs)
        for k, v in zip(("updates", "update_us_sum", "update_us_max", "beats", "beat_us_sum",
                         "beat_us_max", "coherence_results"), r):
            out.append((k, v))
    except Exception as e:
        out.append(("update_error", "%s: %s" % (type(e).__name__, e)))
    for k, v in out:
        print("%s %s" % (k, v))


main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
