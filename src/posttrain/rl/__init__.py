"""Reinforcement learning on the engine's API: environments, batched rollouts, advantages and datums.

::

    from posttrain.rl import do_group_rollouts, compute_advantages, assemble_training_data

    groups = do_group_rollouts(sampler, dataset.get_batch(i), SamplingParams(max_tokens=64))
    groups = remove_constant_reward_groups(groups)
    datums = assemble_training_data(groups, compute_advantages(groups))
    training.forward_backward(datums, "importance_sampling")

Modules: :mod:`.types` (interfaces), :mod:`.problem_env` (single-turn question/answer envs),
:mod:`.rollouts`, :mod:`.data_processing`, :mod:`.metrics`, and tasks in :mod:`.envs`.
"""

from posttrain.rl.data_processing import (
    assemble_training_data,
    compute_advantages,
    remove_constant_reward_groups,
    remove_mask,
    trajectory_to_data,
)
from posttrain.rl.metrics import by_group_metrics, group_metrics, trajectory_metrics
from posttrain.rl.problem_env import ProblemEnv, ProblemGroupBuilder
from posttrain.rl.rollouts import do_group_rollouts
from posttrain.rl.types import (
    Env,
    EnvGroupBuilder,
    RLDataset,
    RolloutError,
    StepResult,
    Trajectory,
    TrajectoryGroup,
    Transition,
)

__all__ = [
    "Env",
    "EnvGroupBuilder",
    "ProblemEnv",
    "ProblemGroupBuilder",
    "RLDataset",
    "RolloutError",
    "StepResult",
    "Trajectory",
    "TrajectoryGroup",
    "Transition",
    "assemble_training_data",
    "by_group_metrics",
    "compute_advantages",
    "do_group_rollouts",
    "group_metrics",
    "remove_constant_reward_groups",
    "remove_mask",
    "trajectory_metrics",
    "trajectory_to_data",
]
