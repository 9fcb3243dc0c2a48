"""Ordered parallel map over row ranges, for CPU-bound per-row work (rendering).

Workers are forked, so they inherit the job (a renderer, an Arrow dataset) instead of receiving it
pickled; only ``(start, stop)`` bounds go out and each chunk's (small) result comes back, in order.
Where ``fork`` is unavailable (Windows, or a platform that forbids it) the work runs in-process.

Each process runs the chunks on one dedicated thread, never on its main thread. With glibc, a
thread allocates from a malloc arena of its own; the main arena is fragmented by everything loaded
before (JSON rows, Arrow buffers, and in a forked worker the parent's heap), and the tokenizers
library's many short-lived allocations cost about a third more CPU there (rendering 5,000
conversations while tuning ``prepare``: 7.2–7.8 CPU s on the main thread, 5.1–6.0 s on a thread of
its own; ``benchmarks/README.md``). In-process, Ctrl-C therefore takes effect when the current chunk
ends (under a second for ``prepare``'s 256 rows).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
ChunkFn = Callable[[int, int], Any]

# The job of the pool being started; forked workers see the parent's value. One job at a time.
_JOB: ChunkFn | None = None
# A worker's chunk thread (see the module docstring), started by the worker's initializer.
_THREAD: ThreadPoolExecutor | None = None


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
    global _THREAD
    _THREAD = ThreadPoolExecutor(1, thread_name_prefix="posttrain-chunks")


def _run(bounds: tuple[int, int]) -> Any:
    assert _JOB is not None and _THREAD is not None
    return _THREAD.submit(_JOB, *bounds).result()


def _in_process(fn: ChunkFn, bounds: list[tuple[int, int]]) -> Generator[Any, None, None]:
    thread = ThreadPoolExecutor(1, thread_name_prefix="posttrain-chunks")
    try:
        for start, stop in bounds:
            yield thread.submit(fn, start, stop).result()
    finally:  # an error, Ctrl-C, the iterator dropped: nothing more runs after the current chunk
        thread.shutdown(wait=True, cancel_futures=True)


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
        return _in_process(fn, bounds)
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
