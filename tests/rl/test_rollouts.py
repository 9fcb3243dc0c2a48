"""Rollouts on the tiny model: batching, logprobs, recorded failures, and reward rising under RL."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from posttrain import get_renderer
from posttrain.engine import AdamParams, SamplingParams, ServiceClient
from posttrain.rl import (
    Env,
    EnvGroupBuilder,
    StepResult,
    assemble_training_data,
    compute_advantages,
    do_group_rollouts,
    group_metrics,
    remove_constant_reward_groups,
    trajectory_metrics,
)
from posttrain.rl.envs.arithmetic import ArithmeticDataset
from posttrain.rl.envs.token_target import TokenTargetDataset, TokenTargetEnv
from posttrain.types import ModelInput
from tests.engine_util import TINY


@pytest.fixture(scope="module")
def training(tmp_path_factory):
    return ServiceClient(tmp_path_factory.mktemp("ck"), device="cpu").create_lora_training_client(TINY, rank=4, seed=0)


@pytest.fixture(scope="module")
def sampler(training):
    return training.save_weights_and_get_sampling_client()


class Counting:
    """A sampling client that records the prompts of each ``sample_many`` call."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def sample_many(self, prompts, num_samples, params):
        self.calls.append((len(prompts), params.stop))
        return self.inner.sample_many(prompts, num_samples, params)


class TwoTurnEnv(Env):
    """Turn 2's observation extends turn 1's observation + action; reward 1 at the end."""

    def __init__(self, prompt, stop):
        self.prompt, self.stop, self.turn = list(prompt), stop, 0

    def initial_observation(self):
        return ModelInput.from_ints(self.prompt), self.stop

    def step(self, action):
        self.turn += 1
        if self.turn == 1:
            return StepResult(0.0, False, ModelInput.from_ints([*self.prompt, *action, 30, 31]), self.stop)
        return StepResult(1.0, True, ModelInput.empty(), self.stop, {"turns": 2.0})


class FailingEnv(TokenTargetEnv):
    def step(self, action):
        raise ValueError("checker exploded")


class NoStartEnv(Env):
    def initial_observation(self):
        raise RuntimeError("no initial observation")

    def step(self, action):
        raise AssertionError("never reached")


class NeverDoneEnv(TokenTargetEnv):
    def step(self, action):
        return StepResult(0.0, False, ModelInput.from_ints(self.prompt), [])


@dataclass(frozen=True)
class Builder(EnvGroupBuilder):
    """Envs from a list of factories (one env each)."""

    factories: tuple

    def make_envs(self):
        return [f() for f in self.factories]


def test_groups_batching_and_logprobs(sampler):
    renderer = get_renderer("smollm2", sampler.base.tokenizer)
    builders = ArithmeticDataset(batch_size=2, group_size=3, n_batches=1, seed=0, renderer=renderer).get_batch(0)
    client = Counting(sampler)
    groups = do_group_rollouts(client, builders, SamplingParams(max_tokens=4, seed=0))
    assert client.calls == [(6, renderer.get_stop_sequences())]  # every env of every group in one call
    assert [len(g.trajectories) for g in groups] == [3, 3] and all(not g.rollout_errors for g in groups)
    for g, builder in zip(groups, builders, strict=True):
        prompt = builder.make_envs()[0].initial_observation()[0].to_ints()
        assert g.tags == ["arithmetic"] and g.final_rewards == [0.0] * 3
        for t in g.trajectories:
            (step,) = t.transitions
            assert step.ob.to_ints() == prompt and step.episode_done and len(step.ac_tokens) == len(step.ac_logprobs)
            computed = sampler.compute_logprobs(ModelInput.from_ints(prompt + step.ac_tokens)).result()
            np.testing.assert_allclose(computed[len(prompt):], step.ac_logprobs, rtol=1e-4, atol=1e-4)
            # the random model almost never closes the turn in 4 tokens: cut at max_tokens, format penalty
            if step.stop_reason == "length":
                assert len(step.ac_tokens) == 4 and step.metrics["format"] == 0.0
                assert step.reward == pytest.approx(step.metrics["correct"] - 0.1)
    m = group_metrics(groups[0])
    lengths = sum(t.transitions[0].stop_reason == "length" for t in groups[0].trajectories)
    assert m["frac_length_stop"] == pytest.approx(lengths / 3) and lengths > 0
    assert m["reward/total"] == pytest.approx(np.mean(groups[0].get_total_rewards()))
    assert m["ac_tokens_per_turn"] == pytest.approx(np.mean([len(t.transitions[0].ac_tokens)
                                                             for t in groups[0].trajectories]))
    assert trajectory_metrics(groups)["env/all/total_episodes"] == 6


def test_multi_turn_and_stop_conditions_grouped(training, sampler):
    stops = ([], [30])
    builders = [Builder(tuple((lambda s=s: TwoTurnEnv([5, 6, 7], s)) for s in stops)),
                Builder(((lambda: TwoTurnEnv([8, 9], [30])),))]
    client = Counting(sampler)
    groups = do_group_rollouts(client, builders, SamplingParams(max_tokens=3, seed=1))
    # two turns × two distinct stop conditions; each call holds the envs sharing that stop condition
    assert sorted(client.calls, key=str) == sorted([(1, []), (2, [30])] * 2, key=str)
    t = groups[0].trajectories[0]
    first, second = t.transitions
    assert second.ob.to_ints() == [5, 6, 7, *first.ac_tokens, 30, 31] and second.metrics == {"turns": 2.0}
    assert groups[0].get_total_rewards() == [1.0, 1.0] and group_metrics(groups[0])["turns_per_episode"] == 2
    # one datum per trajectory (turn 2 extends turn 1), and the engine takes them for importance sampling
    data = assemble_training_data(groups, [np.array([0.5, -0.5]), np.array([0.0])])
    assert len(data) == 3
    assert len(data[0]) == 3 + len(first.ac_tokens) + 2 + len(second.ac_tokens) - 1
    out = training.forward(data, "importance_sampling").result()
    lp = out.logprobs()[0]
    action = data[0].extra["advantages"] != 0
    np.testing.assert_allclose(lp[action], data[0].extra["logprobs"][action], rtol=1e-4, atol=1e-4)


def test_failures_are_recorded_not_raised(sampler):
    long_prompt = [5] * (sampler.base.max_context_length + 10)

    builders = [
        Builder((lambda: TokenTargetEnv([5, 6], {1}), lambda: FailingEnv([5, 6], {1}),
                 lambda: TokenTargetEnv(long_prompt, {1}), lambda: TokenTargetEnv([7], {1}))),
        Builder((NoStartEnv, lambda: NeverDoneEnv([5], {1}))),
        Builder((lambda: FailingEnv([5], {1}),)),
    ]
    groups = do_group_rollouts(sampler, builders, SamplingParams(max_tokens=1, seed=0), max_turns=3)
    first, second, third = groups
    assert len(first.trajectories) == 2 and [t.transitions[0].ob.to_ints() for t in first.trajectories] == [[5, 6], [7]]
    errors = {e.env_index: e for e in first.rollout_errors}
    assert sorted(errors) == [1, 2]
    assert (errors[1].reason, errors[1].error_type, errors[1].error_message) == ("env_error", "ValueError",
                                                                                   "checker exploded")
    assert errors[2].reason == "context_overflow" and errors[2].error_type == "PosttrainError"
    assert "context" in errors[2].error_message
    assert second.trajectories == [] and [(e.reason, e.error_type, e.env_index) for e in second.rollout_errors] == [
        ("env_error", "RuntimeError", 0), ("max_turns", "MaxTurnsExceeded", 1)]
    assert third.trajectories == [] and third.rollout_errors[0].error_type == "ValueError"
    m = trajectory_metrics(groups)
    assert m["env/all/rollout_errors/total"] == 5 and m["env/all/rollout_errors/env_error/ValueError"] == 2
    assert m["env/all/rollout_errors/context_overflow"] == 1
    assert m["env/all/frac_length_stop"] == 1.0  # max_tokens 1, no stop condition
    # groups with no trajectory left give empty advantages and are filtered out
    assert [len(a) for a in compute_advantages(groups)] == [2, 0, 0]
    assert remove_constant_reward_groups(groups[1:]) == []


class Raising(EnvGroupBuilder):
    def make_envs(self):
        raise OSError("cannot build")


class BadRewards(Builder):
    def compute_group_rewards(self, trajectories):
        return []


def test_group_level_failures_drop_only_that_group(sampler):
    ok = Builder((lambda: TokenTargetEnv([5], {1}),))
    groups = do_group_rollouts(sampler, [Raising(), BadRewards(ok.factories), ok], SamplingParams(max_tokens=1))
    assert [len(g.trajectories) for g in groups] == [0, 0, 1]
    assert [(e.reason, e.error_type) for e in groups[0].rollout_errors] == [("group_error", "OSError")]
    assert groups[1].rollout_errors[0].reason == "group_error"
    assert "returned 0 rewards for 1 trajectories" in groups[1].rollout_errors[0].error_message
    with pytest.raises(Exception, match="max_tokens must be at least 1"):
        do_group_rollouts(sampler, [ok], SamplingParams(max_tokens=0))  # configuration errors do raise


def test_reward_rises_on_target_token_task(tmp_path):
    import torch

    training = ServiceClient(tmp_path, device="cpu").create_lora_training_client(TINY, rank=4, seed=0)
    sampler = training.save_weights_and_get_sampling_client()
    prompt = [1, 2, 3, 4, 5]
    with torch.no_grad():  # the random model is near uniform: aim at two of its top-8 tokens, sample top-8
        top = torch.topk(sampler.model(input_ids=torch.tensor([prompt])).logits[0, -1], 8).indices.tolist()
    dataset = TokenTargetDataset(prompt, top[4:6], batch_size=4, group_size=8, n_batches=20)
    means = []
    for step in range(len(dataset)):
        groups = do_group_rollouts(sampler, dataset.get_batch(step), SamplingParams(max_tokens=1, top_k=8, seed=step))
        means.append(trajectory_metrics(groups)["env/all/reward/total"])
        kept = remove_constant_reward_groups(groups)
        training.forward_backward(assemble_training_data(kept, compute_advantages(kept)), "importance_sampling")
        training.optim_step(AdamParams(learning_rate=5e-3))
        sampler = training.save_weights_and_get_sampling_client()
    assert np.mean(means[:3]) < 0.5 and np.mean(means[-3:]) > 0.8, means
