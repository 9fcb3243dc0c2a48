"""The SDK's futures protocol, and the per-model ordering of requests.

Every call answers at once with a request id; the SDK then polls ``retrieve_future`` with it. A result
that is not ready yet is answered with ``{"type": "try_again"}`` after waiting up to
:data:`LONG_POLL_SECONDS` for it (the SDK re-polls at once, so waiting here saves a busy loop and
hands the result over the moment it exists). A failed call answers ``{"error", "category"}``, which the
SDK raises as ``RequestFailedError`` with the engine's message.

Training requests carry ``seq_id``: the SDK numbers each model's requests and may send them out of
order (the chunks of one ``forward_backward`` go in parallel, the first last). :class:`Sequencer`
starts each request only when every lower number has started, so they reach the engine's
submission-ordered worker in the order the program made them.

The SDK also sends a numbered request again when its answer does not come in time (it waits 60 s,
then retries with the same number and body; seen when the SDK's own connection was closed under it
by another thread). :meth:`FutureStore.once` answers such a resend with the first request's id, so
the call runs once and the program goes on; another request under a used number is still refused.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from posttrain.server.protocol import ApiError

LONG_POLL_SECONDS = 20.0
KEEP_RETRIEVED_SECONDS = 300.0  # a retrieved result stays this long, for a poll whose answer was lost

Encoder = Callable[[Any], tuple[str, Any]]  # result -> ("json", dict) or ("protobuf", bytes)


@dataclass
class Pending:
    future: concurrent.futures.Future[Any]
    encode: Encoder
    retrieved_at: float | None = None
    kind: str = ""


@dataclass
class FutureStore:
    items: dict[str, Pending] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # (scope, seq) -> (sha256 of the body, request id): the numbered requests received so far
    sent: dict[tuple[str, int], tuple[str, str]] = field(default_factory=dict)
    sending: threading.Lock = field(default_factory=threading.Lock)

    def once(self, scope: str, seq: int | None, body: bytes, submit: Callable[[], str]) -> str:
        """The request id of request ``seq`` in ``scope`` (a model, a session's models, a sampler):
        ``submit()``'s the first time, the same id for a resend of the same body; a different body under
        a used number is refused. Unnumbered requests are submitted every time."""
        if seq is None:
            return submit()
        digest = hashlib.sha256(body).hexdigest()
        with self.sending:  # held while submitting: a resend racing its original waits for its id
            if len(self.sent) > 2 * len(self.items) + 64:  # forget the numbers of expired requests
                self.sent = {k: v for k, v in self.sent.items() if v[1] in self.items}
            first = self.sent.get((scope, seq))
            if first is None:
                request_id = submit()
                self.sent[(scope, seq)] = (digest, request_id)
                return request_id
        if first[0] != digest:
            raise ApiError(400, f"seq_id {seq} of {scope} was already used by a different request")
        return first[1]

    def add(self, encode: Encoder, kind: str) -> tuple[str, concurrent.futures.Future[Any]]:
        request_id = f"req-{uuid.uuid4().hex}"
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self.lock:
            self._expire()
            self.items[request_id] = Pending(future, encode, kind=kind)
        return request_id, future

    def get(self, request_id: str) -> Pending:
        with self.lock:
            item = self.items.get(request_id)
        if item is None:
            raise ApiError(404, f"unknown future {request_id!r}: no request with this id on this server "
                                "(a server restart forgets pending requests)")
        return item

    async def retrieve(self, request_id: str) -> tuple[str, Any]:
        item = self.get(request_id)
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(item.future)), LONG_POLL_SECONDS)
        except TimeoutError:
            return "json", {"type": "try_again", "request_id": request_id, "queue_state": "active"}
        except concurrent.futures.CancelledError:
            return "json", {"error": f"request {request_id} was cancelled", "category": "user"}
        except Exception as err:  # the engine's one-line message, as the SDK expects a failure
            return "json", {"error": _one_line(err), "category": _category(err)}
        item.retrieved_at = item.retrieved_at or time.monotonic()
        return item.encode(item.future.result())

    def cancel(self, request_id: str) -> bool:
        return self.get(request_id).future.cancel()

    def _expire(self) -> None:
        now = time.monotonic()
        stale = [k for k, v in self.items.items() if v.retrieved_at and now - v.retrieved_at > KEEP_RETRIEVED_SECONDS]
        for key in stale:
            del self.items[key]


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _category(err: BaseException) -> str:
    from posttrain.errors import PosttrainError

    return "user" if isinstance(err, PosttrainError | ValueError) else "server"


class Sequencer:
    """Runs each model's requests in ``seq_id`` order: a request whose predecessors have not all
    arrived waits here (it has its request id already)."""

    def __init__(self, next_seq: int):
        self.next_seq = next_seq
        self._waiting: dict[int, Callable[[], None]] = {}
        self._lock = threading.Lock()

    def submit(self, seq_id: int, start: Callable[[], None]) -> None:
        """``start`` runs (on this thread or a later submitter's) once ``seq_id`` is next."""
        with self._lock:
            if seq_id < self.next_seq or seq_id in self._waiting:
                raise ApiError(400, f"seq_id {seq_id} was already used for this model (next is {self.next_seq})")
            self._waiting[seq_id] = start
            for fn in self._drain():  # under the lock: two submitters never start theirs out of order
                fn()

    def skip(self, seq_id: int) -> None:
        """A refused request: its number is used up, so later ones need not wait for it."""
        self.submit(seq_id, lambda: None)

    def _drain(self) -> list[Callable[[], None]]:
        ready = []
        while self.next_seq in self._waiting:
            ready.append(self._waiting.pop(self.next_seq))
            self.next_seq += 1
        return ready
