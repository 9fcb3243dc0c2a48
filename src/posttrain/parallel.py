"""Ordered parallel map over row ranges, for CPU-bound per-row work (rendering).

Workers are forked, so they inherit the job (a renderer, an Arrow dataset) instead of receiving it
pickled; only ``(start, stop)`` bounds go out and each chunk's (small) result comes back, in order.
Where ``fork`` is unavailable (Windows, or a platform that forbids it) the work runs in-process.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
from collections.abc import Callable, Generator
from typing import Any, TypeVar

T = TypeVar("T")
ChunkFn = Callable[[int, int], Any]

# The job of the pool being started; forked workers see the parent's value. One job at a time.
_JOB: ChunkFn | None = None


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _worker_init() -> None:
    # Ctrl-C reaches the whole process group; the parent reports it once, workers stay quiet.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Objects inherited from the parent live as long as the worker: keep the cyclic collector from
    # traversing them again and again (and from touching their pages, which copies them).
    gc.freeze()


def _run(bounds: tuple[int, int]) -> Any:
    assert _JOB is not None
    return _JOB(*bounds)


def chunk_bounds(n: int, chunk_rows: int) -> list[tuple[int, int]]:
    return [(start, min(start + chunk_rows, n)) for start in range(0, n, chunk_rows)]


def ordered_map(fn: Callable[[int, int], T], n: int, *, workers: int,
                chunk_rows: int = 256) -> Generator[T, None, None]:
    """``fn(start, stop)`` for consecutive chunks of ``[0, n)``, results in chunk order.

    ``workers == 1`` (or no ``fork``) runs in this process; otherwise a forked pool of ``workers``,
    started now, before the caller starts any thread of its own (a progress bar) that a fork would
    copy mid-operation. Closing or dropping the iterator early terminates the workers."""
    bounds = chunk_bounds(n, chunk_rows)
    workers = min(workers, len(bounds))
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return (fn(start, stop) for start, stop in bounds)
    return _pool_results(_start_pool(fn, workers), bounds)


def _start_pool(fn: ChunkFn, workers: int) -> Any:
    global _JOB
    if _JOB is not None:
        raise RuntimeError("ordered_map does not nest")
    _JOB = fn
    # Each worker is one core: the tokenizers library must not start its own thread pool in
    # workers (set before forking; it also silences its "forked after parallelism" warning).
    saved = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        return multiprocessing.get_context("fork").Pool(workers, initializer=_worker_init)
    finally:
        _JOB = None
        if saved is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = saved


def _pool_results(pool: Any, bounds: list[tuple[int, int]]) -> Generator[Any, None, None]:
    with pool:  # leaving early (an error, Ctrl-C, the iterator dropped) terminates the workers
        yield from pool.imap(_run, bounds)
