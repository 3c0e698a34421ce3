"""Virtual clock for the virtual board: shadows the built-in `time` on MICROPYPATH.

The built-in stays reachable as `utime` (the unix port resolves that name to the built-in module,
not to this file), so nothing recurses. Configured from the environment at import:

VAGAL_VIRTUAL_SPEED   "1" (default) real time, "N" N times faster (a stall of this process is not
                      passed on as a stall of the board: see STALL_CAP_US), "max" as fast as the CPU allows:
                      virtual time then moves only when the program waits (sleep*, select.poll) -
                      a discrete-event clock, so the app never falls behind its samples.
VAGAL_VIRTUAL_WRAP_S  start ticks_us and ticks_ms this many virtual seconds before their 2**30 wrap.

The fake hardware (machine.py, rp2.py) reads `elapsed_us()` and runs interrupt handlers "at" the
virtual time of their event through `irq_at()`.
"""

import utime as _rt
import os as _os

TICKS_PERIOD = 1 << 30
_MASK = TICKS_PERIOD - 1

_HALF = TICKS_PERIOD >> 1


# The unix port's built-in ticks wrap at 2**62; the Pico's at 2**30. Emulate the Pico.
def ticks_diff(a, b):
    return ((a - b + _HALF) & _MASK) - _HALF


def ticks_add(t, delta):
    return (t + delta) & _MASK

gmtime = _rt.gmtime
localtime = _rt.localtime
mktime = _rt.mktime


def _env(name, default):
    v = _os.getenv(name)
    return default if v is None or v == "" else v


_speed_s = _env("VAGAL_VIRTUAL_SPEED", "1")
MAX = _speed_s == "max"
SPEED = 0 if MAX else float(_speed_s)
if not MAX and not 0 < SPEED < float("inf"):  # nan too
    raise ValueError("VAGAL_VIRTUAL_SPEED must be > 0 or 'max', got %r" % _speed_s)
_wrap = _env("VAGAL_VIRTUAL_WRAP_S", "")
if _wrap:
    _w = int(float(_wrap) * 1000000)
    _US0 = (TICKS_PERIOD - _w) & _MASK
    _MS0 = (TICKS_PERIOD - _w // 1000) & _MASK
else:
    _US0 = _rt.ticks_us()
    _MS0 = _rt.ticks_ms()

_real0_ns = _rt.time_ns()
_epoch0_ns = _real0_ns
# Scaled mode: a Pico never stalls, but this process can (another process takes the CPU, the host
# is slow): at speed N a 100 ms stall would be N/10 s of virtual time in which no task ran, and the
# app's watchdog would fire. So between two readings the clock moves at most STALL_CAP_US beyond
# what the program asked to wait for; time lost that way is not caught up (speed is best effort).
STALL_CAP_US = 50000
_virt = 0  # scaled mode: virtual microseconds handed out so far
_lost = 0  # scaled mode: virtual microseconds dropped by the stall cap
_allow = STALL_CAP_US
_el = 0  # max mode: virtual microseconds since start
_idle_reads = 0
_irq_t = None  # while an interrupt handler runs: the virtual time of its event
_watchers = []  # callables(el_us) run when virtual time moves on (watchdog)


def elapsed_us():
    """Virtual microseconds since the process started (unwrapped)."""
    global _el, _idle_reads
    if _irq_t is not None:
        return _irq_t
    if MAX:
        # a busy-wait on the clock must still see time move: 1 ms per 1000 reads without a wait
        _idle_reads += 1
        if _idle_reads >= 1000:
            _idle_reads = 0
            advance_us(1000)
        return _el
    return _scaled_us()


def _scaled_us():
    global _virt, _lost, _allow
    v = int((_rt.time_ns() - _real0_ns) * SPEED) // 1000 - _lost
    d = v - _virt
    if d > _allow:
        _lost += d - _allow
        d = _allow
    if d > 0:
        _virt += d
        _allow = STALL_CAP_US
    return _virt


def _will_wait(us):
    """Scaled mode: the program is about to wait us of virtual time; let the clock move that far."""
    global _allow
    _scaled_us()
    _allow = us + STALL_CAP_US


def advance_us(us):
    """Max mode: move virtual time on (the program is waiting)."""
    global _el, _idle_reads
    if us > 0:
        _el += us
        _idle_reads = 0
        for w in _watchers:
            w(_el)


def irq_at(t_us):
    """Make the clock read t_us while a simulated interrupt handler runs (None to release)."""
    global _irq_t
    _irq_t = t_us


def ticks_us():
    return (_US0 + elapsed_us()) & _MASK


def ticks_ms():
    return (_MS0 + elapsed_us() // 1000) & _MASK


ticks_cpu = ticks_us


def time_ns():
    return _epoch0_ns + elapsed_us() * 1000


def time():
    return time_ns() // 1000000000


def sleep_us(us):
    if us <= 0:
        return
    if MAX:
        advance_us(us)
    else:
        _will_wait(us)
        _rt.sleep_us(int(us / SPEED))


def sleep_ms(ms):
    sleep_us(ms * 1000)


def sleep(s):
    sleep_us(int(s * 1000000))


def wait_ms(timeout_ms, poll_real):
    """Wait for IO up to timeout_ms of virtual time; poll_real(ms) does a real poll.

    Used by the fake select: real time mode scales the timeout; max mode polls without waiting and,
    with nothing ready, jumps the clock to the deadline.
    """
    if timeout_ms is None or timeout_ms < 0:
        return poll_real(-1)
    if MAX:
        r = poll_real(0)
        if not r and timeout_ms > 0:
            advance_us(timeout_ms * 1000)
        return r
    _will_wait(timeout_ms * 1000)
    return poll_real(int(timeout_ms / SPEED))
