"""A progress bar for long jobs, on stderr and only when it is a terminal (or asked for)."""

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
