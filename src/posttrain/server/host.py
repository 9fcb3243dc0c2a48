"""The engine behind the server: base models loaded once, training models and samplers on them.

Every LoRA training client and every sampler of one base model is an adapter on that base's single
copy (:class:`~posttrain.engine.shared.SharedBase`). Each training model runs its calls in its own
submission order; the shared base's fair lock interleaves the models call by call.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posttrain.engine import SamplingClient, ServiceClient, TrainingClient
from posttrain.engine import checkpoints as ckpt
from posttrain.engine.lora import LoraSettings
from posttrain.engine.shared import SharedBase
from posttrain.errors import PosttrainError
from posttrain.server.futures import Encoder, FutureStore, Sequencer
from posttrain.server.paths import TinkerPaths
from posttrain.server.protocol import ApiError

DEFAULT_SEED = 0  # a LoRA client created without a seed: reproducible, and posttrain train's default
# Snapshot samplers (save_weights_and_get_sampling_client) kept per training model: an RL loop makes one
# per step, and each holds an adapter; older ones are dropped (their session id then answers 404).
MAX_SNAPSHOTS = 8


class AdapterSampler(SamplingClient):
    """A sampler on the shared base: ``adapter`` active (``None``: the base model alone)."""

    def __init__(self, shared: SharedBase, adapter: str | None, model_path: str | None):
        with shared.turn(adapter):  # the start-up probes run the shared model
            super().__init__(shared.base.model, shared.base, model_path)
        self._executor = shared.executor(adapter, "posttrain-sample")
        self.adapter = adapter


@dataclass
class Model:
    model_id: str
    base_model: str
    client: TrainingClient
    sequencer: Sequencer
    snapshots: collections.deque[str] = field(default_factory=collections.deque)


@dataclass
class Sampler:
    sampler_id: str
    base_model: str
    model_path: str | None
    client: AdapterSampler


class Host:
    def __init__(self, models: list[str], state_dir: Path, device: str | None = None):
        self.state_dir = state_dir
        self.paths = TinkerPaths(state_dir)
        self.service = ServiceClient(checkpoint_dir=state_dir / "scratch", device=device)
        self.bases: dict[str, SharedBase] = dict(self._load(spec) for spec in models)
        self.tokenizer_dirs = {name: self._tokenizer_dir(name) for name in self.bases}
        self.futures = FutureStore()
        self.sessions: set[str] = set()
        self.models: dict[str, Model] = {}
        self.samplers: dict[str, Sampler] = {}
        self._loaded: dict[tuple[str, int], tuple[str, str]] = {}  # sampler paths' adapters, by folder version
        self._lock = threading.Lock()
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="posttrain-serve")

    def _load(self, spec: str) -> tuple[str, SharedBase]:
        """``NAME`` or ``NAME=SOURCE``: SOURCE (a local folder, posttrain: name or hub id) served as NAME,
        e.g. a tiny local model under a hub id that client code looks up in its own tables."""
        name, _, source = spec.partition("=")
        shared = self.service.shared_base(source or name)
        if source:
            shared.base = dataclasses.replace(shared.base, name=name)
        return name, shared

    def _tokenizer_dir(self, name: str) -> str:
        """A folder ``AutoTokenizer`` loads offline: the SDK's ``get_tokenizer`` reads it (get_info)."""
        folder = self.state_dir / "tokenizers" / hashlib.sha256(name.encode()).hexdigest()[:16]
        if not (folder / "tokenizer_config.json").is_file():
            self.bases[name].base.hf_tokenizer().save_pretrained(str(folder))
        return str(folder)

    # -- lookups ----------------------------------------------------------------------------------
    def base(self, name: str | None) -> SharedBase:
        if name is None or name not in self.bases:
            raise ApiError(404, f"base model {name!r} is not served here; this server serves: {', '.join(self.bases)}")
        return self.bases[name]

    def model(self, model_id: str) -> Model:
        found = self.models.get(model_id)
        if found is None:
            raise ApiError(404, f"unknown model {model_id!r}: no training model with this id on this server")
        return found

    def sampler(self, sampler_id: str) -> Sampler:
        found = self.samplers.get(sampler_id)
        if found is None:
            raise ApiError(404, f"unknown sampling session {sampler_id!r} on this server (a training model keeps "
                                f"its {MAX_SNAPSHOTS} newest snapshot samplers)")
        return found

    def check_session(self, session_id: str) -> None:
        if session_id not in self.sessions:
            raise ApiError(404, f"unknown session {session_id!r}: create one first (a server restart forgets sessions)")

    def new_session(self) -> str:
        session_id = f"session-{uuid.uuid4().hex[:16]}"
        with self._lock:
            self.sessions.add(session_id)
        return session_id

    # -- futures ------------------------------------------------------------------------------------
    def run(self, fn: Callable[[], Any], encode: Encoder, kind: str) -> str:
        """``fn`` on the server's pool; its result (or error) becomes the future's."""
        request_id, future = self.futures.add(encode, kind)
        self.pool.submit(_settle, future, fn)
        return request_id

    def chain(self, engine_future: Any, encode: Encoder, kind: str,
              then: Callable[[Any], Any] | None = None) -> str:
        """A request id for an engine future (``then`` maps its result)."""
        request_id, future = self.futures.add(encode, kind)
        _link(engine_future.future(), future, then)
        return request_id

    def failed(self, err: BaseException, kind: str) -> str:
        request_id, future = self.futures.add(lambda r: ("json", r), kind)
        future.set_exception(err)
        return request_id

    # -- training models ------------------------------------------------------------------------
    def create_model(self, session_id: str, model_seq_id: int, base_model: str, lora: LoraSettings,
                     seed: int | None) -> str:
        self.check_session(session_id)
        shared = self.base(base_model)
        model_id = self._claim_model_id(session_id, model_seq_id)

        def create() -> dict[str, Any]:
            client = self._client(shared, lora, seed)
            self.models[model_id] = Model(model_id, base_model, client, Sequencer(next_seq=1))
            return {"model_id": model_id, "type": "create_model"}

        return self.run(create, lambda r: ("json", r), "CreateModel")

    def _claim_model_id(self, session_id: str, model_seq_id: int) -> str:
        model_id = f"{session_id}:train:{model_seq_id}"
        with self._lock:
            if model_id in self.models:
                raise ApiError(400, f"model {model_id!r} already exists (model_seq_id {model_seq_id} was used)")
        return model_id

    def _client(self, shared: SharedBase, lora: LoraSettings, seed: int | None) -> TrainingClient:
        chosen = seed if seed is not None else DEFAULT_SEED
        return TrainingClient(shared.base, lora=lora, seed=chosen, checkpoint_dir=self.state_dir / "scratch",
                              memory=self.service.memory, shared=shared)

    def create_from_state(self, session_id: str, model_seq_id: int, path: str, optimizer: bool,
                          base_model: str | None) -> str:
        """``create_training_client_from_state[_with_optimizer]``: the load is the model's request 0."""
        self.check_session(session_id)
        folder, meta = self._state(path)
        if base_model is not None and base_model != meta.get("base_model"):
            raise ApiError(400, f"checkpoint {path} is from base model {meta.get('base_model')!r}, not {base_model!r}")
        shared = self.base(meta.get("base_model"))
        if not meta.get("lora"):
            raise ApiError(400, f"checkpoint {path} is a full fine-tune; this server trains LoRA only")
        model_id = self._claim_model_id(session_id, model_seq_id)
        lora = LoraSettings(**meta["lora"])

        def create() -> dict[str, Any]:
            client = self._client(shared, lora, 0)
            loading = client.load_state_with_optimizer(str(folder)) if optimizer else client.load_state(str(folder))
            loading.result()
            self.models[model_id] = Model(model_id, meta["base_model"], client, Sequencer(next_seq=1))
            return {"path": path, "model_id": model_id, "type": "load_weights"}

        return self.run(create, lambda r: ("json", r), "LoadWeights")

    def _state(self, path: str) -> tuple[Path, dict[str, Any]]:
        folder = self.paths.resolve(path)
        return folder, _checkpoint_meta(folder, path, "state", "not a training state (save_state)")

    def state_for(self, model: Model, path: str) -> Path:
        """The folder of ``path``, checked to fit ``model`` (base model and LoRA settings): a 400 now."""
        folder, meta = self._state(path)
        lora = model.client.lora.as_dict() if model.client.lora else None
        try:
            ckpt.check_compatible(path, meta, model.client.base.name, lora)
        except PosttrainError as err:
            raise ApiError(400, str(err)) from err
        return folder

    def in_order(self, model: Model, seq_id: int | None, kind: str, submit: Callable[[], Any], encode: Encoder,
                 then: Callable[[Any], Any] | None = None, *, body: bytes,
                 check: Callable[[], object] | None = None) -> str:
        """Submit a model's request when its turn (``seq_id``) comes. ``check`` refuses it at once (4xx),
        using up its number so that later requests need not wait for it; a resend of the request (same
        number, same ``body``) gets the first one's request id (:meth:`FutureStore.once`)."""

        def first() -> str:
            if check is not None:
                try:
                    check()
                except PosttrainError:
                    if seq_id is not None:
                        model.sequencer.skip(seq_id)
                    raise
            request_id, future = self.futures.add(encode, kind)

            def start() -> None:
                try:
                    _link(submit().future(), future, then)
                except BaseException as err:  # checked at submission: the request fails, the model is unchanged
                    if not future.done():
                        future.set_exception(err)

            if seq_id is None:
                start()
            else:
                model.sequencer.submit(seq_id, start)
            return request_id

        return self.futures.once(model.model_id, seq_id, body, first)

    def save_sampler_snapshot(self, model: Model) -> Callable[[], Any]:
        """The engine job that copies the model's adapter into a frozen sampler adapter, in order."""
        shared = model.client.shared
        assert shared is not None and model.client.adapter is not None
        adapter = model.client.adapter
        return lambda: model.client._executor.submit(shared.copy_adapter, adapter)

    def register_sampler(self, base_model: str, adapter: str | None, model_path: str | None) -> str:
        sampler_id = f"sampler-{uuid.uuid4().hex[:16]}"
        client = AdapterSampler(self.base(base_model), adapter, model_path)
        with self._lock:
            self.samplers[sampler_id] = Sampler(sampler_id, base_model, model_path, client)
        return sampler_id

    def register_snapshot(self, model: Model, adapter: str) -> str:
        """A sampler over a copy of ``model``'s adapter; the oldest beyond :data:`MAX_SNAPSHOTS` go."""
        sampler_id = self.register_sampler(model.base_model, adapter, None)
        model.snapshots.append(sampler_id)
        while len(model.snapshots) > MAX_SNAPSHOTS:
            self._drop_sampler(model.snapshots.popleft())
        return sampler_id

    def _drop_sampler(self, sampler_id: str) -> None:
        with self._lock:
            sampler = self.samplers.pop(sampler_id, None)
        if sampler is not None and sampler.client.adapter is not None:
            self.base(sampler.base_model).drop_adapter(sampler.client.adapter)

    def sampler_from_path(self, path: str) -> tuple[str, str]:
        """``(base model, adapter)`` for a ``tinker://…/sampler_weights/…`` folder: loaded once per
        version of the folder (a path saved again is loaded again)."""
        folder = self.paths.resolve(path)
        key = (path, (folder / ckpt.META).stat().st_mtime_ns if (folder / ckpt.META).exists() else 0)
        if key in self._loaded:
            return self._loaded[key]
        meta = _checkpoint_meta(folder, path, "sampler", "sample from save_weights_for_sampler's")
        shared = self.base(meta.get("base_model"))
        self._loaded[key] = (meta["base_model"], shared.load_adapter(str(folder)))
        return self._loaded[key]


def _settle(future: concurrent.futures.Future[Any], fn: Callable[[], Any]) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(fn())
    except BaseException as err:
        future.set_exception(err)


def _link(source: concurrent.futures.Future[Any], target: concurrent.futures.Future[Any],
          then: Callable[[Any], Any] | None) -> None:
    def done(src: concurrent.futures.Future[Any]) -> None:
        if target.done():
            return
        try:
            value = src.result()
            target.set_result(then(value) if then else value)
        except BaseException as err:
            target.set_exception(err)

    source.add_done_callback(done)
    # a cancelled request (the SDK's cancel_future) drops the engine call too, if it has not started
    target.add_done_callback(lambda t: source.cancel() if t.cancelled() else None)


def _checkpoint_meta(folder: Path, path: str, kind: str, hint: str) -> dict[str, Any]:
    """The metadata of the checkpoint at ``path``, which must be a ``kind`` checkpoint (else a 400 with ``hint``)."""
    try:
        meta = ckpt.read_meta(folder)
    except PosttrainError as err:
        raise ApiError(400, f"{path}: {err}") from err
    if meta.get("kind") != kind:
        raise ApiError(400, f"{path} is a {meta.get('kind')} checkpoint; {hint}")
    return meta
