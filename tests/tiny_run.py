"""A tiny SFT run shared by the after-training tests (export, chat, sample, eval): made once per
test process, through the library's SFT entry point, on 24 shipped conversations."""

from __future__ import annotations

from pathlib import Path

import pytest

from posttrain.default_data import default_dataset_path

TINY = "posttrain:tiny-smollm2"
_RUNS: dict[str, Path] = {}


def conversations_file(folder: Path, n: int = 24) -> Path:
    path = folder / "conv.jsonl"
    if not path.exists():
        path.write_text("".join(default_dataset_path().read_text().splitlines(keepends=True)[:n]))
    return path


def tiny_run(factory: pytest.TempPathFactory) -> Path:
    """A finished 6-step LoRA run on the tiny model (lr high enough that it learns in 6 steps)."""
    if "run" not in _RUNS:
        from posttrain.recipes.sft import recipe_config, run_sft

        folder = factory.mktemp("tiny_run")
        out = folder / "run"
        run_sft(recipe_config("default", model_name=TINY, dataset=str(conversations_file(folder)), log_path=str(out),
                              batch_size=4, test_size=4, max_length=128, max_steps=6, eval_every=0, save_every=0,
                              learning_rate=1e-2, lora_rank=8))
        _RUNS["run"] = out
    return _RUNS["run"]
