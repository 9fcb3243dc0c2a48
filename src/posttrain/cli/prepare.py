"""``posttrain prepare``: the main job (see :mod:`posttrain.prepare`), with a printed summary."""

from __future__ import annotations

import argparse
from dataclasses import fields

from rich.console import Console
from rich.table import Table

from posttrain.cli.args import add_renderer_args, int_at_least, non_empty, non_negative_int, positive_int
from posttrain.prepare import PrepareConfig, PrepareSummary, run_prepare


def print_summary(s: PrepareSummary) -> None:
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
    Console().print(table)
    for reason in s.extra.get("skip_reasons", []):
        print(f"skipped: {reason}")  # plain lines: one per row, greppable


def run(args: argparse.Namespace) -> int:
    names = {f.name for f in fields(PrepareConfig)}
    cfg = PrepareConfig(**{k: v for k, v in vars(args).items() if k in names})
    print_summary(run_prepare(cfg))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    d = PrepareConfig()
    p = sub.add_parser(
        "prepare", help="the main job: load, shuffle, render, build datums and batches, write a run folder",
        description="Load conversations (default: the dataset shipped with posttrain), render and check every "
                    "row, shuffle with --seed, build datums cut at --max-length, batch, and write a run folder "
                    "with config.json and parity/ artifacts (atomically: readers see the old run or the new one).",
    )
    p.add_argument("--input", type=non_empty,
                   help="JSONL/JSON/Parquet/CSV path (optionally .gz), URL, dataset folder, hub:ORG/NAME, or '-' "
                        "for JSON lines on stdin (default: the shipped dataset)")
    p.add_argument("--out", default=d.out, type=non_empty, help="run folder to write (default: %(default)s)")
    add_renderer_args(p)
    p.add_argument("--max-length", type=int_at_least(2), default=d.max_length,
                   help="tokens per datum (default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size,
                   help="datums per batch (default: %(default)s)")
    p.add_argument("--seed", type=non_negative_int, default=d.seed, help="shuffle seed (default: %(default)s)")
    p.add_argument("--n-snapshot", type=non_negative_int, default=d.n_snapshot,
                   help="samples recorded in the parity snapshot (default: %(default)s)")
    p.add_argument("--split", default=d.split, help="dataset split for hub/Parquet sources (default: %(default)s)")
    p.add_argument("--subset", default=None, help="hub dataset subset (config name)")
    p.add_argument("--revision", default=None, help="hub dataset revision")
    p.add_argument("--skip-invalid", action="store_true",
                   help="skip rows that cannot be read, rendered or trained (counted, with their reasons) "
                        "instead of stopping at the first")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="processes rendering in parallel (default: every available core; 1: in-process)")
    p.set_defaults(func=run)
