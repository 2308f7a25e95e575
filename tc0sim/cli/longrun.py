"""What a long command needs around its work (docs/cli.md, "Long evaluations"): the plan line,
a progress bar, a time limit, clean interruption and output files that appear only complete.

* ``Terminated`` (a KeyboardInterrupt) is raised by SIGTERM, so Ctrl-C and ``kill`` take the same
  path: every ``finally`` runs (a Dask cluster is closed), the group prints ``error: interrupted``
  and exits 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
* ``time_limit(seconds)`` raises ``TimeLimitExceeded`` (exit 2) from SIGALRM when the work runs
  longer.
* ``write_complete(path, write)`` writes to a temporary name in the same directory and renames it
  to ``path`` at the end: a run that fails or is stopped leaves ``path`` as it was.

Only the standard library and click are imported here; rich is imported by the bar itself.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

from tc0sim.errors import ConfigError, Tc0simError

EXIT_INTERRUPTED = 128 + signal.SIGINT
"""Exit status after Ctrl-C (the shell's convention, 128 + the signal's number); SIGTERM gives 143."""

LONG_SECONDS = 2.0
"""An evaluation estimated to take longer than this prints its plan on stderr and shows a progress bar."""

REFRESH_SECONDS = 0.1
"""Least time between two updates of the progress bar (a node may take microseconds)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt in the main thread."""


class TimeLimitExceeded(Tc0simError):
    """The work ran longer than --max-seconds."""


def exit_status(interrupt: KeyboardInterrupt) -> int:
    """128 + the number of the signal that stopped the command."""
    return 128 + (signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated()


def on_sigterm() -> None:
    """Make SIGTERM raise ``Terminated`` in the main thread (the ``tc0sim`` program calls this)."""
    signal.signal(signal.SIGTERM, _terminate)


@contextlib.contextmanager
def time_limit(seconds: float | None, what: Callable[[], str] = lambda: "") -> Iterator[None]:
    """Raise TimeLimitExceeded in the main thread once ``seconds`` have passed (None: no limit;
    outside the main thread, where no signal handler can be set, the limit is not enforced);
    ``what`` says how far the work got."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise TimeLimitExceeded(f"stopped after --max-seconds {seconds:g}{what()}; nothing was written")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def write_complete(path: str, write: Callable[[IO[bytes]], None]) -> None:
    """``write(handle)`` into a temporary file next to ``path``, renamed to ``path`` when done
    (``tc0sim.io.outputs.atomic_path``); on any error or interruption the temporary file is removed
    and ``path`` is untouched."""
    from tc0sim.io.outputs import atomic_path

    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        write(handle)


def duration(seconds: float) -> str:
    """'0.4 s', '12 s', '3 min 20 s', '2 h 5 min'."""
    if seconds < 10:
        return f"{seconds:.1g} s" if seconds < 1 else f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min {int(seconds % 60)} s"
    return f"{minutes // 60} h {minutes % 60} min"


def size_text(count: int) -> str:
    """Bytes in binary units, as --max-memory reads them (1 MB = 2^20 bytes)."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


class Tally:
    """Gates done so far, told by an engine's progress hook, shown on a rich bar (or counted only)."""

    def __init__(self, total: int, bar: Any = None, task: Any = None) -> None:
        self.total, self.bar, self.task = total, bar, task
        self.done = 0
        self.next_refresh = 0.0

    def __call__(self, gates: int) -> None:
        self.done += gates
        if self.bar is not None and (self.done >= self.total or time.monotonic() >= self.next_refresh):
            self.bar.update(self.task, completed=self.done)
            self.next_refresh = time.monotonic() + REFRESH_SECONDS

    def so_far(self) -> str:
        return f" ({self.done:,} of {self.total:,} gates done)"


@contextlib.contextmanager
def progress_bar(total: int, shown: bool, stream: Any) -> Iterator[Tally]:
    """A ``Tally`` of ``total`` gates, drawn as a rich bar on ``stream`` (gates done / total, rate,
    ETA) when ``shown`` and ``stream`` is a terminal; the bar disappears at the end."""
    if not (shown and stream.isatty()):
        yield Tally(total)
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (
        TextColumn("evaluating"), BarColumn(), TextColumn("{task.completed:,.0f}/{task.total:,.0f} gates"),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(file=stream), transient=True) as bar:
        task = bar.add_task("evaluating", total=total, rate="")
        tally = Tally(total, _RateBar(bar), task)
        yield tally


class _RateBar:
    """A rich Progress whose ``rate`` field is updated with every update (gates per second)."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def update(self, task: Any, completed: int) -> None:
        speed = self.bar.tasks[0].speed
        self.bar.update(task, completed=completed, rate=f"{speed:,.3g} gates/s" if speed else "")
