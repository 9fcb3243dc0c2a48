"""``posttrain eval RUN --dataset FILE``: NLL (and accuracy on question → answer tasks) of a trained
model and of its base model, in one table, so the fine-tune's effect is plain."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from posttrain.cli.args import add_model_arg, non_empty, positive_int
from posttrain.evaluation import EvalSettings, Scores, comparison_rows, evaluate, load_dataset
from posttrain.renderers import renderer_names
from posttrain.train_on_what import TrainOnWhat
from posttrain.trained import Trained, load_renderer, load_sampler, resolve


def run(args: argparse.Namespace) -> int:
    trained = resolve(args.model, args.renderer)
    data = load_dataset(args.dataset, limit=args.limit)  # checked before any model loads
    settings = EvalSettings.from_run(trained.run_config, train_on_what=args.train_on, max_length=args.max_length,
                                     max_tokens=args.max_tokens)
    tuned = _scores(trained, data, settings)
    base = None if args.no_base or trained.checkpoint is None else _scores(
        resolve(trained.base_model, trained.renderer), data, settings)
    if args.json:
        print(json.dumps({"model": trained.label, "base_model": trained.base_model, "dataset": data.label,
                          "tuned": tuned.as_dict(), "base": base.as_dict() if base else None}))
        return 0
    table = Table(title=f"posttrain eval · {data.label}")
    for column in ("metric", trained.spec, f"base: {trained.base_model}", "change"):
        table.add_column(column)
    for row in comparison_rows(tuned, base):
        table.add_row(*row)
    Console().print(table)
    return 0


def _scores(trained: Trained, data: object, settings: EvalSettings) -> Scores:
    sampler = load_sampler(trained)
    return evaluate(sampler, load_renderer(trained, sampler.base.tokenizer), data, settings)  # type: ignore[arg-type]


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("eval", help="NLL and accuracy of a trained model against its base model",
                       description="Mean NLL on conversations (as training's test/nll, and per trained token) "
                                   "and accuracy on question/answer tasks, for the model and its base.")
    add_model_arg(p)
    p.add_argument("--dataset", required=True, type=non_empty,
                   help="JSONL of {\"messages\"} and/or {\"question\", \"answer\"} rows; posttrain:default (the "
                        "shipped conversations) or 'arithmetic' (the RL env's addition problems)")
    p.add_argument("--limit", type=positive_int, default=None, help="the first N rows only")
    p.add_argument("--no-base", action="store_true", help="skip the base model")
    p.add_argument("--train-on", choices=[m.value for m in TrainOnWhat], default=None,
                   help="which tokens the NLL covers (default: the run's)")
    p.add_argument("--max-length", type=positive_int, default=None, help="truncation (default: the run's)")
    p.add_argument("--max-tokens", type=positive_int, default=64, help="reply length for accuracy (default: %(default)s)")
    p.add_argument("--renderer", choices=renderer_names(), default=None, help="default: the run's renderer")
    p.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    p.set_defaults(func=run)
