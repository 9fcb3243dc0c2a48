"""Target-token task: reward 1 when the first sampled token is one of a few target ids, 0 otherwise.

Raw token prompts, no renderer, one step per episode; sample with ``max_tokens=1``. It exists so a test
(and a quick local run) can show RL working on the tiny random model: such a model's next-token
distribution is nearly uniform over the vocabulary, so pick targets among its top tokens for the prompt
and sample with ``top_k`` a little larger than that (the engine records full-distribution logprobs, so
the importance-sampling loss still sees the true policy). Mean reward then rises within ~20 steps.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from posttrain.rl.types import Action, Env, EnvGroupBuilder, RLDataset, StepResult, StopCondition
from posttrain.types import ModelInput


class TokenTargetEnv(Env):
    def __init__(self, prompt: Sequence[int], targets: Collection[int], stop: StopCondition | None = None):
        if not prompt:
            raise ValueError("the prompt needs at least one token")
        self.prompt = [int(t) for t in prompt]
        self.targets = frozenset(int(t) for t in targets)
        self.stop: StopCondition = stop if stop is not None else []

    def initial_observation(self) -> tuple[ModelInput, StopCondition]:
        return ModelInput.from_ints(self.prompt), self.stop

    def step(self, action: Action) -> StepResult:
        hit = float(bool(action) and action[0] in self.targets)
        return StepResult(reward=hit, episode_done=True, next_observation=ModelInput.empty(),
                          next_stop_condition=self.stop, metrics={"correct": hit})


@dataclass(frozen=True)
class TokenTargetGroupBuilder(EnvGroupBuilder):
    prompt: tuple[int, ...]
    targets: frozenset[int]
    group_size: int

    def make_envs(self) -> list[Env]:
        return [TokenTargetEnv(self.prompt, self.targets) for _ in range(self.group_size)]

    def logging_tags(self) -> list[str]:
        return ["token_target"]


class TokenTargetDataset(RLDataset):
    """Every batch: ``batch_size`` groups of ``group_size`` envs on the same prompt and targets."""

    def __init__(self, prompt: Sequence[int], targets: Collection[int], batch_size: int, group_size: int,
                 n_batches: int):
        self.builder = TokenTargetGroupBuilder(tuple(int(t) for t in prompt), frozenset(int(t) for t in targets),
                                               group_size)
        self.batch_size, self.n_batches = batch_size, n_batches

    def get_batch(self, index: int) -> list[EnvGroupBuilder]:
        if not 0 <= index < self.n_batches:
            raise IndexError(f"batch {index} is outside this dataset of {self.n_batches} batches")
        return [self.builder] * self.batch_size

    def __len__(self) -> int:
        return self.n_batches
