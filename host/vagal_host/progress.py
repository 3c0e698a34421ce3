"""Progress on stderr for host work that can take more than a couple of seconds.

Why a wrapper: every command shows progress the same way (rich, on stderr, so stdout stays clean for
scripts), only on a terminal, never with --quiet, and only once the work has taken DELAY_S, so quick
runs print nothing at all.
"""

import sys
import time

DELAY_S = 1.0


class Progress:
    """`with Progress("writing", total) as p: p.advance(n)`; a no-op when not shown."""

    def __init__(self, label, total=None, quiet=False, stream=None, delay_s=DELAY_S, clock=time.monotonic):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = not quiet and _is_tty(self.stream)
        self.label = label
        self.total = total
        self.done = 0
        self.delay_s = delay_s
        self.clock = clock
        self._t0 = clock()
        self._rich = None
        self._task = None

    def __enter__(self):
        self._t0 = self.clock()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _show(self):
        from rich.console import Console
        from rich.progress import BarColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn

        console = Console(file=self.stream, force_terminal=True)
        self._rich = RichProgress(TextColumn("{task.description}"), BarColumn(),
                                  TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                                  console=console, transient=True)
        self._rich.start()
        self._task = self._rich.add_task(self.label, total=self.total, completed=self.done)

    def advance(self, n=1):
        self.done += n
        self._tick()

    def stage(self, label):
        """Name the current step (e.g. the figure being drawn)."""
        self.label = label
        self._tick()

    def _tick(self):
        if not self.enabled:
            return
        if self._rich is None:
            if self.clock() - self._t0 < self.delay_s:
                return
            self._show()
        self._rich.update(self._task, completed=self.done, description=self.label)

    def close(self):
        if self._rich is not None:
            self._rich.stop()
            self._rich = None


def _is_tty(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
