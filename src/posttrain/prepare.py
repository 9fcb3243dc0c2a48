"""``posttrain prepare``: the main job. Load → shuffle → render → datums → batch → run folder.

The run folder holds ``config.json`` and the parity artifacts (``parity/dataset_snapshot.json``,
``parity/rendered_samples.json``, ``parity/first_batch_payload.json``) that ``posttrain parity diff``
compares against another implementation's run.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field, fields
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from posttrain.data.sources import SkipReport, load_conversations_with_report
from posttrain.datum import Datum, datum_from_tokens_weights
from posttrain.errors import InputError, PosttrainError
from posttrain.messages import to_messages
from posttrain.renderers import default_tokenizer_for, get_renderer
from posttrain.tokenizer import get_tokenizer
from posttrain.train_on_what import TrainOnWhat

SOURCE_INDEX = "__source_index__"


@dataclass
class PrepareConfig:
    input: str | None = None  # None: the dataset shipped with posttrain
    out: str = "runs/default"
    renderer: str = "llama3"
    tokenizer: str | None = None
    train_on: str = TrainOnWhat.LAST_ASSISTANT_MESSAGE.value
    max_length: int = 2048
    batch_size: int = 8
    seed: int = 0
    n_snapshot: int = 8
    split: str = "train"
    subset: str | None = None
    revision: str | None = None
    skip_invalid: bool = False


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


def _load(cfg: PrepareConfig) -> tuple[Any, str, SkipReport]:
    if cfg.input is None:
        from posttrain.default_data import default_dataset_path

        spec = str(default_dataset_path())
    else:
        spec = cfg.input
    ds, report = load_conversations_with_report(spec, split=cfg.split, subset=cfg.subset, revision=cfg.revision,
                                                skip_invalid=cfg.skip_invalid)
    return ds, spec, report


def run_prepare(cfg: PrepareConfig, *, show_progress: bool | None = None) -> PrepareSummary:
    start = time.perf_counter()
    tok_name = cfg.tokenizer or default_tokenizer_for(cfg.renderer)
    renderer = get_renderer(cfg.renderer, get_tokenizer(tok_name))
    train_on = TrainOnWhat.parse(cfg.train_on)
    ds, spec, report = _load(cfg)
    n = len(ds)
    if n < cfg.batch_size:
        raise PosttrainError(f"{spec}: {n} conversations, fewer than one batch of {cfg.batch_size}")
    # Remember each row's position in the input, then shuffle rows exactly as datasets does.
    ds = ds.add_column(SOURCE_INDEX, list(range(n))).shuffle(seed=cfg.seed)

    snapshot: list[tuple[int, list[dict[str, Any]]]] = []
    rendered: list[tuple[list[int], list[float], str]] = []
    first_batch: list[Datum] = []
    tokens = trained = targets = truncated = 0
    progress = Progress(TextColumn("rendering"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        disable=not (sys.stderr.isatty() if show_progress is None else show_progress),
                        transient=True)
    with progress:
        task = progress.add_task("render", total=n)
        for position, row in enumerate(ds):
            source_index = row[SOURCE_INDEX]
            where = f"{spec}: row {source_index}"
            try:
                msgs = to_messages(row["messages"])
                ex = renderer.build_supervised_example(msgs, train_on)
            except PosttrainError as err:
                raise InputError(str(err), source=spec, line=source_index + 1) from err
            try:
                datum = datum_from_tokens_weights(ex.tokens, ex.weights, cfg.max_length)
            except PosttrainError as err:
                raise PosttrainError(f"{where}: {err}") from err
            tokens += len(ex.tokens)
            truncated += len(ex.tokens) > cfg.max_length
            targets += len(datum)
            trained += int((datum.weights > 0).sum())
            if position < cfg.n_snapshot:
                snapshot.append((source_index, [m.to_dict() for m in msgs]))
                rendered.append((ex.tokens, ex.weights, renderer.tokenizer.decode(ex.tokens)))
            if position < cfg.batch_size:
                first_batch.append(datum)
            progress.advance(task)

    config = {
        "input": cfg.input or "posttrain:default_conversations",
        "renderer": cfg.renderer,
        "tokenizer": tok_name,
        "model_name": tok_name,
        "train_on_what": train_on.value,
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
    from posttrain.parity.artifacts import write_run

    run_dir = write_run(cfg.out, config=config, total_count=n, snapshot=snapshot, rendered=rendered,
                        batch_size=cfg.batch_size, datums=first_batch)
    return PrepareSummary(str(run_dir), n, n // cfg.batch_size, tokens, trained, targets, truncated, report.skipped,
                          time.perf_counter() - start, {"skip_reasons": report.reasons})


def print_summary(s: PrepareSummary) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"posttrain prepare → {s.run_dir}", show_header=False)
    rows = [
        ("examples", f"{s.examples:,}"),
        ("batches", f"{s.batches:,} (last partial batch dropped)"),
        ("tokens", f"{s.tokens:,}"),
        ("trained tokens", f"{s.trained_tokens:,} of {s.target_tokens:,} targets ({s.trained_fraction:.1%})"),
        ("truncated", f"{s.truncated:,}"),
        ("skipped rows", f"{s.skipped:,}"),
        ("time", f"{s.seconds:.2f} s"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    console = Console()
    console.print(table)
    for reason in s.extra.get("skip_reasons", []):
        print(f"skipped: {reason}")  # plain lines: one per row, greppable


def cmd_prepare(args: argparse.Namespace) -> int:
    names = {f.name for f in fields(PrepareConfig)}
    cfg = PrepareConfig(**{k: v for k, v in vars(args).items() if k in names})
    print_summary(run_prepare(cfg))
    return 0


def add_prepare_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from posttrain.cli import add_renderer_args

    d = PrepareConfig()
    p = sub.add_parser(
        "prepare", help="the main job: load, shuffle, render, build datums and batches, write a run folder",
        description="Load conversations (default: the dataset shipped with posttrain), shuffle with --seed, render "
                    "with --renderer, build datums cut at --max-length, batch, and write a run folder with "
                    "config.json and parity/ artifacts.",
    )
    p.add_argument("--input", help="JSONL/Parquet/CSV path, fsspec URL, or hub dataset (see README); "
                                   "default: the shipped dataset")
    p.add_argument("--out", default=d.out, help="run folder to write (default: %(default)s)")
    add_renderer_args(p)
    p.add_argument("--max-length", type=int, default=d.max_length, help="tokens per datum (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="datums per batch (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="shuffle seed (default: %(default)s)")
    p.add_argument("--n-snapshot", type=int, default=d.n_snapshot,
                   help="samples recorded in the parity snapshot (default: %(default)s)")
    p.add_argument("--split", default=d.split, help="dataset split for hub/Parquet sources (default: %(default)s)")
    p.add_argument("--subset", default=None, help="hub dataset subset (config name)")
    p.add_argument("--revision", default=None, help="hub dataset revision")
    p.add_argument("--skip-invalid", action="store_true",
                   help="skip malformed rows (reported with their reasons) instead of stopping")
    p.set_defaults(func=cmd_prepare)
