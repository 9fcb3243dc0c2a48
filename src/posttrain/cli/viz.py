"""``posttrain viz``: rendered conversations with the trained tokens highlighted (terminal or HTML)."""

from __future__ import annotations

import argparse
from itertools import islice

from rich.console import Console

from posttrain.cli.args import add_input_arg, add_renderer_args, build_renderer, positive_int
from posttrain.data.sources import iter_conversations
from posttrain.errors import InputError, PosttrainError
from posttrain.renderers import SupervisedExample
from posttrain.viz import html_view, rich_view


def run(args: argparse.Namespace) -> int:
    renderer = build_renderer(args)
    source = "<stdin>" if args.input == "-" else args.input
    examples: list[tuple[str, SupervisedExample]] = []
    for line, msgs in islice(iter_conversations(args.input), args.limit):
        try:
            examples.append((f"line {line}", renderer.build_supervised_example(msgs, args.train_on)))
        except PosttrainError as err:
            raise InputError(str(err), source=source, line=line) from err
    if args.html:
        try:
            with open(args.html, "w", encoding="utf-8") as f:
                f.write(html_view(renderer, examples))
        except OSError as err:
            raise PosttrainError(f"--html {args.html}: cannot write: {err.strerror or err}") from err
        print(f"wrote {args.html} ({len(examples)} conversations)")
        return 0
    console = Console(force_terminal=args.color, highlight=False)
    for title, ex in examples:
        n_trained = sum(1 for w in ex.weights if w > 0)
        console.rule(f"{title}: {len(ex.tokens)} tokens, {n_trained} trained ({renderer.name})")
        console.print(rich_view(renderer, ex))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("viz", help="show rendered conversations with trained tokens highlighted",
                       description="Render conversations and show each token, trained tokens highlighted, "
                                   "to check loss masks by eye.")
    add_input_arg(p)
    add_renderer_args(p)
    p.add_argument("--html", metavar="FILE", help="write an HTML page instead of terminal output")
    p.add_argument("--limit", type=positive_int, default=5, help="conversations to show (default: %(default)s)")
    p.add_argument("--color", action="store_true", default=None, help="force terminal colors (e.g. when piping)")
    p.set_defaults(func=run)
