"""Prompts only, reward 0: the environment of on-policy distillation (the teacher supplies the signal).

Each env opens with the renderer's generation prompt for a conversation's messages up to its first
assistant turn; the student's reply ends the episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from posttrain.messages import MessageLike
from posttrain.renderers.base import Renderer
from posttrain.rl.types import Action, Env, EnvGroupBuilder, RLDataset, StepResult, StopCondition
from posttrain.types import ModelInput


class PromptEnv(Env):
    def __init__(self, renderer: Renderer, messages: Sequence[MessageLike]):
        self.renderer, self.messages = renderer, list(messages)

    def initial_observation(self) -> tuple[ModelInput, StopCondition]:
        return (ModelInput.from_ints(self.renderer.build_generation_prompt(self.messages)),
                self.renderer.get_stop_sequences())

    def step(self, action: Action) -> StepResult:
        return StepResult(reward=0.0, episode_done=True, next_observation=ModelInput.empty(),
                          next_stop_condition=self.renderer.get_stop_sequences())


@dataclass(frozen=True)
class PromptGroupBuilder(EnvGroupBuilder):
    renderer: Renderer
    messages: tuple[Any, ...]
    group_size: int

    def make_envs(self) -> list[Env]:
        return [PromptEnv(self.renderer, self.messages) for _ in range(self.group_size)]

    def logging_tags(self) -> list[str]:
        return ["prompts"]


def prompt_of(conversation: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages before the first assistant turn."""
    out = []
    for m in conversation:
        if m["role"] == "assistant":
            break
        out.append(m)
    return out


class PromptDataset(RLDataset):
    """Batches of ``batch_size`` prompts (``group_size`` samples each), drawn without replacement in an
    order shuffled by ``seed``."""

    def __init__(self, conversations: Sequence[Sequence[dict[str, Any]]], renderer: Renderer, batch_size: int,
                 group_size: int, n_batches: int, seed: int = 0):
        prompts = [p for p in (prompt_of(c) for c in conversations) if p and p[-1]["role"] == "user"]
        if len(prompts) < batch_size:
            raise ValueError(f"{len(prompts)} usable prompts, fewer than one batch of {batch_size}")
        order = np.random.default_rng(seed).permutation(len(prompts))
        self.prompts = [prompts[i] for i in order]
        self.renderer, self.batch_size, self.group_size = renderer, batch_size, group_size
        self.n_batches = n_batches

    def get_batch(self, index: int) -> list[EnvGroupBuilder]:
        if not 0 <= index < self.n_batches:
            raise IndexError(f"batch {index} is outside this dataset of {self.n_batches} batches")
        start = (index * self.batch_size) % len(self.prompts)
        picked = [self.prompts[(start + k) % len(self.prompts)] for k in range(self.batch_size)]
        return [PromptGroupBuilder(self.renderer, tuple(p), self.group_size) for p in picked]

    def __len__(self) -> int:
        return self.n_batches
