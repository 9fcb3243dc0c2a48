"""The SFT recipe: a model, a dataset and the loop's knobs in; a trained run folder out.

Everything that can be wrong with the input is checked before the model is loaded or a step runs:
the run folder, the backend's credentials, the renderer against the model's tokenizer, and every
training row (rendered once; the first bad row stops the run with its file and line).

Named recipes (:data:`RECIPES`) are sets of defaults: ``default`` is the embedded quick run (the
shipped conversations, SmolLM2-135M-Instruct with LoRA, a few minutes on 2 CPU cores); ``sl_basic`` is
tinker-cookbook's ``sl_basic`` (no_robots, all assistant messages, lr 2e-4, linear, one epoch).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from posttrain.data.builders import (
    ChatDatasetConfig,
    FromConversationFileBuilder,
    NoRobotsBuilder,
    Tulu3Builder,
)
from posttrain.data.supervised import SupervisedDataset, SupervisedDatasetFromHFDataset, apply_fns
from posttrain.engine.hosted import Backend
from posttrain.errors import PosttrainError
from posttrain.recipes.common import check_renderer_fits, make_backend, model_tokenizer_name, write_parity
from posttrain.renderers import get_recommended_renderer_name
from posttrain.training.run_folder import RunFolder
from posttrain.training.sft import SFTLoop, SFTLoopConfig, SFTResult

NAMED_DATASETS = ("no_robots", "tulu3", "default")


@dataclass
class SFTConfig:
    """Every knob of ``posttrain train sft``; names follow tinker-cookbook's ``train.Config``."""

    log_path: str = "runs/sft"
    model_name: str = "posttrain:smollm2-135m-instruct"
    renderer_name: str | None = None  # default: recommended for the model
    dataset: str = "default"  # a conversations file, hub:ORG/NAME, or no_robots | tulu3 | default (shipped)
    dataset_path: str | None = None  # a local copy for no_robots/tulu3 (anything datasets.load_dataset reads)
    train_on_what: str | None = None  # default: the dataset builder's
    max_length: int = 2048
    batch_size: int = 8
    test_size: int = 32  # held-out conversations, for conversation files
    learning_rate: float = 2e-4
    lr_schedule: str = "linear"
    warmup_steps: int = 0
    num_epochs: int = 1
    max_steps: int | None = None
    lora_rank: int = 32
    eval_every: int = 8
    save_every: int = 20
    seed: int = 0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    adam_eps: float = 1e-8
    weight_decay: float = 0.0
    grad_clip_norm: float = 0.0
    backend: str = "local"
    resume: bool = False
    show_progress: bool = False
    micro_batch_tokens: int = 8192
    recipe: str = "sft"

    def run_config(self, renderer: str, tokenizer: str, bos: int | None, train_on: str) -> dict[str, Any]:
        """``config.json``: the settings, plus the fields ``parity diff`` compares under its names."""
        cfg = {k: v for k, v in asdict(self).items() if k not in ("show_progress",)}
        cfg.update(renderer=renderer, renderer_name=renderer, tokenizer=tokenizer, bos_token_id=bos,
                   train_on_what=train_on, lr=self.learning_rate, shuffle="datasets.Dataset.shuffle(seed)",
                   truncation_side="right", reduction="mean", loss_fn="cross_entropy")
        return cfg


RECIPES: dict[str, dict[str, Any]] = {
    "default": dict(dataset="default", model_name="posttrain:smollm2-135m-instruct", max_length=256, batch_size=8,
                    test_size=32, max_steps=16, eval_every=4, save_every=8, learning_rate=1e-3, lora_rank=32,
                    log_path="runs/default"),
    "sl_basic": dict(dataset="no_robots", max_length=32768, batch_size=128, learning_rate=2e-4, lr_schedule="linear",
                     num_epochs=1, eval_every=8, save_every=20, lora_rank=32, log_path="runs/sl_basic",
                     train_on_what="all_assistant_messages"),
}


def recipe_config(name: str, **overrides: Any) -> SFTConfig:
    if name not in RECIPES:
        raise PosttrainError(f"unknown SFT recipe {name!r}; known: {', '.join(RECIPES)}")
    names = {f.name for f in fields(SFTConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise PosttrainError(f"unknown SFT setting(s) {unknown}")
    return SFTConfig(**{**RECIPES[name], **{k: v for k, v in overrides.items() if v is not None}, "recipe": name})


def check_config(cfg: SFTConfig) -> None:
    """Argument checks that need no file, model or network."""
    positive = {"batch_size": cfg.batch_size, "max_length": cfg.max_length, "num_epochs": cfg.num_epochs,
                "micro_batch_tokens": cfg.micro_batch_tokens}
    for name, value in positive.items():
        if value < 1:
            raise PosttrainError(f"{name} must be at least 1, got {value}")
    for name, value in {"eval_every": cfg.eval_every, "save_every": cfg.save_every, "lora_rank": cfg.lora_rank,
                        "warmup_steps": cfg.warmup_steps, "test_size": cfg.test_size}.items():
        if value < 0:
            raise PosttrainError(f"{name} must be at least 0, got {value}")
    if cfg.max_steps is not None and cfg.max_steps < 1:
        raise PosttrainError(f"max_steps must be at least 1, got {cfg.max_steps}")
    if cfg.learning_rate <= 0:
        raise PosttrainError(f"learning_rate must be positive, got {cfg.learning_rate}")
    if cfg.backend not in ("local", "tinker"):
        raise PosttrainError(f"backend must be 'local' or 'tinker', got {cfg.backend!r}")
    if cfg.backend == "tinker" and cfg.lora_rank == 0:
        raise PosttrainError("the hosted tinker service trains LoRA only: --lora-rank must be at least 1")


def dataset_builder(cfg: SFTConfig, chat: ChatDatasetConfig) -> Any:
    if cfg.dataset == "no_robots":
        return NoRobotsBuilder(chat, **({"path": cfg.dataset_path} if cfg.dataset_path else {}))
    if cfg.dataset == "tulu3":
        return Tulu3Builder(chat, **({"path": cfg.dataset_path} if cfg.dataset_path else {}))
    path = cfg.dataset
    if path == "default":
        from posttrain.default_data import default_dataset_path

        path = str(default_dataset_path())
    return FromConversationFileBuilder(path, chat, test_size=cfg.test_size)


def build_datasets(cfg: SFTConfig, chat: ChatDatasetConfig) -> tuple[SupervisedDataset, SupervisedDataset | None]:
    train, test = dataset_builder(cfg, chat)()
    for ds in (train, test):
        if isinstance(ds, SupervisedDatasetFromHFDataset):
            for row in ds.hf_dataset:  # every row once, so bad data stops the run before any training
                apply_fns([row], ds.map_fn, ds.flatmap_fn)
    if len(train) == 0:
        rows = len(train.hf_dataset) if isinstance(train, SupervisedDatasetFromHFDataset) else 0
        raise PosttrainError(f"batch size {cfg.batch_size} is larger than the training set ({rows} conversations"
                             f"{' after the test split' if test is not None else ''}); lower --batch-size")
    return train, test


def run_sft(cfg: SFTConfig) -> SFTResult:
    """Check everything, build the data, train. Under torchrun every rank calls this; rank 0 owns the
    run folder and the others wait for it at a barrier."""
    from posttrain.training.launch import init_distributed

    dist = init_distributed()
    check_config(cfg)
    backend: Backend = make_backend(cfg.backend, cfg.log_path, cfg.micro_batch_tokens)  # fails fast without a key
    tok_name = model_tokenizer_name(cfg.model_name)
    renderer_name = cfg.renderer_name or get_recommended_renderer_name(cfg.model_name)
    renderer = check_renderer_fits(renderer_name, tok_name, cfg.model_name)
    chat = ChatDatasetConfig(renderer_name=renderer_name, tokenizer=tok_name, max_length=cfg.max_length,
                             batch_size=cfg.batch_size, train_on_what=cfg.train_on_what)
    train_on = str(cfg.train_on_what or ("last_assistant_message" if cfg.dataset == "tulu3" else "all_assistant_messages"))
    config = cfg.run_config(renderer_name, tok_name, renderer.tokenizer.bos_token_id, train_on)
    if dist.is_main():
        RunFolder.open(cfg.log_path, config, cfg.resume, write=False)  # checked before any long work
    train, test = build_datasets(cfg, chat)
    run = RunFolder.open(cfg.log_path, config, cfg.resume) if dist.is_main() else RunFolder(Path(cfg.log_path), config)
    dist.barrier()
    loop_cfg = SFTLoopConfig(**{f.name: getattr(cfg, f.name) for f in fields(SFTLoopConfig)})

    def first_batch(datums: list[Any]) -> None:
        write_parity(run, config, train, renderer, train_on, datums)

    return SFTLoop(loop_cfg, backend, run, train, test, is_main=dist.is_main(), on_first_batch=first_batch).run()
