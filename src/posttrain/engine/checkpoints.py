"""Checkpoints on local disk, written atomically.

A training-state checkpoint is a folder::

    posttrain_checkpoint.json   format, kind ("state" | "sampler"), base model, LoRA settings, step
    weights.safetensors         the trainable parameters (the LoRA adapter, or the whole model)
    optimizer.pt                AdamW state (state checkpoints)

A sampler checkpoint is a folder that ``transformers`` (full fine-tune) or ``peft`` (LoRA adapter, with
``base_model_name_or_path`` pointing at a loadable base) read as is, plus ``posttrain_checkpoint.json``.

Folders are written beside the target and swapped into place (:func:`posttrain.runs.atomic.atomic_run_folder`),
so a crash leaves either no checkpoint or a whole one. Loading reads and checks everything before touching the model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from posttrain.errors import PosttrainError
from posttrain.runs.atomic import atomic_run_folder
from posttrain.runs.checkpoints import STATE_META

META = STATE_META  # the run records check for it (posttrain.runs.checkpoints)
WEIGHTS = "weights.safetensors"
OPTIMIZER = "optimizer.pt"
FORMAT = 1


class CheckpointError(PosttrainError, ValueError):
    """A checkpoint cannot be written or loaded; the message names the path and the reason."""


def write_atomically(target: Path, write: Callable[[Path], None], overwrite: bool = False) -> None:
    """Call ``write(tmp_folder)``, then swap the folder into ``target`` (see :mod:`posttrain.runs.atomic`)."""
    if target.exists() and not overwrite:
        raise CheckpointError(f"checkpoint {target} already exists; pass overwrite=True or choose another name")
    try:
        with atomic_run_folder(target) as tmp:
            write(tmp)
    except OSError as err:  # a full disk, a lost mount: the folder swap never happened, the old one stands
        raise CheckpointError(f"cannot write checkpoint {target}: {err.strerror or err}; nothing was replaced") from err


def write_meta(folder: Path, meta: Mapping[str, Any]) -> None:
    (folder / META).write_text(json.dumps({"format": FORMAT, **meta}, indent=2, sort_keys=True))


def read_meta(path: str | Path) -> dict[str, Any]:
    folder = Path(path)
    if not folder.exists():
        raise CheckpointError(f"no checkpoint at {folder}: the path does not exist")
    meta_file = folder / META
    if not meta_file.is_file():
        raise CheckpointError(f"{folder} is not a posttrain checkpoint: it has no {META}")
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{meta_file}: corrupt checkpoint metadata ({err})") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_file}: unknown checkpoint format {meta.get('format') if isinstance(meta, dict) else meta!r}")
    return meta


def check_compatible(path: str | Path, meta: Mapping[str, Any], base_model: str, lora: Mapping[str, Any] | None) -> None:
    if meta.get("base_model") != base_model:
        raise CheckpointError(f"checkpoint {path} is from base model {meta.get('base_model')!r}, "
                              f"but this client trains {base_model!r}")
    if meta.get("lora") != (dict(lora) if lora is not None else None):
        raise CheckpointError(f"checkpoint {path} has LoRA settings {meta.get('lora')}, this client has {lora}")


def save_tensors(folder: Path, tensors: Mapping[str, torch.Tensor]) -> None:
    save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, str(folder / WEIGHTS))


def load_tensors(path: str | Path, expected: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors, checked to match ``expected`` by name and shape."""
    file = Path(path) / WEIGHTS
    try:
        tensors = load_file(str(file))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{file}: cannot read the weights ({err})") from err
    missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{file}: parameters do not match the model (missing {missing[:3]}, unexpected {extra[:3]})")
    for k, t in expected.items():
        if tuple(tensors[k].shape) != tuple(t.shape):
            raise CheckpointError(f"{file}: {k} has shape {tuple(tensors[k].shape)}, the model's is {tuple(t.shape)}")
    return tensors


def load_optimizer_state(path: str | Path) -> dict[str, Any]:
    file = Path(path) / OPTIMIZER
    if not file.is_file():
        raise CheckpointError(f"{path} holds no optimizer state (it was saved as weights only)")
    try:
        return torch.load(str(file), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt pickles
        raise CheckpointError(f"{file}: cannot read the optimizer state ({err})") from err
