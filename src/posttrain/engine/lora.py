"""LoRA through ``peft``: which modules get adapters, and the seeded initialisation.

``train_attn`` adapts the attention projections, ``train_mlp`` the MLP projections, ``train_unembed``
the output head, as the SDK's flags say. ``lora_alpha`` is fixed at 32, so the adapter scale
``alpha / rank`` is 1 at the default rank 32. Adapters start with ``B = 0``, so the model's outputs at
initialisation are exactly the base model's.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from posttrain.errors import PosttrainError

ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")
UNEMBED = ("lm_head",)
LORA_ALPHA = 32


@dataclass(frozen=True)
class LoraSettings:
    rank: int = 32
    train_mlp: bool = True
    train_attn: bool = True
    train_unembed: bool = True

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise PosttrainError(f"LoRA rank must be at least 1, got {self.rank} (use a full fine-tune for rank 0)")
        if not (self.train_mlp or self.train_attn or self.train_unembed):
            raise PosttrainError("LoRA with train_mlp, train_attn and train_unembed all False trains nothing")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def target_modules(self) -> list[str]:
        return [*(ATTN if self.train_attn else ()), *(MLP if self.train_mlp else ()),
                *(UNEMBED if self.train_unembed else ())]


def add_lora(model: Any, settings: LoraSettings, seed: int, base_name: str, adapter: str = "default") -> Any:
    """Wrap ``model`` in a peft LoRA model whose adapter weights are a function of ``seed``; when ``model``
    is one already, add ``adapter`` to it (same seed, same weights: peft draws them in the same order)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=settings.rank, lora_alpha=LORA_ALPHA, lora_dropout=0.0, bias="none",
                        target_modules=settings.target_modules(), base_model_name_or_path=base_name)
    devices = {p.device for p in model.parameters()}
    with torch.random.fork_rng(devices=[d for d in devices if d.type == "cuda"]), warnings.catch_warnings():
        # peft warns about an adapted head tied to the embeddings; merge_lora handles that case
        warnings.filterwarnings("ignore", message=".*tie_word_embeddings.*")
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        # the adapter names its base by hub id while the model was loaded from the cache folder: expected
        warnings.filterwarnings("ignore", message=".*base_model_name_or_path.*was renamed.*")
        torch.manual_seed(seed)
        if hasattr(model, "peft_config"):
            model.add_adapter(adapter, config)
            return model
        return get_peft_model(model, config, adapter_name=adapter)


def merge_lora(peft_model: Any) -> Any:
    """The adapter merged into the weights of ``peft_model`` (pass a copy: it is modified).

    When the head is adapted and tied to the input embeddings, merging into the shared tensor would
    change the embeddings too (the trained model never did), so the head gets its own copy first."""
    base = peft_model.get_base_model()
    head, embed = base.get_output_embeddings(), base.get_input_embeddings()
    head_base = getattr(head, "base_layer", None)
    if head_base is not None and head_base.weight is embed.weight:
        head_base.weight = torch.nn.Parameter(embed.weight.detach().clone(), requires_grad=False)
        base.config.tie_word_embeddings = False
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tie_word_embeddings.*|.*tied.*")
        return peft_model.merge_and_unload()


def save_adapter(peft_model: Any, adapter: str, folder: Path) -> None:
    """``adapter`` as the folder peft loads (peft files a non-default adapter in a subfolder of its
    name; it is moved up, so every saved adapter looks like a single-adapter model's)."""
    peft_model.save_pretrained(str(folder), selected_adapters=[adapter], save_embedding_layers=False)
    if adapter != "default":
        nested = folder / adapter
        for item in nested.iterdir():
            item.replace(folder / item.name)
        nested.rmdir()
