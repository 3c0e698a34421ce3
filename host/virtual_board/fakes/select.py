"""select.poll that waits on the virtual clock (shadows the built-in select on MICROPYPATH).

asyncio computes its deadlines from the (virtual) time.ticks_ms and waits in poll.ipoll(timeout);
this wrapper turns that timeout into the matching real wait (speed N) or a clock jump (max).
"""

import uselect as _sel
import time as _vt

POLLIN = _sel.POLLIN
POLLOUT = _sel.POLLOUT
POLLERR = _sel.POLLERR
POLLHUP = _sel.POLLHUP


class poll:
    def __init__(self):
        self._p = _sel.poll()
        self._last_el = -1000000  # max mode: virtual time of this poller's last real poll
        self._ready = False

    def register(self, obj, mask=POLLIN | POLLOUT):
        self._p.register(obj, mask)

    def unregister(self, obj):
        self._p.unregister(obj)

    def modify(self, obj, mask):
        self._p.modify(obj, mask)

    def _real(self, ms):
        if ms == 0 and _vt.MAX:
            # a real poll (a syscall) at most once per virtual ms unless the last one found input:
            # the board asks every 10 ms task step and per byte; a USB frame is 1 ms anyway
            el = _vt._el
            if not self._ready and el - self._last_el < 1000:
                return []
            self._last_el = el
            r = self._p.poll(0)
            self._ready = bool(r)
            return r
        return self._p.poll(ms)

    def poll(self, timeout=-1):
        return _vt.wait_ms(timeout, self._real)

    def ipoll(self, timeout=-1, flags=0):
        return _vt.wait_ms(timeout, self._real)
