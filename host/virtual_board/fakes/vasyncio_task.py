"""Task and TaskQueue for asyncio on the virtual clock (installed as sys.modules["_asyncio"]).

The unix port's built-in C _asyncio stamps tasks pushed without a key with the REAL
mp_hal_ticks_ms(); next to a virtual ticks_ms (sped up, or started just before the 2**30 wrap) such
tasks would look days in the future. This pure-Python pair reads the clock through asyncio.core.ticks
(the virtual time.ticks_ms), keeping the semantics asyncio.core expects of _asyncio.
"""

import asyncio_core_ref as _ref  # set by the boot script: _ref.core = asyncio.core once imported

_MASK = (1 << 30) - 1
_HALF = 1 << 29


class TaskQueue:
    """Tasks ordered by ph_key (a wrapping ms tick); FIFO among equal keys."""

    def __init__(self):
        self._q = []

    def peek(self):
        return self._q[0] if self._q else None

    def push(self, v, key=None):
        core = _ref.core
        v.data = None  # whatever it waited on has happened (callers set data after push)
        k = core.ticks() if key is None else key
        v.ph_key = k
        q = self._q
        i = len(q)
        # ticks_diff(k, key) < 0 inlined (the Pico's 2**30 wrap, as the fake time module): this runs
        # at every task wake-up, hundreds of times per virtual second
        while i > 0 and ((k - q[i - 1].ph_key + _HALF) & _MASK) < _HALF:
            i -= 1
        q.insert(i, v)

    def pop(self):
        return self._q.pop(0)

    def remove(self, v):
        try:
            self._q.remove(v)
        except ValueError:
            pass


class Task:
    def __init__(self, coro, globals=None):
        self.coro = coro
        self.data = None  # what the task waits on / its result or exception
        self.state = True  # True running, False/None done, a TaskQueue of waiters, or a callable
        self.ph_key = 0

    def __iter__(self):
        if not self.state:
            self.state = False
        elif self.state is True:
            self.state = TaskQueue()
        elif not isinstance(self.state, TaskQueue):
            raise RuntimeError("can't wait")
        return self

    __await__ = __iter__

    def __next__(self):
        if not self.state:
            if self.data is None:
                raise StopIteration
            raise self.data
        core = _ref.core
        self.state.push(core.cur_task)
        core.cur_task.data = self

    def send(self, v):
        return self.__next__()

    def done(self):
        return not self.state

    def cancel(self):
        core = _ref.core
        if not self.state:
            return False
        if self is core.cur_task:
            raise RuntimeError("can't cancel self")
        while isinstance(self.data, Task):
            self = self.data
        if hasattr(self.data, "remove"):
            self.data.remove(self)
            core._task_queue.push(self)
        elif core.ticks_diff(self.ph_key, core.ticks()) > 0:
            core._task_queue.remove(self)
            core._task_queue.push(self)
        self.data = core.CancelledError
        return True
