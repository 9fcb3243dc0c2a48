"""Progress bars: one for long data jobs (on stderr, only when it is a terminal or asked for), one for
training loops."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


@contextmanager
def progress_bar(total: int, show: bool | None = None, label: str = "rendering") -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; ``show=None`` shows the bar when stderr is a terminal."""
    enabled = sys.stderr.isatty() if show is None else show
    progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=Console(stderr=True), disable=not enabled, transient=True)
    with progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


@contextmanager
def step_progress(enabled: bool, label: str, total: int, completed: int) -> Iterator[Callable[[int, str], None]]:
    """A training loop's bar (on stdout, kept after the run): yield ``update(completed, status)``."""
    progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                        TimeRemainingColumn(), disable=not enabled, transient=False)
    with progress:
        task = progress.add_task(label, total=total, completed=completed, status="")
        yield lambda done, status: progress.update(task, completed=done, status=status)
