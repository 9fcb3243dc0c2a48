"""ordered_map: chunk results in order, in-process or in forked workers, always off the main thread."""

from __future__ import annotations

import multiprocessing
import os
import threading

import pytest

from posttrain.parallel import chunk_bounds, ordered_map


def _chunk_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("posttrain-chunks")]


def _describe(start: int, stop: int) -> tuple[int, int, int, bool]:
    return start, stop, os.getpid(), threading.current_thread() is threading.main_thread()


@pytest.mark.parametrize("workers", [1, 3])
def test_chunks_come_back_in_order_off_the_main_thread(workers):
    results = list(ordered_map(_describe, 1000, workers=workers, chunk_rows=7))
    assert [(a, b) for a, b, _, _ in results] == chunk_bounds(1000, 7)
    assert [b for _, b, _, _ in results][-1] == 1000
    # The chunk thread has its own malloc arena (see posttrain.parallel); the main thread never runs a chunk.
    assert not any(on_main for _, _, _, on_main in results)
    pids = {pid for _, _, pid, _ in results}
    assert (pids == {os.getpid()}) if workers == 1 else (os.getpid() not in pids)
    assert _chunk_threads() == []  # the in-process thread ends with the map


def test_without_fork_chunks_run_in_process_off_the_main_thread(monkeypatch):
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    results = list(ordered_map(_describe, 100, workers=4, chunk_rows=30))
    assert [(a, b) for a, b, _, _ in results] == chunk_bounds(100, 30)
    assert {pid for _, _, pid, _ in results} == {os.getpid()}
    assert not any(on_main for _, _, _, on_main in results)


class ChunkFailed(Exception):
    pass


def _fail_at_300(start: int, stop: int) -> int:
    if start <= 300 < stop:
        raise ChunkFailed(f"row 300 in [{start}, {stop})")
    return stop - start


@pytest.mark.parametrize("workers", [1, 2])
def test_an_error_in_a_chunk_reaches_the_caller_after_the_chunks_before_it(workers):
    seen = []
    with pytest.raises(ChunkFailed, match=r"row 300 in \[300, 350\)"):
        for rows in ordered_map(_fail_at_300, 1000, workers=workers, chunk_rows=50):
            seen.append(rows)
    assert seen == [50] * 6
    assert _chunk_threads() == []


def test_closing_early_runs_no_further_chunk_in_process():
    ran = []

    def record(start: int, stop: int) -> int:
        ran.append(start)
        return start

    results = ordered_map(record, 100, workers=1, chunk_rows=10)
    assert [next(results), next(results)] == [0, 10]
    assert _chunk_threads() != []
    results.close()
    assert ran == [0, 10]
    assert _chunk_threads() == []
