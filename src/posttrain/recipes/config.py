"""Settings every training recipe shares (model, schedule, LoRA, eval, checkpoints, backend), their
checks, and what goes into ``RUN/config.json``. Names follow tinker-cookbook's ``train.Config``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

from posttrain.default_data import DEFAULT, canonical_dataset
from posttrain.errors import PosttrainError
from posttrain.runs.loop import LoopConfig
from posttrain.settings import at_least, check_settings, non_empty, setting

C = TypeVar("C", bound="RecipeConfig")
L = TypeVar("L", bound=LoopConfig)


def on_off_auto(text: str) -> bool | None:
    switch = {"auto": None, "on": True, "off": False}
    if text not in switch:
        raise ValueError(f"expected auto, on or off, got {text!r}")
    return switch[text]


@dataclass
class RecipeConfig(LoopConfig):
    """The loop's settings plus where the data comes from, the backend and the run folder."""

    log_path: str = setting("runs/train", "run folder", flag="--out", check=non_empty)
    renderer_name: str | None = setting(None, "chat format (default: the model's)", flag="--renderer",
                                        check=non_empty)
    dataset: str = setting(DEFAULT, "the data (posttrain:default: the shipped data)", check=non_empty)
    dataset_path: str | None = setting(None, "local copy of a named hub dataset (a folder laid out like the hub "
                                       "repository)", flag="--dataset-path", check=non_empty)
    max_length: int = setting(2048, "tokens per datum", flag="--max-length", kind=int, check=at_least(1))
    batch_size: int = setting(8, "sequences per step", kind=int, check=at_least(1))
    test_size: int = setting(32, "held-out rows of a local file", flag="--test-size", kind=int, check=at_least(0))
    backend: str = setting("local", "local: this machine (torch); tinker: the hosted service or a Tinker-compatible "
                           "server (--base-url; needs TINKER_API_KEY)", flag="--backend", choices=("local", "tinker"))
    base_url: str | None = setting(None, "with --backend tinker: the server's URL, e.g. a posttrain serve",
                                   flag="--base-url", check=non_empty)
    resume: bool = setting(False, "continue the run in --out from its last checkpoint (exactly)", flag="--resume",
                           action="store_true")
    micro_batch_tokens: int = setting(8192, "most tokens per forward pass; larger batches are split (results equal "
                                      "up to rounding)", flag="--micro-batch-tokens", kind=int, check=at_least(1))
    gradient_checkpointing: bool | None = setting(
        None, "recompute activations in backward to save memory (default auto: on when a micro-batch's activations "
        "would take over a quarter of free memory; results equal up to rounding)", flag="--gradient-checkpointing",
        kind=on_off_auto, metavar="{auto,on,off}")
    recipe: str = "train"

    def loop_config(self, cls: type[L] = LoopConfig) -> L:  # type: ignore[assignment]
        """The settings the loop (of class ``cls``) takes, from this recipe's."""
        return cls(**{f.name: getattr(self, f.name) for f in fields(cls)})

    def __post_init__(self) -> None:
        self.dataset = canonical_dataset(self.dataset)

    def run_config(self, renderer: str, tokenizer: str, bos: int | None, **extra: Any) -> dict[str, Any]:
        """``config.json``: the settings, plus the fields ``parity diff`` compares under its names."""
        cfg = {k: v for k, v in asdict(self).items() if k != "show_progress"}
        cfg["log_with"] = list(self.log_with)  # as JSON reads it back
        cfg.update(renderer=renderer, renderer_name=renderer, tokenizer=tokenizer, bos_token_id=bos,
                   lr=self.learning_rate, shuffle="datasets.Dataset.shuffle(seed)", truncation_side="right", **extra)
        return cfg

    def check(self) -> None:
        """Every setting's check, and the ones between settings: all before any file, model or network."""
        check_settings(self)
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
