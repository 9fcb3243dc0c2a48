"""Futures with the SDK's shape: ``result()`` and ``await result_async()``.

Every client runs its calls on one worker thread, in submission order. A loop can therefore submit
``forward_backward`` and then ``optim_step`` without waiting, as tinker-cookbook's pipelined loops
do, and the step still applies exactly that batch's gradients.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class EngineFuture(Generic[T]):
    def __init__(self, future: concurrent.futures.Future[T]):
        self._future = future

    def result(self, timeout: float | None = None) -> T:
        return self._future.result(timeout)

    async def result_async(self, timeout: float | None = None) -> T:
        return await asyncio.wait_for(asyncio.wrap_future(self._future), timeout)

    def done(self) -> bool:
        return self._future.done()

    def future(self) -> concurrent.futures.Future[T]:
        """The underlying ``concurrent.futures.Future`` (as the SDK's ``APIFuture.future()``)."""
        return self._future

    def __await__(self) -> Generator[Any, None, T]:
        return self.result_async().__await__()


def completed(value: T) -> EngineFuture[T]:
    future: concurrent.futures.Future[T] = concurrent.futures.Future()
    future.set_result(value)
    return EngineFuture(future)


class OrderedExecutor:
    """One worker thread: calls run one at a time, in the order they were submitted."""

    def __init__(self, name: str):
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self.busy_seconds = 0.0  # time spent running calls: what a benchmark compares wall time against

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> EngineFuture[T]:
        def timed() -> T:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.busy_seconds += time.perf_counter() - start

        return EngineFuture(self._pool.submit(timed))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
