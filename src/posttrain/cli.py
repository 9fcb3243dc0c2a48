"""The ``posttrain`` command line: render, viz, prepare, parity."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO

from posttrain.errors import PosttrainError
from posttrain.jsonl import iter_conversations
from posttrain.messages import Message
from posttrain.renderers import Renderer, default_tokenizer_for, get_renderer, renderer_names
from posttrain.tokenizer import get_tokenizer
from posttrain.train_on_what import TrainOnWhat


def add_renderer_args(p: argparse.ArgumentParser, default: str | None = "llama3") -> None:
    p.add_argument("--renderer", default=default, required=default is None, choices=renderer_names(),
                   help="chat format to render with (default: %(default)s)")
    p.add_argument("--tokenizer", default=None,
                   help="HF hub id, local folder/tokenizer.json, or offline source such as posttrain:llama3 "
                        "(default: the renderer's offline tokenizer)")
    p.add_argument("--train-on", default=TrainOnWhat.LAST_ASSISTANT_MESSAGE.value,
                   choices=[m.value for m in TrainOnWhat], help="which tokens carry loss (default: %(default)s)")


def build_renderer(args: argparse.Namespace) -> Renderer:
    return get_renderer(args.renderer, get_tokenizer(args.tokenizer or default_tokenizer_for(args.renderer)))


@contextmanager
def open_input(path: str | None) -> Iterator[tuple[IO[str], str]]:
    if path is None or path == "-":
        yield sys.stdin, "<stdin>"
    else:
        with open(path, encoding="utf-8") as f:
            yield f, path


def read_conversations(path: str | None) -> Iterator[tuple[int, list[Message]]]:
    with open_input(path) as (stream, source):
        yield from iter_conversations(stream, source=source)


def cmd_render(args: argparse.Namespace) -> int:
    renderer = build_renderer(args)
    out = sys.stdout
    with open_input(args.input) as (stream, source):
        for line, msgs in iter_conversations(stream, source=source):
            try:
                if args.mode == "generation":
                    record: dict[str, object] = {"tokens": renderer.build_generation_prompt(msgs)}
                else:
                    tokens, weights = renderer.build_supervised_example(msgs, args.train_on)
                    record = {"tokens": tokens, "weights": weights}
            except PosttrainError as err:
                raise PosttrainError(f"{source}:{line}: {err}") from err
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from posttrain import __version__
    from posttrain.parity.cli import add_parity_parser
    from posttrain.prepare import add_prepare_parser
    from posttrain.viz import add_viz_parser

    parser = argparse.ArgumentParser(prog="posttrain", description="Post-training data pipeline for chat LLMs.")
    parser.add_argument("--version", action="version", version=f"posttrain {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("render", help="render conversations (JSON lines) to tokens and weights",
                       description="Read {\"messages\": [...]} JSON lines and write one JSON line per input: "
                                   "{\"tokens\", \"weights\"} (supervised) or {\"tokens\"} (generation prompt).")
    p.add_argument("input", nargs="?", help="JSONL file (default: stdin)")
    add_renderer_args(p, default=None)
    p.add_argument("--mode", choices=["supervised", "generation"], default="supervised",
                   help="supervised: tokens + weights; generation: the prompt ending with the assistant header")
    p.set_defaults(func=cmd_render)

    add_viz_parser(sub)
    add_prepare_parser(sub)
    add_parity_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # posttrain never needs torch; silence transformers' "PyTorch was not found" advice on every command.
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PosttrainError as err:
        print(f"posttrain {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
