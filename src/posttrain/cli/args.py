"""Argument types and options shared by the commands. Types reject bad values while parsing, before
anything is loaded, with argparse's usual ``argument --x: ...`` message (exit 2)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from posttrain.renderers import Renderer, default_tokenizer_for, get_renderer, renderer_names
from posttrain.tokenizer import get_tokenizer
from posttrain.train_on_what import TrainOnWhat


def int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


positive_int = int_at_least(1)


def non_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def add_renderer_args(p: argparse.ArgumentParser, default: str | None = "llama3") -> None:
    p.add_argument("--renderer", default=default, required=default is None, choices=renderer_names(),
                   help="chat format to render with (default: %(default)s)")
    p.add_argument("--tokenizer", default=None, type=non_empty,
                   help="HF hub id, local folder/tokenizer.json, or offline source such as posttrain:llama3 "
                        "(default: the renderer's offline tokenizer)")
    p.add_argument("--train-on", default=TrainOnWhat.LAST_ASSISTANT_MESSAGE.value,
                   choices=[m.value for m in TrainOnWhat], help="which tokens carry loss (default: %(default)s)")


def build_renderer(args: argparse.Namespace) -> Renderer:
    return get_renderer(args.renderer, get_tokenizer(args.tokenizer or default_tokenizer_for(args.renderer)))


def add_input_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", nargs="?", default="-",
                   help="conversations: JSONL/JSON/Parquet/CSV path (optionally .gz), URL, dataset folder or "
                        "hub:ORG/NAME; '-' or nothing: JSON lines on stdin")


def add_model_arg(p: argparse.ArgumentParser) -> None:
    """The trained model a command reads: a run folder (its final weights), a checkpoint folder, or a model."""
    p.add_argument("model", type=non_empty, metavar="RUN_OR_MODEL",
                   help="a run folder (its final weights), a checkpoint folder, or a model name or folder")
