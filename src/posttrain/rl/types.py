"""The RL interfaces: environments, what a rollout records, and the datasets a training loop reads.

An :class:`Env` is single-use: one episode, then discarded. An :class:`EnvGroupBuilder` makes a group of
envs whose trajectories are compared with each other (GRPO centres rewards within the group), and may
add a final reward per trajectory that looks at the whole group. An :class:`RLDataset` hands out
batches of group builders. Shapes follow tinker-cookbook's ``rl/types.py``, synchronously.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

from posttrain.types import ModelInput

Action: TypeAlias = list[int]
Observation: TypeAlias = ModelInput
#: Token ids or strings that end a generation (``SamplingParams.stop``); an empty list stops only at max_tokens.
StopCondition: TypeAlias = list[int] | list[str]
Metrics: TypeAlias = dict[str, float]


@dataclass
class StepResult:
    """What :meth:`Env.step` returns. ``next_observation`` is the whole next prompt (not a delta); when
    ``episode_done`` it is the final observation (often empty)."""

    reward: float
    episode_done: bool
    next_observation: ModelInput
    next_stop_condition: StopCondition
    metrics: Metrics = field(default_factory=dict)


class Env(ABC):
    """One episode of an environment an agent acts in by emitting tokens."""

    @abstractmethod
    def initial_observation(self) -> tuple[ModelInput, StopCondition]:
        """The first prompt and the stop condition for sampling its reply."""

    @abstractmethod
    def step(self, action: Action) -> StepResult:
        """Take the sampled tokens (the stop token included when one ended the sample)."""


@dataclass
class Transition:
    """One turn: the observation the policy saw, the tokens it sampled with their sampler logprobs
    (temperature-1 log-probabilities, as the engine reports them), and what the env answered.
    ``stop_reason`` is the sampler's (``"stop"`` or ``"length"``: max_tokens or the context was reached)."""

    ob: ModelInput
    ac_tokens: list[int]
    ac_logprobs: list[float]
    reward: float
    episode_done: bool
    metrics: Metrics = field(default_factory=dict)
    stop_reason: str | None = None


@dataclass(frozen=True)
class Trajectory:
    """A finished episode and the observation after its last action."""

    transitions: list[Transition]
    final_ob: ModelInput

    @property
    def step_reward(self) -> float:
        return sum(t.reward for t in self.transitions)


@dataclass(frozen=True)
class RolloutError:
    """Why one env's trajectory (``env_index`` within its group; None for the whole group) was dropped.

    ``reason`` is one of ``env_error`` (the env raised), ``context_overflow`` (the prompt does not fit
    the model's context), ``sampling_error`` (another sampling failure), ``max_turns`` (the episode
    did not end within the rollout's turn limit) or ``group_error`` (``make_envs`` or
    ``compute_group_rewards`` raised: the whole group is dropped)."""

    error_type: str  # the exception's class name, or the reason when there is no exception
    error_message: str
    reason: str
    env_index: int | None = None


class EnvGroupBuilder(ABC):
    """Makes the envs of one group and may score the group's trajectories together."""

    @abstractmethod
    def make_envs(self) -> list[Env]: ...

    def compute_group_rewards(self, trajectories: list[Trajectory]) -> list[tuple[float, Metrics]]:
        """A final reward and metrics per trajectory, added to its step rewards. Default: zeros.

        Receives the trajectories that finished (those dropped by rollout errors are left out)."""
        return [(0.0, {}) for _ in trajectories]

    def logging_tags(self) -> list[str]:
        """Names under which this group's metrics are also reported (``env/<tag>/...``)."""
        return []


@dataclass
class TrajectoryGroup:
    """A group's finished trajectories, their final (group) rewards and metrics, and the rollout
    errors of the trajectories that were dropped."""

    trajectories: list[Trajectory]
    final_rewards: list[float]
    metrics_per_traj: list[Metrics]
    rollout_errors: list[RolloutError] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not len(self.trajectories) == len(self.final_rewards) == len(self.metrics_per_traj):
            raise ValueError(f"{len(self.trajectories)} trajectories, {len(self.final_rewards)} final rewards and "
                             f"{len(self.metrics_per_traj)} metrics dicts: one of each per trajectory")

    def get_total_rewards(self) -> list[float]:
        """Per trajectory: the sum of its step rewards plus its final reward."""
        return [t.step_reward + r for t, r in zip(self.trajectories, self.final_rewards, strict=True)]


class RLDataset(ABC):
    """Batches of group builders; batch ``i`` is the same every time it is asked for."""

    @abstractmethod
    def get_batch(self, index: int) -> Sequence[EnvGroupBuilder]: ...

    @abstractmethod
    def __len__(self) -> int: ...
