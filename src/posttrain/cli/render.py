"""``posttrain render``: conversations in, one JSON line of tokens (and weights) out per conversation."""

from __future__ import annotations

import argparse
import json
import sys

from posttrain.cli.args import add_input_arg, add_renderer_args, build_renderer
from posttrain.data.sources import iter_conversations
from posttrain.errors import InputError, PosttrainError


def run(args: argparse.Namespace) -> int:
    renderer = build_renderer(args)
    out = sys.stdout
    source = "<stdin>" if args.input == "-" else args.input
    for line, msgs in iter_conversations(args.input):
        try:
            if args.mode == "generation":
                record: dict[str, object] = {"tokens": renderer.build_generation_prompt(msgs)}
            else:
                tokens, weights = renderer.build_supervised_example(msgs, args.train_on)
                record = {"tokens": tokens, "weights": weights}
        except PosttrainError as err:
            raise InputError(str(err), source=source, line=line) from err
        out.write(json.dumps(record, separators=(",", ":")) + "\n")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("render", help="render conversations to tokens and weights",
                       description="Read conversations ({\"messages\": [...]}) and write one JSON line per input: "
                                   "{\"tokens\", \"weights\"} (supervised) or {\"tokens\"} (generation prompt).")
    add_input_arg(p)
    add_renderer_args(p, default=None)
    p.add_argument("--mode", choices=["supervised", "generation"], default="supervised",
                   help="supervised: tokens + weights; generation: the prompt ending with the assistant header")
    p.set_defaults(func=run)
