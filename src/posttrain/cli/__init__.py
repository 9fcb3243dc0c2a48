"""The ``posttrain`` command line.

One module per command; each exposes ``add_parser(subparsers)``, which adds its subparser and sets
``func`` (called with the parsed arguments, returns the exit code). Commands import the library,
never the reverse. To add a command, e.g. ``train``: write ``cli/train.py`` with ``add_parser`` and
add ``"train"`` to :data:`COMMANDS` — nothing else changes.

Errors: a :class:`~posttrain.errors.PosttrainError` prints ``posttrain CMD: error: ...`` (one line,
naming file and line, message and field, or argument) and exits 2; Ctrl-C prints one line and exits
130; a closed output pipe (``| head``) exits quietly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from posttrain.errors import PosttrainError

#: Command modules under ``posttrain.cli``, in ``--help`` order.
COMMANDS: tuple[str, ...] = ("render", "viz", "prepare", "train", "parity", "export", "chat", "sample", "eval", "serve")


def build_parser() -> argparse.ArgumentParser:
    from posttrain import __version__

    parser = argparse.ArgumentParser(prog="posttrain", description="Post-training data pipeline for chat LLMs.")
    parser.add_argument("--version", action="version", version=f"posttrain {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"posttrain.cli.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # posttrain never needs torch; silence transformers' "PyTorch was not found" advice on every command.
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    # datasets logs a read failure before raising it; the CLI reports it once, in its own line.
    os.environ.setdefault("DATASETS_VERBOSITY", "critical")
    command = "posttrain"
    try:
        args = build_parser().parse_args(argv)
        command = f"posttrain {args.command}"
        return int(args.func(args) or 0)
    except PosttrainError as err:
        print(f"{command}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (| head): stop quietly; point stdout at devnull so the interpreter's
        # final flush does not complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split("\n"))
