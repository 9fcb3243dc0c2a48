"""From trajectory groups to training datums (tinker-cookbook's ``rl/data_processing.py``).

* Advantages: each trajectory's total reward minus its group's mean (no division by the std).
* A trajectory becomes one datum while each observation extends the previous observation + action
  (a multi-turn chat that only appends), and a new datum whenever one does not. Over the sequence
  ``tokens`` of a datum, per token ``t``: observation tokens carry logprob 0, advantage 0 (mask 0);
  action tokens carry the sampler's logprob, the trajectory's advantage (mask 1). The datum is shifted
  like every datum: input ``tokens[:-1]``, ``target_tokens = tokens[1:]``, and each loss input keeps
  the values of ``tokens[1:]`` (the value belongs to the token being predicted).
* The datums carry exactly what ``importance_sampling``/``ppo``/``cispo``/``dro`` read
  (``target_tokens``, ``logprobs``, ``advantages``); ``include_mask=True`` adds the reference's
  ``mask`` (1 on action tokens), for metrics such as sampler/trainer KL; strip it with
  :func:`remove_mask` before sending datums to a service that rejects unknown loss inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from posttrain.rl.types import Trajectory, TrajectoryGroup
from posttrain.types import Datum


def compute_advantages(groups: Sequence[TrajectoryGroup]) -> list[np.ndarray]:
    """Per group, ``total reward - group mean`` for each trajectory (float32; empty for an empty group)."""
    out = []
    for group in groups:
        rewards = np.asarray(group.get_total_rewards(), dtype=np.float64)
        centred = rewards - rewards.mean() if len(rewards) else rewards
        out.append(centred.astype(np.float32))
    return out


def remove_constant_reward_groups(groups: Sequence[TrajectoryGroup]) -> list[TrajectoryGroup]:
    """The groups whose trajectories' total rewards are not all equal (the others have zero advantage
    everywhere, so no gradient). If every group is constant, the first non-empty group alone is kept,
    as the reference does, so the caller still has a batch (its datums train nothing); empty groups
    (every trajectory dropped) are never kept."""
    varied = [g for g in groups if len(set(g.get_total_rewards())) > 1]
    if varied:
        return varied
    return next(([g] for g in groups if g.trajectories), [])


def trajectory_to_data(traj: Trajectory, advantage: float, include_mask: bool = False) -> list[Datum]:
    """The trajectory's datums (see the module docstring); a sequence shorter than 2 tokens yields none."""
    data: list[Datum] = []
    tokens: list[int] = []
    logprobs: list[float] = []
    advantages: list[float] = []
    mask: list[float] = []

    def flush() -> None:
        if len(tokens) >= 2:
            extra = {"logprobs": np.asarray(logprobs[1:], np.float32),
                     "advantages": np.asarray(advantages[1:], np.float32)}
            if include_mask:
                extra["mask"] = np.asarray(mask[1:], np.float32)
            data.append(Datum.from_arrays((np.asarray(tokens[:-1], np.int64),), np.asarray(tokens[1:], np.int64), None, extra))
        for buf in (tokens, logprobs, advantages, mask):
            buf.clear()

    for tr in traj.transitions:
        ob = tr.ob.to_ints()
        if len(tr.ac_logprobs) != len(tr.ac_tokens):
            raise ValueError(f"a transition has {len(tr.ac_tokens)} action tokens but {len(tr.ac_logprobs)} logprobs")
        if tokens and ob[:len(tokens)] == tokens:
            delta = ob[len(tokens):]
        else:
            flush()
            delta = ob
        n_ac = len(tr.ac_tokens)
        tokens += [*delta, *tr.ac_tokens]
        logprobs += [0.0] * len(delta) + [float(x) for x in tr.ac_logprobs]
        advantages += [0.0] * len(delta) + [float(advantage)] * n_ac
        mask += [0.0] * len(delta) + [1.0] * n_ac
    flush()
    return data


def assemble_training_data(groups: Sequence[TrajectoryGroup], advantages: Sequence[np.ndarray],
                           include_mask: bool = False) -> list[Datum]:
    """Every trajectory's datums, group by group, trajectory by trajectory."""
    if len(groups) != len(advantages):
        raise ValueError(f"{len(groups)} groups but {len(advantages)} advantage arrays")
    data: list[Datum] = []
    for group, adv in zip(groups, advantages, strict=True):
        if len(group.trajectories) != len(adv):
            raise ValueError(f"a group of {len(group.trajectories)} trajectories has {len(adv)} advantages")
        for traj, a in zip(group.trajectories, adv, strict=True):
            data += trajectory_to_data(traj, float(a), include_mask)
    return data


def remove_mask(datum: Datum) -> Datum:
    """The datum without its ``mask`` loss input."""
    extra = {k: v for k, v in datum.extra.items() if k != "mask"}
    return Datum.from_arrays(datum.input_chunks, datum.target_tokens, datum.weights if datum.has_weights else None, extra)
