"""Rollouts: run every env of every group to the end of its episode, sampling all of them together.

At each turn the observations of all unfinished envs are sampled in one ``sample_many`` call per
distinct stop condition (usually one call for the whole batch), one sample per env; the sampled tokens
and their logprobs are the action. Problems are recorded, not raised: a trajectory whose env raises,
whose prompt does not fit the model's context, or whose sampling fails is dropped and recorded as a
:class:`~posttrain.rl.types.RolloutError` on its group; samples cut at ``max_tokens`` keep going and
are counted (``Transition.stop_reason == "length"``, see :func:`posttrain.rl.metrics.group_metrics`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from posttrain.errors import PosttrainError
from posttrain.rl.types import (
    Env,
    EnvGroupBuilder,
    Metrics,
    RolloutError,
    StopCondition,
    Trajectory,
    TrajectoryGroup,
    Transition,
)
from posttrain.types import ModelInput

if TYPE_CHECKING:
    from posttrain.types import SampledSequence, SamplingParams

DEFAULT_MAX_TURNS = 64


@dataclass
class _Slot:
    """One env's episode in progress."""

    group: int
    index: int
    env: Env
    ob: ModelInput
    stop: StopCondition
    transitions: list[Transition] = field(default_factory=list)


@dataclass
class _GroupState:
    builder: EnvGroupBuilder
    finished: dict[int, Trajectory] = field(default_factory=dict)
    errors: list[RolloutError] = field(default_factory=list)


def do_group_rollouts(sampling_client: Any, builders: Sequence[EnvGroupBuilder], params: SamplingParams,
                      max_turns: int = DEFAULT_MAX_TURNS) -> list[TrajectoryGroup]:
    """One :class:`TrajectoryGroup` per builder, in order, trajectories in env order.

    ``params`` give max_tokens, temperature, top_k/top_p and seed; ``stop`` is replaced by each env's
    stop condition. With a seed, the n-th sampling call of the rollout uses ``seed + n``. An episode
    still running after ``max_turns`` turns is dropped (reason ``max_turns``). Invalid ``params`` raise
    at once (a configuration error, not a rollout problem)."""
    from posttrain.engine.generation import check_params

    check_params(params, 1)
    states = [_GroupState(b) for b in builders]
    active = [slot for g, state in enumerate(states) for slot in _start_group(g, state)]
    calls = 0
    for _ in range(max_turns):
        if not active:
            break
        batches: dict[tuple[Any, ...], list[_Slot]] = {}
        for slot in active:
            batches.setdefault(_stop_key(slot.stop), []).append(slot)
        pending = []
        for slots in batches.values():  # submit every batch before waiting on any
            seed = None if params.seed is None else params.seed + calls
            calls += 1
            call_params = replace(params, stop=slots[0].stop, seed=seed)
            pending.append((slots, _submit(sampling_client, [s.ob for s in slots], call_params)))
        active = []
        for slots, outcomes in pending:
            for slot, outcome in zip(slots, outcomes, strict=True):
                if _advance(slot, outcome, states[slot.group]):
                    active.append(slot)
    for slot in active:
        states[slot.group].errors.append(RolloutError("MaxTurnsExceeded", f"the episode did not end within {max_turns} "
                                                      "turns", "max_turns", slot.index))
    return [_finish_group(state) for state in states]


def _start_group(g: int, state: _GroupState) -> list[_Slot]:
    try:
        envs = list(state.builder.make_envs())
    except Exception as err:  # noqa: BLE001 (recorded on the group)
        state.errors.append(_error(err, "group_error", None))
        return []
    slots = []
    for i, env in enumerate(envs):
        try:
            ob, stop = env.initial_observation()
        except Exception as err:  # noqa: BLE001
            state.errors.append(_error(err, "env_error", i))
            continue
        slots.append(_Slot(g, i, env, ob, stop))
    return slots


def _stop_key(stop: StopCondition | None) -> tuple[Any, ...]:
    return tuple((type(s).__name__, s) for s in (stop or []))


def _submit(client: Any, prompts: list[ModelInput], params: SamplingParams) -> list[Any]:
    """Futures, one per prompt; a prompt the engine rejects gets its exception instead. The batch is
    split in halves until the rejected prompts are alone (only when one is rejected)."""
    try:
        return list(client.sample_many(prompts, 1, params))
    except PosttrainError as err:
        if len(prompts) == 1:
            return [err]
        mid = len(prompts) // 2
        return _submit(client, prompts[:mid], params) + _submit(client, prompts[mid:], params)


def _advance(slot: _Slot, outcome: Any, state: _GroupState) -> bool:
    """Take one sample for ``slot`` and step its env; True while the episode goes on."""
    try:
        if isinstance(outcome, BaseException):
            raise outcome
        seq: SampledSequence = outcome.result().sequences[0]
    except Exception as err:  # noqa: BLE001
        reason = "context_overflow" if "context" in str(err) else "sampling_error"
        state.errors.append(_error(err, reason, slot.index))
        return False
    try:
        result = slot.env.step(list(seq.tokens))
    except Exception as err:  # noqa: BLE001
        state.errors.append(_error(err, "env_error", slot.index))
        return False
    slot.transitions.append(Transition(slot.ob, list(seq.tokens), list(seq.logprobs), float(result.reward),
                                       result.episode_done, dict(result.metrics), seq.stop_reason))
    if result.episode_done:
        state.finished[slot.index] = Trajectory(slot.transitions, result.next_observation)
        return False
    slot.ob, slot.stop = result.next_observation, result.next_stop_condition
    return True


def _finish_group(state: _GroupState) -> TrajectoryGroup:
    trajectories = [state.finished[i] for i in sorted(state.finished)]
    tags = _tags(state)
    if not trajectories:
        return TrajectoryGroup([], [], [], state.errors, tags)
    try:
        scored = list(state.builder.compute_group_rewards(trajectories))
        if len(scored) != len(trajectories):
            raise PosttrainError(f"compute_group_rewards returned {len(scored)} rewards for "
                                 f"{len(trajectories)} trajectories")
    except Exception as err:  # noqa: BLE001
        return TrajectoryGroup([], [], [], [*state.errors, _error(err, "group_error", None)], tags)
    rewards = [float(r) for r, _ in scored]
    metrics: list[Metrics] = [dict(m) for _, m in scored]
    return TrajectoryGroup(trajectories, rewards, metrics, state.errors, tags)


def _tags(state: _GroupState) -> list[str]:
    try:
        return list(state.builder.logging_tags())
    except Exception:  # noqa: BLE001 (tags only name metrics)
        return []


def _error(err: BaseException, reason: str, env_index: int | None) -> RolloutError:
    return RolloutError(type(err).__name__, str(err), reason, env_index)
