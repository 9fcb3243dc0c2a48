"""One base model, many LoRA adapters: the memory of N LoRA clients is one base plus N adapters.

A :class:`SharedBase` wraps a loaded :class:`~posttrain.engine.models.BaseModel` in one ``peft`` model
that holds every client's adapter under its own name. Only one adapter is active at a time, so every
piece of work on the model runs inside :meth:`SharedBase.turn`: a first-come, first-served lock that
activates the caller's adapter. Each client still runs its own calls in submission order (its own
worker thread); the lock makes clients take turns call by call, in arrival order, so none starves.

Adapter names are private: parameters are keyed as the single-client engine keys them (adapter name
``default``), so checkpoints of a shared client and of a standalone one are interchangeable.
"""

from __future__ import annotations

import collections
import concurrent.futures
import ctypes
import itertools
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch

from posttrain.engine.futures import EngineFuture, OrderedExecutor
from posttrain.engine.lora import LoraSettings, add_lora
from posttrain.engine.models import BaseModel
from posttrain.errors import PosttrainError

T = TypeVar("T")
DEFAULT_ADAPTER = "default"


class FairLock:
    """A re-entrant lock granted in the order it was asked for (``threading.Lock`` makes no such
    promise). Re-entrant: work running in a turn may call helpers that take the lock too."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._tickets = itertools.count()
        self._serving = 0
        self._owner: int | None = None
        self._depth = 0

    @contextmanager
    def held(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._owner != me:
                ticket = next(self._tickets)
                self._cond.wait_for(lambda: self._serving == ticket)
                self._owner = me
            self._depth += 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None
                    self._serving += 1
                    self._cond.notify_all()


class SharedBase:
    """The base model of ``base``, loaded once, with any number of named LoRA adapters on it."""

    def __init__(self, base: BaseModel):
        self.base = base
        self.model: Any = None  # the peft model, made with the first adapter
        self._lock = FairLock()
        self._names = itertools.count()
        self.worker = RoundRobinWorker("posttrain-shared-base")

    def new_adapter(self, settings: LoraSettings, seed: int) -> str:
        """Add an adapter initialised from ``seed`` (the same weights a standalone client gets)."""
        with self._lock.held():
            name = DEFAULT_ADAPTER if self.model is None else f"adapter_{next(self._names)}"
            self.model = add_lora(self.model if self.model is not None else self.base.model, settings, seed,
                                  self.base.shareable_name, adapter=name)
        return name

    def copy_adapter(self, source: str, tensors: dict[str, torch.Tensor] | None = None) -> str:
        """A frozen copy of adapter ``source`` (a sampler's snapshot), or ``source``'s layout filled
        with ``tensors`` (canonical names, as :func:`adapter_params` keys them)."""
        import copy

        name = f"adapter_{next(self._names)}"
        with self._lock.held(), torch.random.fork_rng(devices=[]), _quiet_peft():  # the init drawn is overwritten
            self.model.add_adapter(name, copy.deepcopy(self.model.peft_config[source]))
            own = adapter_params(self.model, name)
            values = tensors if tensors is not None else adapter_params(self.model, source)
            with torch.no_grad():
                for key, param in own.items():
                    param.copy_(values[key].to(param.device, param.dtype))
                    param.requires_grad_(False)
        return name

    def load_adapter(self, folder: str) -> str:
        """A frozen adapter read from a saved LoRA folder (``save_weights_for_sampler``)."""
        from peft import PeftModel

        with self._lock.held(), _quiet_peft():
            name = f"adapter_{next(self._names)}"
            if self.model is None:
                self.model = PeftModel.from_pretrained(self.base.model, folder, adapter_name=name, is_trainable=False)
            else:
                self.model.load_adapter(folder, adapter_name=name, is_trainable=False)
        return name

    def drop_adapter(self, name: str) -> None:
        with self._lock.held():
            self.model.delete_adapter(name)

    @contextmanager
    def turn(self, adapter: str | None) -> Iterator[None]:
        """Exclusive use of the model with ``adapter`` active (``None``: the base alone)."""
        with self._lock.held():
            if adapter is None:
                if self.model is None:
                    yield
                else:
                    with self.model.disable_adapter():
                        yield
                return
            if adapter not in self.model.peft_config:  # a sampler the server dropped, with a call still queued
                raise PosttrainError(f"adapter {adapter!r} was dropped from {self.base.name}; the client it served "
                                     "is gone")
            self.model.set_adapter(adapter)
            for param in adapter_params(self.model, adapter).values():
                param.requires_grad_(True)
            yield

    def executor(self, adapter: str | None, name: str) -> TurnExecutor:
        return TurnExecutor(self, adapter, name)


def adapter_params(model: Any, adapter: str) -> dict[str, torch.nn.Parameter]:
    """The parameters of ``adapter``, keyed as a single-adapter model names them (adapter ``default``)."""
    marker = f".{adapter}."
    return {name.replace(marker, f".{DEFAULT_ADAPTER}."): p for name, p in model.named_parameters()
            if marker in name}


@contextmanager
def _quiet_peft() -> Iterator[None]:
    """peft's warnings about an adapted head tied to the embeddings (handled at merge time, see
    :func:`~posttrain.engine.lora.merge_lora`) and about the base name we load by ourselves."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tie_word_embeddings.*|.*base_model_name_or_path.*")
        yield


class RoundRobinWorker:
    """The one thread that runs every call on a shared base: each owner's calls in submission order,
    owners in turn, one call each (a client that queued many calls cannot hold the others back).

    One thread rather than one per client: the calls are serialised by the lock anyway, and glibc
    gives every thread its own malloc arena, which keeps that thread's peak activations resident, so
    N client threads held N times one step's memory."""

    def __init__(self, name: str):
        self._name = name
        self._queues: dict[object, collections.deque[tuple[concurrent.futures.Future[Any], Callable[[], Any]]]] = {}
        self._ring: collections.deque[object] = collections.deque()  # owners with queued calls, next first
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, owner: object, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._cond:
            queue = self._queues.setdefault(owner, collections.deque())
            if not queue:
                self._ring.append(owner)
            queue.append((future, fn))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return future

    def _next(self) -> tuple[concurrent.futures.Future[Any], Callable[[], Any]]:
        with self._cond:
            self._cond.wait_for(lambda: bool(self._ring))
            owner = self._ring.popleft()
            queue = self._queues[owner]
            item = queue.popleft()
            if queue:
                self._ring.append(owner)
            else:
                del self._queues[owner]
            return item

    def _loop(self) -> None:
        while True:
            future, fn = self._next()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as err:  # the caller's future carries it
                future.set_exception(err)
            finally:
                release_free_memory()


_libc: Any = None


def release_free_memory() -> None:
    """Give the pages of freed heap memory back to the OS (glibc's ``malloc_trim``; elsewhere nothing).

    Between calls of different clients: glibc keeps what a step freed, in pieces the next client's
    differently sized activations do not fit, so without this the process grew by most of a step's
    activations per client. Costs milliseconds against seconds of compute."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL("libc.so.6") if sys.platform.startswith("linux") else False
        except OSError:
            _libc = False
    if _libc:
        _libc.malloc_trim(0)


class TurnExecutor(OrderedExecutor):
    """A client's calls, run in its turn on the shared model by the base's one worker thread."""

    def __init__(self, shared: SharedBase, adapter: str | None, name: str):
        super().__init__(name)  # its own thread pool stays unused (threads start on first submit)
        self.shared = shared
        self.adapter = adapter

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> EngineFuture[T]:
        def in_turn() -> T:
            start = time.perf_counter()
            try:
                with self.shared.turn(self.adapter):
                    return fn(*args, **kwargs)
            finally:
                self.busy_seconds += time.perf_counter() - start

        return EngineFuture(self.shared.worker.submit(self, in_turn))

    def shutdown(self) -> None:
        """Nothing to stop: the worker belongs to the shared base."""
