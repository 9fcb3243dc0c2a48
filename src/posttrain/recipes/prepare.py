"""The main job: load → render and check every row → shuffle → batch → run folder.

A composition of the library's pieces: :func:`~posttrain.data.sources.load_conversations_with_report`
loads, :func:`~posttrain.data.supervised.conversation_to_datum` (``reduction="none"``) builds each
datum, and :class:`~posttrain.data.supervised.SupervisedDatasetFromHFDataset` orders and batches.

Every row is rendered once (in parallel over ``workers`` processes) to count tokens and to find bad
rows before anything is written: a row that cannot be rendered, or that ``max_length`` leaves with
nothing to train, stops the run with its file and line, or with ``skip_invalid`` is dropped (as if
absent from the input) and counted. The run folder — ``config.json`` and the parity artifacts
``posttrain parity diff`` compares — is then written atomically (:mod:`posttrain.runs.atomic`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any, Literal

import datasets

from posttrain.data.sources import (
    LINE,
    SkipReport,
    load_conversations_with_report,
    source_label,
    with_source_index,
)
from posttrain.data.supervised import (
    SupervisedDatasetFromHFDataset,
    conversation_to_datum,
)
from posttrain.errors import InputError, PosttrainError
from posttrain.parallel import available_cores, ordered_map
from posttrain.progress import progress_bar
from posttrain.renderers import Renderer, default_tokenizer_for, get_renderer, renderer_names
from posttrain.runs.atomic import atomic_run_folder, check_destination
from posttrain.runs.parity import render_conversation, write_parity
from posttrain.runs.screening import Checked, RowReport, check_rows, conversation_check, record
from posttrain.settings import at_least, check_settings, non_empty, setting
from posttrain.tokenizer import get_tokenizer
from posttrain.train_on_what import TrainOnWhat
from posttrain.types import Datum

REDUCTION: Literal["none"] = "none"  # 0/1 weights: the parity payload records what the renderer trains
DEFAULT_INPUT = "posttrain:default_conversations"


@dataclass
class PrepareConfig:
    input: str | None = setting(None, "JSONL/JSON/Parquet/CSV path (optionally .gz), URL, dataset folder, hub:ORG/NAME, "
                                "or '-' for JSON lines on stdin (default: the shipped dataset)", flag="--input",
                                check=non_empty)
    out: str = setting("runs/default", "run folder to write (default: runs/default)", flag="--out", check=non_empty)
    renderer: str = setting("llama3", "chat format to render with (default: llama3)", flag="--renderer",
                            choices=tuple(renderer_names()))
    tokenizer: str | None = setting(None, "HF hub id, local folder/tokenizer.json, or offline source such as "
                                    "posttrain:llama3 (default: the renderer's offline tokenizer)", flag="--tokenizer",
                                    check=non_empty)
    train_on: str = setting(TrainOnWhat.LAST_ASSISTANT_MESSAGE.value, "which tokens carry loss (default: "
                            "last_assistant_message)", flag="--train-on", choices=tuple(m.value for m in TrainOnWhat))
    max_length: int = setting(2048, "tokens per datum (default: 2048)", flag="--max-length", kind=int,
                              check=at_least(2))
    batch_size: int = setting(8, "datums per batch (default: 8)", flag="--batch-size", kind=int, check=at_least(1))
    seed: int = setting(0, "shuffle seed (default: 0)", flag="--seed", kind=int, check=at_least(0))
    n_snapshot: int = setting(8, "samples recorded in the parity snapshot (default: 8)", flag="--n-snapshot", kind=int,
                              check=at_least(0))
    split: str = setting("train", "dataset split for hub/Parquet sources (default: train)", flag="--split",
                         check=non_empty)
    subset: str | None = setting(None, "hub dataset subset (config name)", flag="--subset")
    revision: str | None = setting(None, "hub dataset revision", flag="--revision")
    skip_invalid: bool = setting(False, "skip rows that cannot be read, rendered or trained (counted, with their "
                                 "reasons) instead of stopping at the first", flag="--skip-invalid",
                                 action="store_true")
    workers: int | None = setting(None, "processes rendering in parallel (default: every available core; 1: "
                                  "in-process)", flag="--workers", kind=int, check=at_least(1))


@dataclass
class PrepareSummary:
    run_dir: str
    examples: int
    batches: int
    tokens: int
    trained_tokens: int
    target_tokens: int
    truncated: int
    skipped: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def trained_fraction(self) -> float:
        return self.trained_tokens / self.target_tokens if self.target_tokens else 0.0


def _check_chunk(ds: datasets.Dataset, renderer: Renderer, cfg: PrepareConfig) -> Callable[[int, int], list[Checked]]:
    """Render rows ``[start, stop)`` once, as the datums will be built (in a worker process)."""
    check = conversation_check(renderer, TrainOnWhat.parse(cfg.train_on), cfg.max_length)

    def run(start: int, stop: int) -> list[Checked]:
        chunk = ds[start:stop]
        rows = [(f"row {start + i + 1}", line, {"messages": messages})
                for i, (messages, line) in enumerate(zip(chunk["messages"], chunk[LINE], strict=True))]
        return check_rows(rows, check)

    return run


def _check_rows(ds: datasets.Dataset, renderer: Renderer, cfg: PrepareConfig, source: str, loaded: SkipReport,
                show_progress: bool | None) -> tuple[datasets.Dataset, RowReport, list[str]]:
    """Render every row once (in parallel); drop (skip_invalid) or report the first failing row. Returns
    the rows kept, the report, and every skipped row's reason (the loader's first)."""
    report = RowReport(max_length=cfg.max_length)
    reasons = list(loaded.reasons)
    bad: list[int] = []
    chunks = ordered_map(_check_chunk(ds, renderer, cfg), len(ds), workers=cfg.workers or available_cores())
    with closing(chunks), progress_bar(len(ds), show_progress) as advance:  # closing: stop workers on error
        for checked in chunks:
            offset = len(bad) + report.kept
            for position, err in record(checked, report, source=source, skip_invalid=cfg.skip_invalid):
                bad.append(offset + position)
                reasons.append(str(err))
            advance(len(checked))
    report.train_rows = len(ds) - len(bad)
    if bad:
        bad_set = set(bad)
        ds = ds.select([i for i in range(len(ds)) if i not in bad_set])
    return ds, report, reasons


def _load(cfg: PrepareConfig) -> tuple[datasets.Dataset, str, SkipReport]:
    spec = cfg.input or DEFAULT_INPUT
    ds, report = load_conversations_with_report(spec, split=cfg.split, subset=cfg.subset, revision=cfg.revision,
                                                skip_invalid=cfg.skip_invalid, line_column=LINE)
    source = source_label(spec, cfg.split)  # as load errors name it, so all errors agree
    # Remember each row's position in the input: the snapshot names rows by it, whatever the shuffle.
    return with_source_index(ds), source, report


def _config_json(cfg: PrepareConfig, tok_name: str, renderer: Renderer, n: int) -> dict[str, Any]:
    return {
        "input": cfg.input or DEFAULT_INPUT,
        "renderer": cfg.renderer,
        "tokenizer": tok_name,
        "model_name": tok_name,
        "train_on_what": TrainOnWhat.parse(cfg.train_on).value,
        "reduction": REDUCTION,
        "max_length": cfg.max_length,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "shuffle": "datasets.Dataset.shuffle(seed)",
        "truncation_side": "right",
        "n_snapshot": cfg.n_snapshot,
        "bos_token_id": renderer.tokenizer.bos_token_id,
        "total_count": n,
        "n_batches": n // cfg.batch_size,
    }


def _write(run_dir: Any, cfg: PrepareConfig, tok_name: str, renderer: Renderer, ds: datasets.Dataset,
           source: str) -> None:
    """The run folder: the first batch and the first ``n_snapshot`` rows of epoch ``seed``."""
    train_on = TrainOnWhat.parse(cfg.train_on)

    def to_datum(row: dict[str, Any]) -> Datum:
        try:
            return conversation_to_datum(row["messages"], renderer, cfg.max_length, train_on, REDUCTION)
        except PosttrainError as err:
            raise InputError(str(err), source=source, line=row.get(LINE)) from err

    batches = SupervisedDatasetFromHFDataset(ds, cfg.batch_size, map_fn=to_datum)
    batches.set_epoch(cfg.seed)
    write_parity(run_dir, _config_json(cfg, tok_name, renderer, len(ds)), batches, renderer,
                 render_conversation(renderer, train_on), batches.get_batch(0), cfg.batch_size, cfg.n_snapshot)


def run_prepare(cfg: PrepareConfig, *, show_progress: bool | None = None) -> PrepareSummary:
    start = time.perf_counter()
    check_settings(cfg)
    check_destination(cfg.out)
    tok_name = cfg.tokenizer or default_tokenizer_for(cfg.renderer)
    renderer = get_renderer(cfg.renderer, get_tokenizer(tok_name))
    with atomic_run_folder(cfg.out) as tmp:  # created now: an unwritable --out fails before the work
        ds, source, loaded = _load(cfg)
        ds, report, reasons = _check_rows(ds, renderer, cfg, source, loaded, show_progress)
        n = len(ds)
        if n < cfg.batch_size:
            raise PosttrainError(f"{source}: {n} usable conversations, fewer than one batch of {cfg.batch_size}")
        _write(tmp, cfg, tok_name, renderer, ds, source)
    return PrepareSummary(str(cfg.out), n, n // cfg.batch_size, report.tokens, report.trained, report.targets,
                          report.truncated, len(reasons), time.perf_counter() - start, {"skip_reasons": reasons})
