# Runs inside the MicroPython unix port: time the per-sample path against an empty loop.
import sys
import time
from vagal.pulse import BeatDetector
from vagal.ticks import TickClock


def main(path, fs):
    from array import array
    xs = array("H")
    with open(path) as f:
        for line in f:
            xs.append(int(line))
    n = len(xs)
    det = BeatDetector(fs)
    clock = TickClock(fs, 1)
    push = det.push
    tick = clock.tick
    t0 = time.ticks_us()
    for i in range(n):
        push(xs[i], tick())
    t_core = time.ticks_diff(time.ticks_us(), t0)
    t0 = time.ticks_us()
    for i in range(n):
        pass
    t_empty = time.ticks_diff(time.ticks_us(), t0)
    print("%d %d %d" % (n, t_core, t_empty))


main(sys.argv[1], int(sys.argv[2]))
