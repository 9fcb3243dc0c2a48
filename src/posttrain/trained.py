"""What to use after training: a run folder, a checkpoint folder or a model name, resolved to the
weights to load, the base model they came from and the renderer they were trained with.

* a run folder (``config.json`` + ``checkpoints.jsonl``): its newest sampler checkpoint (the final
  one), else its newest training-state checkpoint; renderer and model from ``config.json``;
* a checkpoint folder (``posttrain_checkpoint.json``): a sampler checkpoint as is, a training-state
  checkpoint through the engine; the renderer from the run folder it sits in, else the one
  recommended for its base model;
* anything else is a base model name (``posttrain:smollm2-135m-instruct``, a hub id, a model folder).

``--renderer`` overrides the renderer in every case. Nothing is loaded by :func:`resolve`: bad input
fails before any weights are read.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posttrain.errors import PosttrainError
from posttrain.runs.checkpoints import STATE_META


@dataclass(frozen=True)
class Trained:
    """A resolved model: ``checkpoint`` is a checkpoint folder (None for a base model by name)."""

    spec: str  # as the user gave it
    base_model: str  # the engine's name of the base model
    renderer: str
    checkpoint: Path | None = None
    kind: str | None = None  # "sampler" | "state" for a checkpoint
    lora: dict[str, Any] | None = None
    run_config: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return str(self.checkpoint) if self.checkpoint is not None else self.base_model


def resolve(spec: str, renderer: str | None = None) -> Trained:
    """Resolve ``spec`` (run folder, checkpoint folder or model name); see the module docstring."""
    if not spec.strip():
        raise PosttrainError("the run, checkpoint or model to use must not be empty")
    path = Path(spec).expanduser()
    if (path / STATE_META).is_file():
        return _from_checkpoint(spec, path, renderer)
    if path.is_dir() and (path / "config.json").is_file() and not _is_model_folder(path):
        return _from_run(spec, path, renderer)
    if path.exists() and not _is_model_folder(path):
        raise PosttrainError(f"{spec}: not a run folder (config.json + checkpoints.jsonl), a checkpoint folder "
                             f"({STATE_META}) or a model folder")
    return Trained(spec=spec, base_model=spec, renderer=renderer or _recommended(spec))


def _is_model_folder(path: Path) -> bool:
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "model_type" in config


def _recommended(model: str) -> str:
    from posttrain.renderers import get_recommended_renderer_name

    try:
        return get_recommended_renderer_name(model)
    except ValueError as err:
        raise PosttrainError(f"{err} (with --renderer)") from None


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads((path / STATE_META).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise PosttrainError(f"{path / STATE_META}: cannot read the checkpoint metadata ({err})") from err
    if not isinstance(meta, dict) or not isinstance(meta.get("base_model"), str) or meta.get("kind") not in (
            "sampler", "state"):
        raise PosttrainError(f"{path / STATE_META}: not a posttrain sampler or state checkpoint")
    return meta


def _from_checkpoint(spec: str, path: Path, renderer: str | None) -> Trained:
    meta = _read_meta(path)
    config: dict[str, Any] = {}
    run = path.parent.parent  # RUN/checkpoints/NAME
    if path.parent.name == "checkpoints" and (run / "config.json").is_file():
        config = run_facts(run)[0]
    chosen = renderer or config.get("renderer") or _recommended(meta["base_model"])
    return Trained(spec=spec, base_model=meta["base_model"], renderer=chosen, checkpoint=path, kind=meta["kind"],
                   lora=meta.get("lora"), run_config=config)


def _from_run(spec: str, run: Path, renderer: str | None) -> Trained:
    config, records = run_facts(run)
    model = config.get("model_name")
    if not isinstance(model, str):
        raise PosttrainError(f"{run / 'config.json'}: no model_name; is {run} a posttrain training run?")
    for key in ("sampler_path", "state_path"):  # the newest sampler checkpoint, else the newest state
        for record in reversed(records):
            folder = _checkpoint_folder(run, record.get(key))
            if folder is not None:
                trained = _from_checkpoint(spec, folder, renderer or config.get("renderer"))
                return Trained(**{**trained.__dict__, "run_config": config})
    raise PosttrainError(f"{run}: the run has no checkpoint yet (checkpoints.jsonl lists none that exists)")


def _checkpoint_folder(run: Path, recorded: Any) -> Path | None:
    """The recorded checkpoint's name under this run's checkpoints/ (the path recorded may be another
    copy's, for a moved or copied run folder), else the recorded path itself."""
    if not isinstance(recorded, str):
        return None
    for folder in (run / "checkpoints" / Path(recorded).name, Path(recorded)):
        if (folder / STATE_META).is_file():
            return folder
    return None


def run_facts(run: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``config.json`` and the ``checkpoints.jsonl`` records of a run folder, read without changing it
    (the one place this module reads the run folder's layout)."""
    from posttrain.runs.log import read_log

    try:
        config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise PosttrainError(f"{run / 'config.json'}: cannot read the run's config ({err})") from err
    if not isinstance(config, dict):
        raise PosttrainError(f"{run / 'config.json'}: not a JSON object")
    return config, read_log(run / "checkpoints.jsonl")


def sampler_folder(trained: Trained, scratch: Path | None = None) -> Path | None:
    """A sampler checkpoint folder for ``trained``: its own, or for a training-state checkpoint one
    written by the engine under ``scratch`` (a new temporary folder by default, left for the caller).
    None for a base model."""
    if trained.checkpoint is None or trained.kind == "sampler":
        return trained.checkpoint
    from posttrain.engine import ServiceClient

    out = scratch or Path(tempfile.mkdtemp(prefix="posttrain-sampler-"))
    service = ServiceClient(checkpoint_dir=out, device="cpu")
    client = service.create_training_client_from_state(str(trained.checkpoint))
    try:
        return Path(client.save_weights_for_sampler("sampler").result().path)
    finally:
        client.close()


def load_sampler(trained: Trained, device: str | None = None, scratch: Path | None = None) -> Any:
    """A :class:`posttrain.engine.SamplingClient` over ``trained``'s weights (``scratch``: see
    :func:`sampler_folder`; by default a training state's sampler folder is removed once loaded)."""
    if trained.kind == "state" and scratch is None:
        with tempfile.TemporaryDirectory(prefix="posttrain-sampler-") as tmp:
            return load_sampler(trained, device, Path(tmp))  # the weights are in memory once loaded
    import torch

    from posttrain.engine import SamplingClient

    folder = sampler_folder(trained, scratch)
    with warnings.catch_warnings():  # peft's notes on the tied head and transformers' deprecations: not the user's
        warnings.filterwarnings("ignore", message=".*tie_word_embeddings.*|.*is_gradient_checkpointing.*")
        return SamplingClient.from_path(str(folder or trained.base_model),
                                        torch.device(device) if device is not None else None)


def load_renderer(trained: Trained, tokenizer: Any) -> Any:
    from posttrain.renderers import get_renderer

    try:
        return get_renderer(trained.renderer, tokenizer)
    except ValueError as err:
        raise PosttrainError(str(err)) from None
