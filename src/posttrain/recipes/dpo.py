"""The DPO recipe: preference pairs and a model in, a DPO-trained run folder out.

Data: ``default`` (the preference pairs shipped with posttrain), a comparisons JSONL file (see
accepted layouts: :func:`posttrain.data.preference.read_comparisons_jsonl`), or a named hub set — ``hh_rlhf``,
``ultrafeedback``, ``ultrafeedback_binarized``, ``arena`` — from the hub or ``--dataset-path``.

Every pair is screened before training. Ties, unreadable rows, pairs whose chosen and rejected are
identical, empty completions, prompts longer than ``max_length`` and pairs that truncation would
leave with no trained token are left out, counted by reason, and listed (with their row) in
``RUN/data_report.json``; none is ever trained on.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from typing import Any

import datasets

from posttrain.data.preference import (
    arena_builder,
    dpo_dataset,
    hhh_builder,
    read_comparison_rows,
    ultrafeedback_binarized_builder,
    ultrafeedback_builder,
)
from posttrain.data.supervised import SupervisedDataset
from posttrain.default_data import DEFAULT, shipped_path
from posttrain.errors import PosttrainError
from posttrain.recipes.common import in_process_group, open_run, setup
from posttrain.recipes.config import RecipeConfig, from_recipe
from posttrain.recipes.pairs import Row, chosen_example, screen_pairs
from posttrain.runs.folder import DATA_REPORT
from posttrain.runs.loop import LoopResult
from posttrain.runs.parity import write_parity
from posttrain.runs.screening import RowReport
from posttrain.settings import at_least, non_empty, positive_finite, setting
from posttrain.training.dpo import DPOLoop

HUB_SETS = {"hh_rlhf": hhh_builder, "ultrafeedback": ultrafeedback_builder,
            "ultrafeedback_binarized": ultrafeedback_binarized_builder, "arena": arena_builder}


@dataclass
class DPOConfig(RecipeConfig):
    """Every knob of ``posttrain train dpo``; ``batch_size`` counts pairs."""

    dataset: str = setting(DEFAULT, "comparisons JSONL, or hh_rlhf, ultrafeedback, ultrafeedback_binarized, arena, "
                           "posttrain:default (the shipped pairs)", flag="--dataset", check=non_empty)
    batch_size: int = setting(8, "pairs per step", flag="--batch-size", kind=int, check=at_least(1))
    beta: float = setting(0.1, "DPO beta (default 0.1)", flag="--beta", kind=float, check=positive_finite)
    recipe: str = "dpo"


RECIPES: dict[str, dict[str, Any]] = {
    # The embedded default: the shipped pairs, SmolLM2-135M-Instruct with LoRA, a short CPU run.
    "default": dict(dataset=DEFAULT, max_length=192, batch_size=8, test_size=40, max_steps=20, eval_every=5,
                    save_every=10, learning_rate=5e-4, lora_rank=16, beta=0.1, log_path="runs/dpo"),
    # tinker-cookbook's DPO defaults (dpo_beta 0.1, lr 1e-5, linear) on hh-rlhf.
    "dpo_basic": dict(dataset="hh_rlhf", max_length=8192, batch_size=256, learning_rate=1e-5, lr_schedule="linear",
                      num_epochs=1, eval_every=10, save_every=20, lora_rank=32, beta=0.1, log_path="runs/dpo_basic"),
}


def dpo_recipe_config(name: str, **overrides: Any) -> DPOConfig:
    return from_recipe(DPOConfig, RECIPES, name, **overrides)


def _rows(cfg: DPOConfig) -> tuple[list[Row], list[Row]]:
    """(train, test) rows with where each came from; a local file is shuffled with datasets' seed 0
    and its first rows (at most a fifth) held out for evaluation."""
    if cfg.dataset in HUB_SETS:
        train, test = HUB_SETS[cfg.dataset](**({"path": cfg.dataset_path} if cfg.dataset_path else {}))()
        return ([(f"{cfg.dataset}[train] row {i}", r) for i, r in enumerate(train, 1)],
                [(f"{cfg.dataset}[test] row {i}", r) for i, r in enumerate(test, 1)])
    path = shipped_path(cfg.dataset, "preferences")
    # an unreadable row is recorded with its reason, and every row after it is still read
    rows: list[Row] = [(f"{path}:{line}", row) for line, row in read_comparison_rows(path)]
    order = datasets.Dataset.from_dict({"i": list(range(len(rows)))}).shuffle(seed=0)["i"]
    held = min(cfg.test_size, len(rows) // 5)
    return [rows[i] for i in order[held:]], [rows[i] for i in order[:held]]


def build_pair_datasets(cfg: DPOConfig, renderer: Any) -> tuple[SupervisedDataset, SupervisedDataset | None,
                                                                 RowReport]:
    train_rows, test_rows = _rows(cfg)
    report = RowReport(max_length=cfg.max_length)
    train = screen_pairs(train_rows, renderer, cfg.max_length, report)
    report.train_rows = len(train)
    if len(train) < cfg.batch_size:
        shown = "; ".join(report.rows[:3]) + (f"; … ({len(report.rows) - 3} more)" if len(report.rows) > 3 else "")
        raise PosttrainError(f"batch size {cfg.batch_size} pairs is larger than the {len(train)} usable training pairs "
                             f"({report.summary()}{': ' + shown if shown else ''}); "
                             + ("lower --batch-size" if train else "fix the data"))
    test = screen_pairs(test_rows, renderer, cfg.max_length, RowReport(max_length=cfg.max_length))
    report.test_rows = len(test)
    train_ds, _ = dpo_dataset(train, renderer, cfg.batch_size, cfg.max_length)
    test_ds = dpo_dataset(test, renderer, len(test), cfg.max_length)[0] if test else None
    return train_ds, test_ds, report


@in_process_group
def run_dpo(cfg: DPOConfig) -> LoopResult:
    s = setup(cfg)
    config = cfg.run_config(s.renderer_name, s.tokenizer_name, s.renderer.tokenizer.bos_token_id,
                            train_on_what="completion", reduction="none", loss_fn="dpo")
    run, (train, test, report) = open_run(cfg, config, s, lambda: build_pair_datasets(cfg, s.renderer))
    with run, closing(s.service):
        run.write_json(DATA_REPORT, report.as_dict())

        def first_batch(datums: list[Any]) -> None:
            write_parity(run.path, config, train, s.renderer, chosen_example(s.renderer), datums, len(datums))

        loop = DPOLoop(cfg.loop_config(), s.service, run, train, test, is_main=s.dist.is_main(),
                       on_first_batch=first_batch, beta=cfg.beta)
        result = loop.run()
        result.extra["data"] = report.as_dict()
    return result
