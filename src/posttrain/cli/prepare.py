"""``posttrain prepare``: the main job (see :mod:`posttrain.recipes.prepare`), with a printed summary."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from posttrain.recipes.prepare import PrepareConfig, PrepareSummary, run_prepare
from posttrain.settings import add_flags, overrides


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
    print_summary(run_prepare(PrepareConfig(**overrides(args, PrepareConfig))))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "prepare", help="the main job: load, shuffle, render, build datums and batches, write a run folder",
        description="Load conversations (default: the dataset shipped with posttrain), render and check every "
                    "row, shuffle with --seed, build datums cut at --max-length, batch, and write a run folder "
                    "with config.json and parity/ artifacts (atomically: readers see the old run or the new one).",
    )
    add_flags(p, PrepareConfig)
    p.set_defaults(func=run)
