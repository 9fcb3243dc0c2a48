"""``posttrain sample RUN --prompts FILE``: one reply per prompt (JSON lines), optionally beside the
base model's reply (``--base``), for quick evaluations and side-by-side comparisons."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from posttrain.cli.args import add_model_arg, non_empty, positive_int
from posttrain.errors import PosttrainError
from posttrain.renderers import renderer_names
from posttrain.replies import generate_replies, read_prompt_rows, reply_records, sampling_params, write_jsonl
from posttrain.trained import Trained, load_renderer, load_sampler, resolve


def run(args: argparse.Namespace) -> int:
    trained = resolve(args.model, args.renderer)
    rows = read_prompt_rows(_prompts_path(args.prompts))[:args.limit]
    sampling_params(args.max_tokens, args.temperature, args.seed, None)  # checked before loading
    if args.out and Path(args.out).exists() and not args.force:
        raise PosttrainError(f"{args.out} exists; pass --force to replace it, or choose another file")
    replies = _replies(trained, rows, args)
    base = None
    if args.base:
        base_model = resolve(trained.base_model, trained.renderer)
        base = _replies(base_model, rows, args)
    records = reply_records(rows, replies, base)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            write_jsonl(records, fh)
        print(f"{len(records)} replies → {args.out}", file=sys.stderr)
    else:
        write_jsonl(records, sys.stdout)
    return 0


def _prompts_path(spec: str) -> str:
    from posttrain.default_data import shipped_path

    return shipped_path(spec)  # posttrain:default (or default): the shipped conversations


def _replies(trained: Trained, rows: list[Any], args: argparse.Namespace) -> list[str]:
    sampler = load_sampler(trained)
    renderer = load_renderer(trained, sampler.base.tokenizer)
    out = generate_replies(sampler, renderer, [r.prompt for r in rows], args.max_tokens, args.temperature, args.seed)
    return [text for _, text in out]


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("sample", help="replies of a trained model to a file of prompts",
                       description="Generate one reply per prompt through the run's renderer; JSON lines "
                                   "{line, messages, reference, reply[, base_reply]}.")
    add_model_arg(p)
    p.add_argument("--prompts", required=True, type=non_empty,
                   help="JSONL: {\"messages\"} (a final assistant message is the reference), {\"question\", "
                        "\"answer\"} or {\"prompt\"}; posttrain:default: the shipped conversations")
    p.add_argument("--base", action="store_true", help="also the base model's reply (base_reply)")
    p.add_argument("--out", default=None, type=non_empty, help="output file (default: stdout)")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    p.add_argument("--limit", type=positive_int, default=None, help="the first N prompts only")
    p.add_argument("--max-tokens", type=positive_int, default=256, help="default: %(default)s")
    p.add_argument("--temperature", type=float, default=0.0, help="0: greedy (default)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    p.add_argument("--renderer", choices=renderer_names(), default=None, help="default: the run's renderer")
    p.set_defaults(func=run)
