"""The futures store on its own (no server process): a numbered request is submitted once, however
often it is sent; resends racing each other get one request id."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable

import pytest

from posttrain.server.futures import FutureStore
from posttrain.server.protocol import ApiError


def counting_submit(store: FutureStore) -> tuple[list[str], Callable[[], str]]:
    submitted: list[str] = []

    def submit() -> str:
        request_id, _ = store.add(lambda r: ("json", r), "Test")
        submitted.append(request_id)
        return request_id

    return submitted, submit


def test_a_resend_gets_the_first_id_and_is_not_submitted_again():
    store = FutureStore()
    submitted, submit = counting_submit(store)
    first = store.once("model-a", 1, b"body", submit)
    assert store.once("model-a", 1, b"body", submit) == first
    assert submitted == [first]
    assert store.once("model-b", 1, b"body", submit) != first  # numbers are per scope
    assert store.once("model-a", 2, b"body", submit) != first
    assert len(submitted) == 3


def test_another_body_under_a_used_number_is_refused():
    store = FutureStore()
    _, submit = counting_submit(store)
    store.once("model-a", 1, b"body", submit)
    with pytest.raises(ApiError, match="seq_id 1 of model-a was already used by a different request") as err:
        store.once("model-a", 1, b"other body", submit)
    assert err.value.status == 400


def test_unnumbered_requests_are_submitted_every_time():
    store = FutureStore()
    submitted, submit = counting_submit(store)
    assert store.once("sampler", None, b"body", submit) != store.once("sampler", None, b"body", submit)
    assert len(submitted) == 2


def test_a_refused_submission_records_nothing():
    store = FutureStore()

    def refuse() -> str:
        raise ApiError(400, "refused")

    with pytest.raises(ApiError, match="refused"):
        store.once("model-a", 1, b"body", refuse)
    assert store.sent == {}


def test_resends_racing_each_other_are_submitted_once():
    store = FutureStore()
    submitted: list[str] = []
    inside = threading.Event()

    def slow_submit() -> str:
        inside.set()
        request_id, _ = store.add(lambda r: ("json", r), "Test")
        submitted.append(request_id)
        return request_id

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: store.once("model-a", 1, b"body", slow_submit), range(8)))
    assert inside.is_set() and len(set(ids)) == 1 and submitted == ids[:1]
