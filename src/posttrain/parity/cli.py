"""``posttrain parity diff RUN_A RUN_B``."""

from __future__ import annotations

import argparse
import json
import sys

from posttrain.parity.artifacts import read_run
from posttrain.parity.diff import diff_runs
from posttrain.parity.report import render_markdown


def cmd_diff(args: argparse.Namespace) -> int:
    report = diff_runs(read_run(args.run_a), read_run(args.run_b))
    text = (json.dumps(report.to_json(), ensure_ascii=False, indent=1) if args.json else render_markdown(report)) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"{'MATCH' if report.match else 'DIFFERENT'}: report written to {args.out}")
    else:
        sys.stdout.write(text)
    return 0 if report.match else 1


def add_parity_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("parity", help="compare pipeline runs and explain their differences",
                       description="Parity harness: compare the artifacts of two runs (ours or another "
                                   "implementation's) and explain every difference by root cause.")
    psub = p.add_subparsers(dest="parity_command", required=True, metavar="COMMAND")
    d = psub.add_parser("diff", help="compare two run folders",
                        description="Compare RUN_A and RUN_B layer by layer (config, dataset snapshot, rendered "
                                    "samples, first batch, metrics). Exit code 0 only when the runs match.")
    d.add_argument("run_a", metavar="RUN_A", help="run folder (nested parity/ or flat layout)")
    d.add_argument("run_b", metavar="RUN_B", help="run folder to compare against RUN_A")
    d.add_argument("--out", metavar="FILE", help="write the report to FILE instead of stdout")
    d.add_argument("--json", action="store_true", help="machine-readable JSON instead of Markdown")
    d.set_defaults(func=cmd_diff)
