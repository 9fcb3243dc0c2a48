"""Settings every training recipe shares (model, schedule, LoRA, eval, checkpoints, backend), their
checks, and what goes into ``RUN/config.json``. Names follow tinker-cookbook's ``train.Config``."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

from posttrain.errors import PosttrainError
from posttrain.runs.loop import LoopConfig

C = TypeVar("C", bound="RecipeConfig")


@dataclass
class RecipeConfig(LoopConfig):
    """The loop's settings plus where the data comes from, the backend and the run folder."""

    log_path: str = "runs/train"
    renderer_name: str | None = None  # default: recommended for the model
    dataset: str = "default"
    dataset_path: str | None = None  # a local copy for a named hub dataset
    max_length: int = 2048
    batch_size: int = 8
    test_size: int = 32  # held out from a local file
    backend: str = "local"
    base_url: str | None = None  # backend tinker: a Tinker-compatible server (posttrain serve), not the hosted one
    resume: bool = False
    micro_batch_tokens: int = 8192  # the engine's memory settings (posttrain.engine.forward.MemorySettings)
    gradient_checkpointing: bool | None = None  # None: on when a micro-batch's activations would take over a quarter of free memory
    recipe: str = "train"

    def loop_config(self) -> LoopConfig:
        return LoopConfig(**{f.name: getattr(self, f.name) for f in fields(LoopConfig)})

    def run_config(self, renderer: str, tokenizer: str, bos: int | None, **extra: Any) -> dict[str, Any]:
        """``config.json``: the settings, plus the fields ``parity diff`` compares under its names."""
        cfg = {k: v for k, v in asdict(self).items() if k != "show_progress"}
        cfg.update(renderer=renderer, renderer_name=renderer, tokenizer=tokenizer, bos_token_id=bos,
                   lr=self.learning_rate, shuffle="datasets.Dataset.shuffle(seed)", truncation_side="right", **extra)
        return cfg

    def check(self) -> None:
        """Argument checks that need no file, model or network."""
        for name in ("batch_size", "max_length", "num_epochs", "micro_batch_tokens"):
            if getattr(self, name) < 1:
                raise PosttrainError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("eval_every", "save_every", "lora_rank", "warmup_steps", "test_size"):
            if getattr(self, name) < 0:
                raise PosttrainError(f"{name} must be at least 0, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise PosttrainError(f"max_steps must be at least 1, got {self.max_steps}")
        if not self.learning_rate > 0 or not math.isfinite(self.learning_rate):
            raise PosttrainError(f"learning_rate must be a positive finite number, got {self.learning_rate}")
        if self.backend not in ("local", "tinker"):
            raise PosttrainError(f"backend must be 'local' or 'tinker', got {self.backend!r}")
        if self.backend == "tinker" and self.lora_rank == 0:
            raise PosttrainError("the hosted tinker service trains LoRA only: --lora-rank must be at least 1")


def from_recipe(cls: type[C], recipes: dict[str, dict[str, Any]], name: str, **overrides: Any) -> C:
    """The named recipe's settings with ``overrides`` (None values ignored) on top."""
    if name not in recipes:
        raise PosttrainError(f"unknown {cls.__name__.removesuffix('Config')} recipe {name!r}; known: {', '.join(recipes)}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise PosttrainError(f"unknown setting(s) {unknown}")
    return cls(**{**recipes[name], **{k: v for k, v in overrides.items() if v is not None}, "recipe": name})
