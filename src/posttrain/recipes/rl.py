"""RL and on-policy distillation recipes.

``posttrain train rl --env arithmetic``: "What is x + y?" with a one-example few-shot prefix, reward 1 for
the right number (minus a format penalty when the reply does not end cleanly); held-out problems
evaluated greedily. ``--env token_target``: a verifiable task a tiny random model learns on a CPU in
seconds (reward 1 when the first sampled token is one of two targets chosen among the model's top
tokens for the prompt; sampled with top-k 8) — it exists to check the machinery, not to teach anything.

``posttrain train distill --teacher MODEL``: the student samples replies to the shipped conversations'
prompts (or ``--dataset``), the teacher scores them, and the student learns from −reverse KL.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from typing import Any

from posttrain.data.sources import load_conversations
from posttrain.default_data import DEFAULT
from posttrain.errors import PosttrainError
from posttrain.recipes.common import in_process_group, open_run, setup
from posttrain.recipes.config import RecipeConfig, from_recipe
from posttrain.rl import RLDataset
from posttrain.rl.envs.arithmetic import ArithmeticDataset
from posttrain.rl.envs.prompts import PromptDataset
from posttrain.rl.envs.token_target import TokenTargetDataset
from posttrain.runs.loop import LoopResult
from posttrain.settings import at_least, non_empty, setting
from posttrain.training.rl import DistillLoop, RLLoop, RLLoopConfig

ENVS = ("arithmetic", "token_target")
TOKEN_TARGET_PROMPT = (1, 2, 3, 4, 5)


@dataclass
class RLConfig(RecipeConfig, RLLoopConfig):
    """``batch_size`` is groups per batch (``--groups-per-batch``); ``max_steps`` the number of batches."""

    env: str = setting("arithmetic", "environment", flag="--env", choices=ENVS)
    batch_size: int = setting(8, "prompts per batch", flag="--groups-per-batch", kind=int, check=at_least(1))
    group_size: int = setting(4, "samples per prompt (advantages are centred per group)", flag="--group-size",
                              kind=int, check=at_least(1))
    eval_groups: int = setting(16, "held-out prompts evaluated", kind=int, check=at_least(1))
    teacher_model: str | None = setting(None, "teacher model (same tokenizer; distillation only)", flag="--teacher",
                                        check=non_empty)
    dataset: str = setting(DEFAULT, "conversations whose prompts to use (distillation; default: the shipped)",
                           flag="--dataset", check=non_empty)
    recipe: str = "rl"

    def check(self) -> None:
        super().check()
        if self.max_steps is None:
            raise PosttrainError("RL needs max_steps (the number of batches)")
        if self.backend == "tinker" and self.env == "token_target":
            raise PosttrainError("the token_target env reads the model's logits: local backend only")


RECIPES: dict[str, dict[str, Any]] = {
    "default": dict(env="arithmetic", batch_size=8, group_size=4, max_steps=12, max_tokens=12, learning_rate=3e-4,
                    eval_every=4, save_every=6, lora_rank=32, log_path="runs/rl"),
    "token_target": dict(env="token_target", model_name="posttrain:tiny-smollm2", batch_size=4, group_size=8,
                         max_steps=20, max_tokens=1, top_k=8, learning_rate=5e-3, eval_every=0, save_every=10,
                         lora_rank=4, log_path="runs/rl_token_target"),
    "distill": dict(model_name="posttrain:tiny-smollm2", teacher_model="posttrain:smollm2-135m-instruct",
                    dataset=DEFAULT, batch_size=4, group_size=2, max_steps=10, max_tokens=16, learning_rate=1e-3,
                    kl_penalty_coef=1.0, eval_every=0, save_every=5, lora_rank=8, log_path="runs/distill"),
}


def rl_recipe_config(name: str, **overrides: Any) -> RLConfig:
    return from_recipe(RLConfig, RECIPES, name, **overrides)


def _token_targets(service: Any, model_name: str) -> list[int]:
    """Two of the model's top-8 next tokens after the prompt (its distribution is near uniform, so any
    fixed token would be sampled too rarely to learn from)."""
    import torch

    sampler = service.create_sampling_client(base_model=model_name)
    with torch.no_grad():
        logits = sampler.model(input_ids=torch.tensor([list(TOKEN_TARGET_PROMPT)])).logits[0, -1]
    return torch.topk(logits, 8).indices.tolist()[4:6]


def rl_datasets(cfg: RLConfig, renderer: Any, service: Any) -> tuple[RLDataset, RLDataset | None]:
    steps = int(cfg.max_steps or 0)
    if cfg.env == "arithmetic":
        test_batches = max(cfg.eval_groups // cfg.batch_size, 1)
        return (ArithmeticDataset(cfg.batch_size, cfg.group_size, steps, cfg.seed, renderer),
                ArithmeticDataset(cfg.batch_size, 1, test_batches, cfg.seed + 10_000, renderer)
                if cfg.eval_every > 0 else None)
    if cfg.env == "token_target":
        targets = _token_targets(service, cfg.model_name)
        return TokenTargetDataset(TOKEN_TARGET_PROMPT, targets, cfg.batch_size, cfg.group_size, steps), None
    raise PosttrainError(f"unknown env {cfg.env!r}; known: {', '.join(ENVS)}")


@in_process_group
def run_rl(cfg: RLConfig) -> LoopResult:
    s = setup(cfg)
    config = cfg.run_config(s.renderer_name, s.tokenizer_name, s.renderer.tokenizer.bos_token_id, loss_fn=cfg.loss_fn)
    run, (train, test) = open_run(cfg, config, s, lambda: rl_datasets(cfg, s.renderer, s.service))
    with run, closing(s.service):
        return RLLoop(cfg.loop_config(RLLoopConfig), s.service, run, train, test, is_main=s.dist.is_main()).run()


@in_process_group
def run_distill(cfg: RLConfig) -> LoopResult:
    if not cfg.teacher_model:
        raise PosttrainError("distillation needs a teacher model (--teacher)")
    s = setup(cfg)
    from posttrain.recipes.common import check_renderer_fits, model_tokenizer_name

    teacher_tok = model_tokenizer_name(cfg.teacher_model)
    check_renderer_fits(s.renderer_name, teacher_tok, cfg.teacher_model)  # the teacher reads the same tokens
    if teacher_tok != s.tokenizer_name:
        raise PosttrainError(f"teacher {cfg.teacher_model!r} uses tokenizer {teacher_tok!r}, the student "
                             f"{s.tokenizer_name!r}: on-policy distillation needs one tokenizer")
    config = cfg.run_config(s.renderer_name, s.tokenizer_name, s.renderer.tokenizer.bos_token_id,
                            loss_fn="importance_sampling")

    def data() -> PromptDataset:
        rows = load_conversations(cfg.dataset)["messages"]
        return PromptDataset(rows, s.renderer, cfg.batch_size, cfg.group_size, int(cfg.max_steps or 0), cfg.seed)

    run, prompts = open_run(cfg, config, s, data)
    teacher = s.service.create_sampling_client(base_model=cfg.teacher_model)
    loop_cfg = cfg.loop_config(RLLoopConfig)
    loop_cfg.loss_fn = "importance_sampling"
    with run, closing(s.service):
        return DistillLoop(loop_cfg, s.service, run, prompts, None, is_main=s.dist.is_main(), teacher=teacher).run()
