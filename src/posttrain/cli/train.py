"""``posttrain train sft|dpo|rl|distill``: the training recipes (see :mod:`posttrain.recipes`).

``posttrain train sft`` alone runs the embedded default (the shipped conversations, SmolLM2-135M-Instruct
with LoRA, a few minutes on a laptop CPU); ``--recipe sl_basic`` starts from tinker-cookbook's
``sl_basic`` settings. Every flag overrides the recipe's value. Under ``torchrun`` the same command runs
data-parallel. The flags, their help and their checks come from each recipe's config dataclass
(:mod:`posttrain.settings`); this module is the table of commands.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from posttrain.recipes.config import from_recipe
from posttrain.recipes.dpo import RECIPES as DPO_RECIPES
from posttrain.recipes.dpo import DPOConfig, run_dpo
from posttrain.recipes.rl import RECIPES as RL_RECIPES
from posttrain.recipes.rl import RLConfig, run_distill, run_rl
from posttrain.recipes.sft import RECIPES as SFT_RECIPES
from posttrain.recipes.sft import SFTConfig, run_sft
from posttrain.runs.loop import LoopResult
from posttrain.runs.smoothing import default_window, summary_span
from posttrain.settings import add_flags, overrides

#: (label, metric key, final-eval key or None): a summary line per curve.
Curve = tuple[str, str, str | None]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    description: str
    config: type
    recipes: dict[str, dict[str, Any]]
    recipes_help: str
    run: Callable[[Any], LoopResult]
    curves: tuple[Curve, ...]
    exclude: tuple[str, ...] = ()  # settings of the config that this command has no flag for
    default_recipe: str = "default"


COMMANDS = (
    Command("sft", "supervised fine-tuning (tinker-cookbook's SFT loop)",
            "Fine-tune on conversations with cross-entropy on the trained tokens. Writes RUN/config.json, "
            "metrics.jsonl, checkpoints.jsonl, checkpoints/, curves.png, data_report.json and parity/ artifacts.",
            SFTConfig, SFT_RECIPES, "default: shipped conversations, SmolLM2-135M, LoRA, 16 steps; sl_basic: "
            "tinker-cookbook's (no_robots, lr 2e-4, linear, 1 epoch)", run_sft,
            (("train NLL", "train_mean_nll", None), ("test NLL", "test/nll", "test/nll"))),
    Command("dpo", "direct preference optimization (tinker-cookbook's DPO loop)",
            "Train on preference pairs with the DPO loss against the starting weights. Pairs that cannot train "
            "(ties, identical, empty, too long) are counted and listed in RUN/data_report.json.",
            DPOConfig, DPO_RECIPES, "default: shipped pairs, SmolLM2-135M, LoRA, 20 steps; dpo_basic: "
            "tinker-cookbook's (hh-rlhf, lr 1e-5, beta 0.1)", run_dpo,
            (("DPO loss", "dpo_loss", None), ("test DPO loss", "test/dpo_loss", "test/dpo_loss"),
             ("test accuracy", "test/accuracy", "test/accuracy"))),
    Command("rl", "reinforcement learning with a verifiable reward (tinker-cookbook's RL loop)",
            "Sample groups with the current weights, centre rewards per group, train with importance_sampling or "
            "ppo. Env failures and length-capped samples are recorded in metrics.jsonl and the run goes on.",
            RLConfig, RL_RECIPES, "default: arithmetic on SmolLM2-135M; token_target: a task a tiny model learns "
            "in seconds", run_rl,
            (("mean reward", "env/all/reward/total", None),
             ("held-out reward", "test/env/all/reward/total", "test/env/all/reward/total")),
            exclude=("teacher_model", "dataset")),
    Command("distill", "on-policy distillation from a teacher with the same tokenizer",
            "The student samples replies to prompts, the teacher scores them with compute_logprobs, and the "
            "student trains on -reverse KL (importance_sampling).",
            RLConfig, RL_RECIPES, "use distill", run_distill, (("teacher KL", "teacher_kl", None),),
            exclude=("env", "loss_fn"), default_recipe="distill"),
)


def print_summary(result: LoopResult, out: str, curves: tuple[Curve, ...]) -> None:
    """Per curve: the mean of its first and last few steps (a single batch is noise), or first → final
    evaluation for a held-out metric."""
    rows = result.metrics
    table = Table(title=f"posttrain train → {out}", show_header=False)
    table.add_row("steps", f"{result.steps}")
    for label, key, final_key in curves:
        values = [float(r[key]) for r in rows if key in r]
        if not values:
            continue
        if final_key:
            last = result.final_eval.get(final_key, values[-1])
            table.add_row(label, f"{values[0]:.4f} → {last:.4f} (final weights)")
        else:
            window = default_window(len(values))
            first, last = summary_span(values, window)
            table.add_row(label, f"{first:.4f} → {last:.4f}" + (f" (mean of first / last {window} steps)"
                                                                 if window > 1 else ""))
    table.add_row("tokens", f"{int(sum(r.get('num_tokens', 0) for r in rows)):,}")
    table.add_row("time", f"{result.seconds:.1f} s" + (f" ({result.extra['note']})" if "note" in result.extra else ""))
    table.add_row("metrics", f"{out}/metrics.jsonl")
    if result.plot_path:
        table.add_row("plot", result.plot_path)
    if result.final_sampler_path:
        table.add_row("weights", f"{result.final_sampler_path} (loads with transformers / peft)")
    Console().print(table)
    _print_data(result.extra.get("data"), out)


def _print_data(data: dict[str, Any] | None, out: str) -> None:
    """The run's data report (posttrain.runs.screening.RowReport) in one line."""
    if not data:
        return
    skipped = data["skipped"]
    reasons = f" ({', '.join(f'{n} {k}' for k, n in skipped.items())})" if skipped else ""
    print(f"data: {data['train_rows']} train / {data['test_rows']} test rows, {data['kept']} kept; "
          f"{sum(skipped.values())} skipped as invalid{reasons}; {data['truncated']} cut at --max-length "
          f"{data['max_length']} ({data['trained_tokens_cut']} trained tokens lost); {data['empty_replies']} with "
          f"empty replies (rows in {out}/data_report.json)")


def _quiet_libraries() -> None:
    """transformers draws its own progress bars (GGUF conversion, weight loading); ours is the one to read."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def _runner(command: Command) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        _quiet_libraries()
        cfg: Any = from_recipe(command.config, command.recipes, args.recipe, **overrides(args, command.config))
        result = command.run(cfg)
        if cfg.show_progress:
            print_summary(result, cfg.log_path, command.curves)
        return 0

    return run


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("train", help="train a model: sft, dpo, rl, distill",
                       description="Training loops on the local engine (or the hosted tinker service, or any "
                                   "Tinker-compatible server). Under torchrun the same command runs data-parallel.")
    loops = p.add_subparsers(dest="loop", required=True, metavar="LOOP")
    for command in COMMANDS:
        q = loops.add_parser(command.name, help=command.help, description=command.description)
        q.add_argument("--recipe", choices=sorted(command.recipes), default=command.default_recipe,
                       help=f"settings to start from (default: %(default)s); every flag overrides them. "
                            f"{command.recipes_help}")
        add_flags(q, command.config, exclude=command.exclude)
        q.set_defaults(func=_runner(command))
