"""Export a trained model as a folder others load without posttrain.

* **merged** (default): the LoRA adapter merged into the base weights, saved as safetensors with the
  model config, a generation config that stops at the renderer's end-of-turn tokens, the tokenizer
  files and the chat template of the renderer the run trained with — what
  ``transformers.pipeline("text-generation")``, vLLM and TGI load as is.
* **adapter** (``adapter=True``): the PEFT adapter alone, whose ``base_model_name_or_path`` is the
  hub id the base came from (or ``base_model_id``), never a private cache path, plus the tokenizer.

Both write into a sibling folder that is renamed into place at the end, so a failed export leaves
nothing half written; a non-empty target is refused unless ``force``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posttrain.errors import PosttrainError
from posttrain.export.chat_templates import chat_template_for
from posttrain.trained import Trained, load_sampler, sampler_folder

DTYPES = ("float32", "bfloat16", "float16")
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")
EXPORT_META = "posttrain_export.json"


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    kind: str  # "merged" | "adapter"
    base_model_id: str | None
    chat_template_verified: bool


def check_target(out: Path, force: bool) -> None:
    """Refuse a target that is a file, or a non-empty folder without ``force`` (before any work)."""
    if out.exists() and not out.is_dir():
        raise PosttrainError(f"{out} is a file; export into a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise PosttrainError(f"{out} is not empty; pass --force to replace it, or choose another folder")


def export(trained: Trained, out: str | Path, adapter: bool = False, dtype: str | None = None,
           base_model_id: str | None = None, force: bool = False) -> ExportResult:
    """Write ``trained`` to ``out`` (see the module docstring)."""
    target = Path(out).expanduser()
    check_target(target, force)
    if dtype is not None and dtype not in DTYPES:
        raise PosttrainError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if adapter and trained.checkpoint is None:
        raise PosttrainError(f"{trained.spec} is a base model, not a trained checkpoint: there is no adapter to export")
    if adapter and trained.lora is None:
        raise PosttrainError(f"{trained.label} is a full fine-tune, not a LoRA adapter; export it merged")
    with tempfile.TemporaryDirectory(prefix=".posttrain-export-", dir=_parent(target)) as tmp:
        staging = Path(tmp) / "out"
        staging.mkdir()
        write = _write_adapter if adapter else _write_merged
        result = write(trained, staging, dtype, base_model_id)
        _swap_into_place(staging, target)
    return ExportResult(target, result[0], result[1], result[2])


def _parent(target: Path) -> Path:
    parent = target.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    return parent


def _swap_into_place(staging: Path, target: Path) -> None:
    if target.exists():  # checked non-empty with force, or empty
        shutil.rmtree(target)
    staging.rename(target)


def _torch_dtype(name: str | None) -> Any:
    import torch

    return getattr(torch, name) if name is not None else None


def _write_merged(trained: Trained, out: Path, dtype: str | None, _: str | None) -> tuple[str, str | None, bool]:
    client = load_sampler(trained, "cpu", out.parent / "sampler")
    model = client.model
    if dtype is not None:
        model = model.to(_torch_dtype(dtype))
    renderer = _renderer(trained, client.base.tokenizer)
    stops = [s for s in renderer.get_stop_sequences() if isinstance(s, int)]
    if stops:  # pipeline / vLLM / TGI stop generating at the turn's end, as the renderer does
        model.generation_config.eos_token_id = stops[0] if len(stops) == 1 else stops
    model.save_pretrained(str(out))
    verified = _save_tokenizer(trained, client.base, out)
    _write_meta(out, trained, "merged", str(model.dtype).removeprefix("torch."), None, verified)
    return "merged", None, verified


def _write_adapter(trained: Trained, out: Path, dtype: str | None,
                   base_model_id: str | None) -> tuple[str, str | None, bool]:
    from posttrain.engine.models import load_base_model

    base_id = base_model_id or _shareable_base(trained)
    folder = sampler_folder(trained, out.parent / "sampler")
    assert folder is not None  # a checkpoint (checked by export)
    for name in ADAPTER_FILES:
        if not (folder / name).is_file():
            raise PosttrainError(f"{folder}: no {name}; is it a LoRA sampler checkpoint?")
        shutil.copy2(folder / name, out / name)
    config = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base_id
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if dtype is not None:
        _cast_safetensors(out / "adapter_model.safetensors", dtype)
    base = load_base_model(trained.base_model, _cpu(), _torch_dtype(dtype) if dtype else None)
    verified = _save_tokenizer(trained, base, out)
    _write_meta(out, trained, "adapter", dtype or "as trained", base_id, verified)
    return "adapter", base_id, verified


def _cpu() -> Any:
    import torch

    return torch.device("cpu")


def _cast_safetensors(path: Path, dtype: str) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    save_file({k: v.to(_torch_dtype(dtype)).contiguous() for k, v in tensors.items()}, str(path))


def _shareable_base(trained: Trained) -> str:
    """The base's hub id; a base known only by a local (cache) folder needs ``--base-model-id``."""
    from posttrain.engine.models import HUB_IDS
    from posttrain.tokenizer import OFFLINE_PREFIX

    name = trained.base_model
    if name in HUB_IDS:
        return HUB_IDS[name]
    if name.startswith(OFFLINE_PREFIX) or Path(name).expanduser().exists():
        raise PosttrainError(f"base model {name!r} has no hub id to name in the adapter; pass --base-model-id "
                             "(the hub id or folder others load the base from)")
    return name


def _renderer(trained: Trained, tokenizer: Any) -> Any:
    from posttrain.trained import load_renderer

    return load_renderer(trained, tokenizer)


def _save_tokenizer(trained: Trained, base: Any, out: Path) -> bool:
    """The tokenizer files with the renderer's chat template; whether the template is verified."""
    hf = base.hf_tokenizer()
    template = chat_template_for(trained.renderer, getattr(hf, "chat_template", None))
    if template.text is not None:
        hf.chat_template = template.text
    renderer = _renderer(trained, base.tokenizer)
    stops = [s for s in renderer.get_stop_sequences() if isinstance(s, int)]
    if stops:  # the end-of-turn token as eos: pipeline's default stop
        hf.eos_token = base.tokenizer.id_to_token(stops[0]) or hf.eos_token
    hf.save_pretrained(str(out))
    _finish_tokenizer_config(out / "tokenizer_config.json", template.text)
    return template.verified


def _finish_tokenizer_config(path: Path, template: str | None) -> None:
    """Drop what loading from our cache left (``local_files_only``, ``is_local``: meaningless on the
    hub) and put the chat template in the config too: servers built on older ``transformers`` (TGI,
    vLLM) read it there rather than from ``chat_template.jinja``."""
    if not path.is_file():
        return
    config = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        return
    for key in ("local_files_only", "is_local"):
        config.pop(key, None)
    if template is not None:
        config["chat_template"] = template
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_meta(out: Path, trained: Trained, kind: str, dtype: str, base_id: str | None, verified: bool) -> None:
    meta = {"kind": kind, "source": trained.label, "base_model": trained.base_model, "base_model_id": base_id,
            "renderer": trained.renderer, "dtype": dtype, "chat_template_verified": verified}
    (out / EXPORT_META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
