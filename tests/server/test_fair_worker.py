"""The shared base's worker: each owner's calls in submission order, owners in turn (one call each),
and the fair lock served first come, first served."""

from __future__ import annotations

import threading
import time

from posttrain.engine.shared import FairLock, RoundRobinWorker


def test_owners_take_turns_and_keep_their_own_order():
    worker = RoundRobinWorker("test-worker")
    gate, ran = threading.Event(), []
    first = worker.submit("gate", gate.wait)  # holds the worker while the others queue up
    futures = [worker.submit("a", lambda i=i: ran.append(f"a{i}")) for i in range(4)]
    futures += [worker.submit("b", lambda i=i: ran.append(f"b{i}")) for i in range(2)]
    gate.set()
    for f in [first, *futures]:
        f.result(10)
    assert ran == ["a0", "b0", "a1", "b1", "a2", "a3"]


def test_a_failing_call_fails_only_its_own_future():
    worker = RoundRobinWorker("test-worker")
    bad = worker.submit("a", lambda: 1 / 0)
    good = worker.submit("a", lambda: 42)
    assert isinstance(bad.exception(10), ZeroDivisionError) and good.result(10) == 42


def test_the_fair_lock_is_granted_in_arrival_order_and_is_reentrant():
    lock, order = FairLock(), []
    with lock.held():
        threads = []
        for i in range(4):
            t = threading.Thread(target=lambda i=i: _take(lock, order, i))
            t.start()
            threads.append(t)
            time.sleep(0.05)  # each waiter asks before the next
        with lock.held():  # the holder may take it again
            order.append("nested")
    for t in threads:
        t.join(10)
    assert order == ["nested", 0, 1, 2, 3]


def _take(lock: FairLock, order: list, i: int) -> None:
    with lock.held():
        order.append(i)
