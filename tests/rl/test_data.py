"""Advantages, datums and metrics against hand-worked examples written from the definitions."""

from __future__ import annotations

import numpy as np
import pytest

from posttrain.rl import (
    RolloutError,
    Trajectory,
    TrajectoryGroup,
    Transition,
    assemble_training_data,
    by_group_metrics,
    compute_advantages,
    group_metrics,
    remove_constant_reward_groups,
    remove_mask,
    trajectory_metrics,
    trajectory_to_data,
)
from posttrain.types import ModelInput


def tr(ob, ac, lps, reward=0.0, done=False, metrics=None, stop="stop"):
    return Transition(ModelInput.from_ints(ob), ac, lps, reward, done, metrics or {}, stop)


def traj(*transitions):
    return Trajectory(list(transitions), ModelInput.empty())


def one_step(reward, metrics=None, stop="stop"):
    return traj(tr([1, 2], [3], [-0.5], reward, True, metrics, stop))


def group(step_rewards, final_rewards=None, tags=(), errors=()):
    final = final_rewards or [0.0] * len(step_rewards)
    return TrajectoryGroup([one_step(r) for r in step_rewards], final, [{} for _ in step_rewards], list(errors),
                           list(tags))


def assert_datum(d, inputs, targets, logprobs, advantages, mask=None):
    np.testing.assert_array_equal(d.input_tokens, inputs)
    np.testing.assert_array_equal(d.target_tokens, targets)
    np.testing.assert_allclose(d.extra["logprobs"], logprobs, rtol=0, atol=1e-7)
    np.testing.assert_allclose(d.extra["advantages"], advantages, rtol=0, atol=1e-7)
    assert d.extra["logprobs"].dtype == d.extra["advantages"].dtype == np.float32
    if mask is None:
        assert set(d.extra) == {"logprobs", "advantages"} and not d.has_weights
    else:
        np.testing.assert_array_equal(d.extra["mask"], mask)


def test_total_rewards_and_centred_advantages():
    # step rewards 1, 0, 0.5 plus final rewards 0, 0.5, 0 → totals 1, 0.5, 0.5; mean 2/3
    g = group([1.0, 0.0, 0.5], [0.0, 0.5, 0.0])
    assert g.get_total_rewards() == [1.0, 0.5, 0.5]
    (adv,) = compute_advantages([g])
    np.testing.assert_allclose(adv, [1 / 3, -1 / 6, -1 / 6], rtol=1e-6)  # centred, not divided by the std
    two_step = TrajectoryGroup([traj(tr([1], [2], [-1.0], 0.25), tr([1, 2, 5], [6], [-1.0], 0.5, True)),
                                one_step(0.0)], [0.0, 0.0], [{}, {}])
    assert two_step.get_total_rewards() == [0.75, 0.0]
    np.testing.assert_allclose(compute_advantages([two_step])[0], [0.375, -0.375])
    assert compute_advantages([group([])])[0].shape == (0,)
    with pytest.raises(ValueError, match="one of each per trajectory"):
        TrajectoryGroup([one_step(1.0)], [], [])


def test_extending_observation_makes_one_datum():
    # turn 1: O1 = [1 2 3], A1 = [10 11]; turn 2: O2 = O1 + A1 + [4 5], A2 = [12]
    t = traj(tr([1, 2, 3], [10, 11], [-0.1, -0.2]), tr([1, 2, 3, 10, 11, 4, 5], [12], [-0.3], 1.0, True))
    # sequence 1 2 3 10 11 4 5 12; per token logprob 0 0 0 -.1 -.2 0 0 -.3, advantage 0 0 0 A A 0 0 A
    (d,) = trajectory_to_data(t, 0.5, include_mask=True)
    assert_datum(d, inputs=[1, 2, 3, 10, 11, 4, 5], targets=[2, 3, 10, 11, 4, 5, 12],
                 logprobs=[0, 0, -0.1, -0.2, 0, 0, -0.3], advantages=[0, 0, 0.5, 0.5, 0, 0, 0.5],
                 mask=[0, 0, 1, 1, 0, 0, 1])
    (plain,) = trajectory_to_data(t, 0.5)
    assert_datum(plain, [1, 2, 3, 10, 11, 4, 5], [2, 3, 10, 11, 4, 5, 12], [0, 0, -0.1, -0.2, 0, 0, -0.3],
                 [0, 0, 0.5, 0.5, 0, 0, 0.5])
    assert remove_mask(d) == plain


def test_non_extending_observation_starts_a_new_datum():
    # turn 2's observation [7 8] does not start with O1 + A1 = [1 2 3 10 11]
    t = traj(tr([1, 2, 3], [10, 11], [-0.1, -0.2]), tr([7, 8], [12, 13], [-0.3, -0.4], 1.0, True))
    first, second = trajectory_to_data(t, -2.0, include_mask=True)
    assert_datum(first, [1, 2, 3, 10], [2, 3, 10, 11], [0, 0, -0.1, -0.2], [0, 0, -2, -2], [0, 0, 1, 1])
    assert_datum(second, [7, 8, 12], [8, 12, 13], [0, -0.3, -0.4], [0, -2, -2], [0, 1, 1])
    # an observation that repeats O1 but not A1 ([1 2 3 10 99]) does not extend either
    t = traj(tr([1, 2, 3], [10, 11], [-0.1, -0.2]), tr([1, 2, 3, 10, 99], [12], [-0.3], 0.0, True))
    first, second = trajectory_to_data(t, 1.0)
    assert_datum(first, [1, 2, 3, 10], [2, 3, 10, 11], [0, 0, -0.1, -0.2], [0, 0, 1, 1])
    assert_datum(second, [1, 2, 3, 10, 99], [2, 3, 10, 99, 12], [0, 0, 0, 0, -0.3], [0, 0, 0, 0, 1])


def test_degenerate_trajectories():
    assert trajectory_to_data(traj(tr([5], [], [])), 1.0) == []  # one token: nothing to predict
    (d,) = trajectory_to_data(traj(tr([5], [6], [-0.7], 1.0, True)), 1.0)
    assert_datum(d, [5], [6], [-0.7], [1.0])
    with pytest.raises(ValueError, match="2 action tokens but 1 logprobs"):
        trajectory_to_data(traj(tr([5], [6, 7], [-0.7])), 1.0)


def test_assemble_training_data_in_group_and_trajectory_order():
    g1 = TrajectoryGroup([traj(tr([1, 2], [3], [-0.5], 1.0, True)), traj(tr([1, 2], [4], [-0.6], 0.0, True))],
                         [0.0, 0.0], [{}, {}])
    g2 = TrajectoryGroup([traj(tr([9], [8, 7], [-0.1, -0.2], 0.0, True))], [0.0], [{}])
    data = assemble_training_data([g1, g2], compute_advantages([g1, g2]))
    assert len(data) == 3
    assert_datum(data[0], [1, 2], [2, 3], [0, -0.5], [0, 0.5])
    assert_datum(data[1], [1, 2], [2, 4], [0, -0.6], [0, -0.5])
    assert_datum(data[2], [9, 8], [8, 7], [-0.1, -0.2], [0, 0])
    with pytest.raises(ValueError, match="2 groups but 1 advantage"):
        assemble_training_data([g1, g2], compute_advantages([g1]))


def test_remove_constant_reward_groups():
    const_a, mixed, const_b, empty = group([1.0, 1.0]), group([1.0, 0.0]), group([0.0, 0.0]), group([])
    assert remove_constant_reward_groups([const_a, mixed, const_b, empty]) == [mixed]
    assert remove_constant_reward_groups([empty, const_b, const_a]) == [const_b]  # all constant: one kept
    assert remove_constant_reward_groups([empty]) == []
    # a final reward can break the tie
    assert remove_constant_reward_groups([group([1.0, 1.0], [0.0, 0.5])])[0].get_total_rewards() == [1.0, 1.5]


def test_by_group_and_trajectory_metrics():
    groups = [group([1.0, 0.0]), group([1.0, 1.0]), group([0.0, 0.0]), group([0.25, 0.25]), group([])]
    assert by_group_metrics(groups) == {"by_group/frac_mixed": 0.25, "by_group/frac_all_good": 0.25,
                                        "by_group/frac_all_bad": 0.5}
    assert by_group_metrics([]) == {"by_group/frac_mixed": 0.0, "by_group/frac_all_good": 0.0,
                                    "by_group/frac_all_bad": 0.0}
    g_a = TrajectoryGroup(
        [traj(tr([1, 2], [3, 4, 5], [-1.0] * 3, 1.0, True, {"correct": 1.0}, "length")),
         traj(tr([1, 2], [3], [-1.0], 0.0, False, {"correct": 0.0}), tr([1, 2, 3, 9], [3], [-1.0], 0.5, True))],
        [0.0, 0.5], [{"judge": 1.0}, {"judge": 0.0}],
        [RolloutError("ValueError", "boom", "env_error", 2), RolloutError("PosttrainError", "no room in context",
                                                                           "context_overflow", 3)],
        ["a"])
    m = group_metrics(g_a)
    assert m["reward/total"] == pytest.approx((1.0 + 1.0) / 2)
    assert m["ac_tokens_per_turn"] == pytest.approx(5 / 3) and m["ob_tokens_per_turn"] == pytest.approx(8 / 3)
    assert m["turns_per_episode"] == 1.5 and m["total_episodes"] == 2 and m["total_turns"] == 3
    assert m["frac_length_stop"] == pytest.approx(1 / 3)
    assert m["correct"] == 0.5 and m["judge"] == 0.5  # each key's mean over the dicts that have it
    assert m["by_group/frac_mixed"] == 0.0 and m["by_group/frac_all_good"] == 1.0
    assert m["rollout_errors/total"] == 2 and m["rollout_errors/env_error"] == 1
    assert m["rollout_errors/env_error/ValueError"] == 1 and m["rollout_errors/context_overflow/PosttrainError"] == 1
    g_b = group([0.0, 0.0], tags=["b"])
    batch = trajectory_metrics([g_a, g_b])
    assert batch["env/all/reward/total"] == pytest.approx(0.5) and batch["env/all/total_episodes"] == 4
    assert batch["env/a/reward/total"] == pytest.approx(1.0) and batch["env/b/reward/total"] == 0.0
    assert batch["env/all/by_group/frac_all_bad"] == 0.5
    same_tag = trajectory_metrics([g_b, g_b])  # a tag covering every group adds nothing
    assert not any(k.startswith("env/b/") for k in same_tag) and "rollout_errors/total" not in group_metrics(g_b)
