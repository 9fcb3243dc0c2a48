"""``posttrain train sft|dpo``: the training recipes (see :mod:`posttrain.recipes`).

``posttrain train sft`` alone runs the embedded default (the shipped conversations, SmolLM2-135M-Instruct
with LoRA, a few minutes on a laptop CPU); ``--recipe sl_basic`` starts from tinker-cookbook's
``sl_basic`` settings. Every flag overrides the recipe's value. Under ``torchrun`` the same command runs
data-parallel.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import fields

from rich.console import Console
from rich.table import Table

from posttrain.cli.args import non_empty, non_negative_int, positive_int
from posttrain.recipes.dpo import RECIPES as DPO_RECIPES
from posttrain.recipes.dpo import DPOConfig, dpo_recipe_config, run_dpo
from posttrain.recipes.rl import ENVS, RLConfig, rl_recipe_config, run_distill, run_rl
from posttrain.recipes.rl import RECIPES as RL_RECIPES
from posttrain.recipes.sft import RECIPES as SFT_RECIPES
from posttrain.recipes.sft import SFTConfig, recipe_config, run_sft
from posttrain.runs.loop import LoopResult
from posttrain.train_on_what import TrainOnWhat
from posttrain.training.schedule import SCHEDULES


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {value}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def print_summary(result: LoopResult, out: str, curves: list[tuple[str, str, str | None]]) -> None:
    """``curves``: (label, metric key, final-eval key or None) — first value → last (or final eval)."""
    rows = result.metrics
    table = Table(title=f"posttrain train → {out}", show_header=False)
    table.add_row("steps", f"{result.steps}")
    for label, key, final_key in curves:
        values = [r[key] for r in rows if key in r]
        if values:
            last = result.final_eval.get(final_key, values[-1]) if final_key else values[-1]
            table.add_row(label, f"{values[0]:.4f} → {last:.4f}" + (" (final weights)" if final_key else ""))
    table.add_row("tokens", f"{int(sum(r.get('num_tokens', 0) for r in rows)):,}")
    table.add_row("time", f"{result.seconds:.1f} s" + (f" ({result.extra['note']})" if "note" in result.extra else ""))
    table.add_row("metrics", f"{out}/metrics.jsonl")
    if result.plot_path:
        table.add_row("plot", result.plot_path)
    if result.final_sampler_path:
        table.add_row("weights", f"{result.final_sampler_path} (loads with transformers / peft)")
    Console().print(table)


def _quiet_libraries() -> None:
    """transformers draws its own progress bars (GGUF conversion, weight loading); ours is the one to read."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def _overrides(args: argparse.Namespace, cls: type) -> dict[str, object]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def run_sft_command(args: argparse.Namespace) -> int:
    _quiet_libraries()
    cfg = recipe_config(args.recipe, **_overrides(args, SFTConfig))
    result = run_sft(cfg)
    if cfg.show_progress:
        print_summary(result, cfg.log_path, [("train NLL", "train_mean_nll", None), ("test NLL", "test/nll", "test/nll")])
        data = result.extra.get("data")
        if data:
            print(f"data: {data['train_rows']} train / {data['test_rows']} test conversations; "
                  f"{data['truncated']} cut at --max-length {data['max_length']} ({data['trained_tokens_cut']} trained "
                  f"tokens lost); {data['empty_replies']} with empty replies; {data['skipped']} skipped as invalid "
                  f"(rows in {cfg.log_path}/data_report.json)")
    return 0


def run_dpo_command(args: argparse.Namespace) -> int:
    _quiet_libraries()
    cfg = dpo_recipe_config(args.recipe, **_overrides(args, DPOConfig))
    result = run_dpo(cfg)
    if cfg.show_progress:
        print_summary(result, cfg.log_path, [("DPO loss", "dpo_loss", None), ("test DPO loss", "test/dpo_loss",
                                                                             "test/dpo_loss"),
                                             ("test accuracy", "test/accuracy", "test/accuracy")])
        data = result.extra.get("data", {})
        print(f"pairs: {data.get('kept', 0)} kept, skipped {data.get('skipped') or 'none'} "
              f"(rows and reasons in {cfg.log_path}/data_report.json)")
    return 0


def on_off_auto(value: str) -> bool | None:
    switch = {"auto": None, "on": True, "off": False}
    if value not in switch:
        raise argparse.ArgumentTypeError(f"expected auto, on or off, got {value!r}")
    return switch[value]


def add_common_args(p: argparse.ArgumentParser, recipes: dict[str, dict[str, object]], what: str) -> None:
    p.add_argument("--recipe", choices=sorted(recipes), default="default",
                   help=f"settings to start from (default: %(default)s); every flag overrides them. {what}")
    p.add_argument("--model", dest="model_name", type=non_empty,
                   help="HF hub id, local model folder, or posttrain:smollm2-135m-instruct / posttrain:tiny-llama3 / "
                        "posttrain:tiny-smollm2")
    p.add_argument("--renderer", dest="renderer_name", type=non_empty, help="chat format (default: the model's)")
    p.add_argument("--dataset-path", type=non_empty, help="local copy of a named hub dataset (a folder laid out like "
                                                          "the hub repository)")
    p.add_argument("--max-length", type=positive_int, help="tokens per datum")
    p.add_argument("--test-size", type=non_negative_int, help="held-out rows of a local file")
    p.add_argument("--lr", dest="learning_rate", type=positive_float, help="peak learning rate")
    p.add_argument("--lr-schedule", choices=SCHEDULES, help="learning-rate schedule")
    p.add_argument("--warmup-steps", type=non_negative_int, help="linear warmup steps")
    p.add_argument("--epochs", dest="num_epochs", type=positive_int, help="passes over the data")
    p.add_argument("--max-steps", type=positive_int, help="stop after this many steps")
    p.add_argument("--lora-rank", type=non_negative_int, help="LoRA rank; 0 = full fine-tune (local only)")
    p.add_argument("--eval-every", type=non_negative_int, help="evaluate every N steps (0: never)")
    p.add_argument("--save-every", type=non_negative_int, help="checkpoint every N steps (0: final only)")
    p.add_argument("--seed", type=non_negative_int, help="LoRA initialisation seed")
    p.add_argument("--grad-clip-norm", type=positive_float, help="clip the global gradient norm")
    p.add_argument("--micro-batch-tokens", type=positive_int,
                   help="most tokens per forward pass; larger batches are split (default 8192; results equal up to rounding)")
    p.add_argument("--gradient-checkpointing", type=on_off_auto, metavar="{auto,on,off}",
                   help="recompute activations in backward to save memory (default auto: on when a micro-batch's "
                        "activations would take over a quarter of free memory; results equal up to rounding)")
    p.add_argument("--backend", choices=("local", "tinker"),
                   help="local: this machine (torch); tinker: the hosted service (needs TINKER_API_KEY)")
    p.add_argument("--resume", action="store_true", default=None,
                   help="continue the run in --out from its last checkpoint (exactly)")
    p.add_argument("--out", dest="log_path", type=non_empty, help="run folder")
    p.add_argument("--quiet", dest="show_progress", action="store_false", default=True,
                   help="no progress bar or summary")


def add_sft_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("sft", help="supervised fine-tuning (tinker-cookbook's SFT loop)",
                       description="Fine-tune on conversations with cross-entropy on the trained tokens. Writes "
                                   "RUN/config.json, metrics.jsonl, checkpoints.jsonl, checkpoints/, curves.png and "
                                   "parity/ artifacts.")
    add_common_args(p, SFT_RECIPES, "default: shipped conversations, SmolLM2-135M, LoRA, 16 steps; sl_basic: "
                                    "tinker-cookbook's (no_robots, lr 2e-4, linear, 1 epoch)")
    p.add_argument("--dataset", type=non_empty,
                   help="conversations file (JSONL/JSON/Parquet/CSV), hub:ORG/NAME, or no_robots, tulu3, default")
    p.add_argument("--train-on", dest="train_on_what", choices=[m.value for m in TrainOnWhat],
                   help="which tokens carry loss (default: the dataset's)")
    p.add_argument("--batch-size", type=positive_int, help="conversations per step")
    p.add_argument("--skip-invalid", action="store_true", default=None,
                   help="leave out rows that cannot be read or rendered (listed in RUN/data_report.json) instead "
                        "of stopping at the first")
    p.set_defaults(func=run_sft_command)


def add_dpo_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("dpo", help="direct preference optimization (tinker-cookbook's DPO loop)",
                       description="Train on preference pairs with the DPO loss against the starting weights. Pairs "
                                   "that cannot train (ties, identical, empty, too long) are counted and listed in "
                                   "RUN/data_report.json.")
    add_common_args(p, DPO_RECIPES, "default: shipped pairs, SmolLM2-135M, LoRA, 20 steps; dpo_basic: "
                                    "tinker-cookbook's (hh-rlhf, lr 1e-5, beta 0.1)")
    p.add_argument("--dataset", type=non_empty,
                   help="comparisons JSONL, or hh_rlhf, ultrafeedback, ultrafeedback_binarized, arena, default")
    p.add_argument("--batch-size", type=positive_int, help="pairs per step")
    p.add_argument("--beta", type=positive_float, help="DPO beta (default 0.1)")
    p.set_defaults(func=run_dpo_command)


def run_rl_command(args: argparse.Namespace) -> int:
    _quiet_libraries()
    cfg = rl_recipe_config(args.recipe, **_overrides(args, RLConfig))
    result = run_distill(cfg) if args.loop == "distill" else run_rl(cfg)
    if cfg.show_progress:
        curves: list[tuple[str, str, str | None]] = ([("teacher KL", "teacher_kl", None)] if args.loop == "distill" else
                  [("mean reward", "env/all/reward/total", None),
                   ("held-out reward", "test/env/all/reward/total", "test/env/all/reward/total")])
        print_summary(result, cfg.log_path, curves)
    return 0


def add_rl_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--group-size", type=positive_int, help="samples per prompt (advantages are centred per group)")
    p.add_argument("--groups-per-batch", dest="batch_size", type=positive_int, help="prompts per batch")
    p.add_argument("--max-tokens", type=positive_int, help="tokens sampled per turn")
    p.add_argument("--temperature", type=non_negative_float, help="sampling temperature")
    p.add_argument("--num-substeps", type=positive_int, help="optimizer steps per batch")
    p.add_argument("--kl-penalty-coef", type=non_negative_float,
                   help="rl: KL penalty against the starting weights; distill: weight of the teacher's reverse KL")
    p.add_argument("--load-checkpoint", dest="load_checkpoint_path", type=non_empty,
                   help="start from a training-state checkpoint's weights (e.g. after SFT)")


def add_rl_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("rl", help="reinforcement learning with a verifiable reward (tinker-cookbook's RL loop)",
                       description="Sample groups with the current weights, centre rewards per group, train with "
                                   "importance_sampling or ppo. Env failures and length-capped samples are recorded "
                                   "in metrics.jsonl and the run goes on.")
    add_common_args(p, RL_RECIPES, "default: arithmetic on SmolLM2-135M; token_target: a task a tiny model learns "
                                   "in seconds")
    p.add_argument("--env", choices=ENVS, help="environment")
    p.add_argument("--loss-fn", choices=("importance_sampling", "ppo"), help="policy-gradient loss")
    add_rl_args(p)
    p.set_defaults(func=run_rl_command, recipe="default")


def add_distill_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("distill", help="on-policy distillation from a teacher with the same tokenizer",
                       description="The student samples replies to prompts, the teacher scores them with "
                                   "compute_logprobs, and the student trains on −reverse KL (importance_sampling).")
    add_common_args(p, RL_RECIPES, "use distill")
    p.add_argument("--teacher", dest="teacher_model", type=non_empty, help="teacher model (same tokenizer)")
    p.add_argument("--dataset", type=non_empty, help="conversations whose prompts to use (default: the shipped)")
    add_rl_args(p)
    p.set_defaults(func=run_rl_command, recipe="distill")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("train", help="train a model: sft, dpo, rl, distill",
                       description="Training loops on the local engine (or the hosted tinker service). Under "
                                   "torchrun the same command runs data-parallel.")
    loops = p.add_subparsers(dest="loop", required=True, metavar="LOOP")
    add_sft_parser(loops)
    add_dpo_parser(loops)
    add_rl_parser(loops)
    add_distill_parser(loops)
