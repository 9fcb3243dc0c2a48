"""``posttrain export RUN_OR_CHECKPOINT OUT``: a merged model folder (or, with ``--adapter``, a PEFT
adapter) that plain ``transformers`` / ``peft``, vLLM and TGI load, with the run's chat template."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from posttrain.cli.args import non_empty
from posttrain.export import DTYPES, export, push_to_hub
from posttrain.export.folder import check_target
from posttrain.export.hub import check_repo_id
from posttrain.renderers import renderer_names
from posttrain.trained import resolve


def run(args: argparse.Namespace) -> int:
    trained = resolve(args.source, args.renderer)  # checked before anything is loaded
    check_target(Path(args.out), args.force)
    if args.push_to_hub:
        check_repo_id(args.push_to_hub)
    result = export(trained, args.out, adapter=args.adapter, dtype=args.dtype, base_model_id=args.base_model_id,
                    force=args.force)
    what = f"adapter for {result.base_model_id}" if result.kind == "adapter" else "merged model"
    print(f"{result.folder}: {what} from {trained.label} (renderer {trained.renderer})")
    if not result.chat_template_verified:
        print(f"note: no chat template is verified for renderer {trained.renderer}; the base tokenizer's own "
              "was kept", file=sys.stderr)
    if args.push_to_hub:
        print(f"uploaded: {push_to_hub(result.folder, args.push_to_hub, private=not args.public)}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("export", help="export a trained model (merged or adapter) for transformers, vLLM, TGI",
                       description="Write a model folder others load without posttrain: merged safetensors "
                                   "weights, config, tokenizer and the chat template of the run's renderer; or, "
                                   "with --adapter, the PEFT adapter naming its base by hub id.")
    p.add_argument("source", type=non_empty, metavar="RUN_OR_CHECKPOINT",
                   help="a run folder (its final sampler checkpoint), a checkpoint folder, or a base model name")
    p.add_argument("out", type=non_empty, metavar="OUT", help="the folder to write (must be empty or absent)")
    p.add_argument("--adapter", action="store_true", help="write the LoRA adapter (PEFT) instead of merged weights")
    p.add_argument("--dtype", choices=DTYPES, default=None,
                   help="weights' dtype (default: as trained; bfloat16 halves a float32 model)")
    p.add_argument("--base-model-id", default=None, type=non_empty,
                   help="what the adapter names as its base (default: the base's hub id)")
    p.add_argument("--renderer", choices=renderer_names(), default=None,
                   help="chat template of this renderer (default: the run's)")
    p.add_argument("--force", action="store_true", help="replace a non-empty OUT")
    p.add_argument("--push-to-hub", default=None, metavar="ORG/NAME", help="upload the folder to the HF Hub")
    p.add_argument("--public", action="store_true", help="with --push-to-hub: a public repo (default private)")
    p.set_defaults(func=run)
