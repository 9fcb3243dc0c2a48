"""The SFT recipe: a model, a dataset and the loop's knobs in; a trained run folder out.

Everything that can be wrong with the input is checked before the model is loaded or a step runs:
the run folder, the backend's credentials, the renderer against the model's tokenizer, and every
training row (rendered once; the first bad row stops the run with its file and line).

Named recipes (:data:`RECIPES`) are sets of defaults: ``default`` is the embedded quick run (the
shipped conversations, SmolLM2-135M-Instruct with LoRA, a few minutes on 2 CPU cores); ``sl_basic`` is
tinker-cookbook's ``sl_basic`` (no_robots, all assistant messages, lr 2e-4, linear, one epoch).
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from typing import Any

from posttrain.data.builders import (
    LINE,
    ChatDatasetConfig,
    FromConversationFileBuilder,
    NoRobotsBuilder,
    Tulu3Builder,
)
from posttrain.data.supervised import SupervisedDataset, SupervisedDatasetFromHFDataset
from posttrain.default_data import DEFAULT
from posttrain.errors import PosttrainError
from posttrain.recipes.common import in_process_group, open_run, setup
from posttrain.recipes.config import RecipeConfig, from_recipe
from posttrain.renderers import Renderer
from posttrain.runs.folder import DATA_REPORT
from posttrain.runs.parity import render_conversation, write_parity
from posttrain.runs.screening import RowCheck, RowReport, conversation_check, screen
from posttrain.settings import at_least, non_empty, setting
from posttrain.train_on_what import TrainOnWhat
from posttrain.training.sft import SFTLoop, SFTResult


@dataclass
class SFTConfig(RecipeConfig):
    """Every knob of ``posttrain train sft``. ``dataset``: a conversations file, hub:ORG/NAME, or
    no_robots | tulu3 | default (the shipped conversations)."""

    dataset: str = setting(DEFAULT, "conversations file (JSONL/JSON/Parquet/CSV), hub:ORG/NAME, or no_robots, tulu3, "
                           "posttrain:default (the shipped conversations)", flag="--dataset", check=non_empty)
    batch_size: int = setting(8, "conversations per step", flag="--batch-size", kind=int, check=at_least(1))
    train_on_what: str | None = setting(None, "which tokens carry loss (default: the dataset's)", flag="--train-on",
                                        choices=tuple(m.value for m in TrainOnWhat))
    skip_invalid: bool = setting(False, "leave out rows that cannot be read or rendered (listed in "
                                 "RUN/data_report.json) instead of stopping at the first", flag="--skip-invalid",
                                 action="store_true")
    recipe: str = "sft"


RECIPES: dict[str, dict[str, Any]] = {
    "default": dict(dataset=DEFAULT, model_name="posttrain:smollm2-135m-instruct", max_length=256, batch_size=8,
                    test_size=32, max_steps=16, eval_every=4, save_every=8, learning_rate=1e-3, lora_rank=32,
                    log_path="runs/default"),
    "sl_basic": dict(dataset="no_robots", max_length=32768, batch_size=128, learning_rate=2e-4, lr_schedule="linear",
                     num_epochs=1, eval_every=8, save_every=20, lora_rank=32, log_path="runs/sl_basic",
                     train_on_what="all_assistant_messages"),
}


def recipe_config(name: str, **overrides: Any) -> SFTConfig:
    return from_recipe(SFTConfig, RECIPES, name, **overrides)


def dataset_builder(cfg: SFTConfig, chat: ChatDatasetConfig) -> Any:
    if cfg.dataset == "no_robots":
        return NoRobotsBuilder(chat, path=cfg.dataset_path or NoRobotsBuilder.path)
    if cfg.dataset == "tulu3":
        return Tulu3Builder(chat, path=cfg.dataset_path or Tulu3Builder.path)
    return FromConversationFileBuilder(cfg.dataset, chat, test_size=cfg.test_size, skip_invalid=cfg.skip_invalid)


def build_datasets(cfg: SFTConfig, chat: ChatDatasetConfig, renderer: Renderer,
                   train_on: str) -> tuple[SupervisedDataset, SupervisedDataset | None, RowReport]:
    """(train, test, what they hold). Every row is rendered once, here, so bad data stops the run before
    any training — or, with ``skip_invalid``, is left out and listed. A data set whose every reply is
    empty is refused: it would teach end-of-turn tokens alone."""
    builder = dataset_builder(cfg, chat)
    train, test = builder()
    report = RowReport(max_length=cfg.max_length)
    if cfg.skip_invalid and hasattr(builder, "skipped"):
        report.unreadable(builder.skipped.reasons)
    check = conversation_check(renderer, train_on, cfg.max_length)
    train, test = (_screened(ds, split, check, report, _source(builder, split), cfg.skip_invalid)
                   for split, ds in (("train", train), ("test", test)))
    if report.kept and report.empty_replies == report.kept:
        raise PosttrainError(f"every assistant reply in {cfg.dataset} is empty: the run would learn end-of-turn "
                             "tokens alone")
    if len(train) == 0:
        rows = len(train.hf_dataset) if isinstance(train, SupervisedDatasetFromHFDataset) else 0
        raise PosttrainError(f"batch size {cfg.batch_size} is larger than the training set ({rows} conversations"
                             f"{' after the test split' if test is not None else ''}); lower --batch-size")
    return train, test, report


def _source(builder: Any, split: str) -> str:
    """How errors name a row's source: the file (its lines), or the hub split (rows numbered within it)."""
    file_path = getattr(builder, "file_path", None)
    return str(file_path) if file_path else f"{getattr(builder, 'path', '?')}[{split}]"


def _screened(ds: Any, split: str, check: RowCheck, report: RowReport, source: str, skip_invalid: bool) -> Any:
    if not isinstance(ds, SupervisedDatasetFromHFDataset):
        return ds
    rows = ((f"{split} row {i} (line {row.get(LINE, '?')})", row.get(LINE), row)
            for i, row in enumerate(ds.hf_dataset, start=1))
    bad = {position for position, _ in screen(rows, check, report, source=source, skip_invalid=skip_invalid)}
    setattr(report, f"{split}_rows", len(ds.hf_dataset) - len(bad))  # the rows the split trains or tests on
    if not bad:
        return ds
    keep = [i for i in range(len(ds.hf_dataset)) if i not in bad]
    return SupervisedDatasetFromHFDataset(ds.hf_dataset.select(keep), ds.batch_size, map_fn=ds.map_fn,
                                          flatmap_fn=ds.flatmap_fn)


@in_process_group
def run_sft(cfg: SFTConfig) -> SFTResult:
    """Check everything, build the data, train. Under torchrun every rank calls this."""
    s = setup(cfg)
    chat = ChatDatasetConfig(renderer_name=s.renderer_name, tokenizer=s.tokenizer_name, max_length=cfg.max_length,
                             batch_size=cfg.batch_size, train_on_what=cfg.train_on_what)
    train_on = str(cfg.train_on_what or ("last_assistant_message" if cfg.dataset == "tulu3" else "all_assistant_messages"))
    config = cfg.run_config(s.renderer_name, s.tokenizer_name, s.renderer.tokenizer.bos_token_id,
                            train_on_what=train_on, reduction="mean", loss_fn="cross_entropy")
    run, (train, test, report) = open_run(cfg, config, s, lambda: build_datasets(cfg, chat, s.renderer, train_on))
    with run, closing(s.service):
        run.write_json(DATA_REPORT, report.as_dict())

        def first_batch(datums: list[Any]) -> None:
            write_parity(run.path, config, train, s.renderer, render_conversation(s.renderer, train_on), datums,
                         cfg.batch_size)

        result = SFTLoop(cfg.loop_config(), s.service, run, train, test, is_main=s.dist.is_main(),
                         on_first_batch=first_batch).run()
        result.extra["data"] = report.as_dict()
    return result
