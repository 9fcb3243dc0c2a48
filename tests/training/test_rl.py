"""The RL and distillation loops on tiny models: reward rises, sampler and trainer agree, resume is
exact, failures are recorded and the run goes on, the KL penalty and teacher KL are as defined."""

from __future__ import annotations

import numpy as np
import pytest
import tinker

from posttrain.engine.hosted import HostedServiceClient
from posttrain.engine.service import ServiceClient
from posttrain.errors import PosttrainError
from posttrain.recipes.rl import TOKEN_TARGET_PROMPT, _token_targets, rl_recipe_config, run_distill, run_rl
from posttrain.recipes.sft import recipe_config, run_sft
from posttrain.rl.envs.token_target import TokenTargetDataset
from posttrain.rl.types import Env, EnvGroupBuilder, RLDataset, StepResult
from posttrain.runs.folder import RunFolder
from posttrain.runs.log import read_metrics, without_timings
from posttrain.training.rl import RLLoop, RLLoopConfig
from posttrain.types import Datum, ModelInput


def test_reward_rises_and_sampler_agrees_with_trainer(tmp_path):
    result = run_rl(rl_recipe_config("token_target", log_path=str(tmp_path / "run")))
    rows = result.metrics
    rewards = [r["env/all/reward/total"] for r in rows]
    assert np.mean(rewards[:3]) < 0.5 and np.mean(rewards[-3:]) > 0.8, rewards
    assert all(abs(r["optim/kl_sample_train_v1"]) < 1e-3 for r in rows if "optim/kl_sample_train_v1" in r)
    names = {"env/all/reward/total", "env/all/by_group/frac_mixed", "env/all/by_group/frac_all_good",
             "env/all/by_group/frac_all_bad", "optim/kl_sample_train_v1", "optim/entropy", "env/all/ac_tokens_per_turn",
             "learning_rate", "step"}
    assert names <= set(rows[0]), names - set(rows[0])
    assert (tmp_path / "run" / "curves.png").is_file()


def test_resume_is_exact(tmp_path):
    cfg = dict(max_steps=8, save_every=4)
    straight = tmp_path / "straight"
    run_rl(rl_recipe_config("token_target", log_path=str(straight), **cfg))
    want = without_timings(read_metrics(straight / "metrics.jsonl"))
    crashed = tmp_path / "crashed"
    run_rl(rl_recipe_config("token_target", log_path=str(crashed), **cfg))
    records = (crashed / "checkpoints.jsonl").read_text().splitlines()
    (crashed / "checkpoints.jsonl").write_text(records[0] + "\n")  # as if killed after the step-4 checkpoint
    lines = (crashed / "metrics.jsonl").read_text().splitlines()
    (crashed / "metrics.jsonl").write_text("\n".join(lines[:6]) + "\n")
    run_rl(rl_recipe_config("token_target", log_path=str(crashed), resume=True, **cfg))
    assert without_timings(read_metrics(crashed / "metrics.jsonl")) == want


def test_kl_penalty_moves_advantages_toward_the_mean_kl():
    """advantage += coef · (mean_kl − kl_t) on action tokens, kl_t = logp_sampler − logp_start."""
    d = Datum.from_arrays((np.array([1, 2, 3]),), np.array([2, 3, 4]), None,
              {"logprobs": np.array([0.0, -1.0, -2.0], np.float32), "advantages": np.array([0.0, 0.5, 0.5], np.float32),
               "mask": np.array([0.0, 1.0, 1.0], np.float32)})
    start = [np.array([-9.0, -1.5, -1.0], np.float32)]  # kl on action tokens: 0.5 and -1.0; mean -0.25
    loop = RLLoop.__new__(RLLoop)
    loop.cfg = RLLoopConfig(kl_penalty_coef=2.0)
    metrics = loop._kl_penalty([d], start)
    assert metrics["kl_policy_start"] == pytest.approx(-0.25)
    np.testing.assert_allclose(d.extra["advantages"], [0.0, 0.5 + 2 * (-0.25 - 0.5), 0.5 + 2 * (-0.25 + 1.0)])


class _Faulty(Env):
    def __init__(self, fail: bool):
        self.fail = fail

    def initial_observation(self):
        return ModelInput.from_ints([1, 2, 3]), []

    def step(self, action):
        if self.fail:
            raise RuntimeError("the grader crashed")
        return StepResult(float(action[0] % 2), True, ModelInput.empty(), [])


class _Builder(EnvGroupBuilder):
    def __init__(self, fail: bool):
        self.fail = fail

    def make_envs(self):
        return [_Faulty(self.fail) for _ in range(4)]


class _Data(RLDataset):
    def get_batch(self, index):
        return [_Builder(fail=True), _Builder(fail=False)]

    def __len__(self):
        return 2


def test_env_failures_are_recorded_and_the_run_goes_on(tmp_path):
    service = ServiceClient(tmp_path / "ck", device="cpu")
    run = RunFolder.open(tmp_path / "run", {"recipe": "test"}, resume=False)
    cfg = RLLoopConfig(model_name="posttrain:tiny-smollm2", lora_rank=4, max_tokens=2, eval_every=0, save_every=0)
    result = RLLoop(cfg, service, run, _Data()).run()
    assert [r["step"] for r in result.metrics] == [0, 1]
    for row in result.metrics:
        assert row["env/all/rollout_errors/env_error"] == 4
        assert row["env/all/rollout_errors/env_error/RuntimeError"] == 4
        assert "env/all/reward/total" in row


def test_distillation_lowers_teacher_kl(tmp_path):
    """A tiny student, warm-started by a short SFT (a random one samples the whole vocabulary uniformly and
    almost never meets the teacher's choices), distilled from SmolLM2-135M-Instruct."""
    sft = run_sft(recipe_config("default", model_name="posttrain:tiny-smollm2", log_path=str(tmp_path / "sft"),
                                max_steps=24, batch_size=8, max_length=128, eval_every=0, save_every=0,
                                learning_rate=1e-2, lora_rank=8, test_size=0))
    result = run_distill(rl_recipe_config("distill", log_path=str(tmp_path / "d"), max_steps=12, batch_size=3,
                                          group_size=4,
                                          load_checkpoint_path=sft.final_state_path))
    kl = [r["teacher_kl"] for r in result.metrics]
    assert np.mean(kl[-4:]) < np.mean(kl[:4]) - 0.2, kl


def test_bad_settings(tmp_path):
    with pytest.raises(PosttrainError, match="loss_fn must be one of importance_sampling, ppo, got .cross_entropy."):
        run_rl(rl_recipe_config("token_target", log_path=str(tmp_path / "a"), loss_fn="cross_entropy"))
    with pytest.raises(PosttrainError, match="does not fit model 'posttrain:tiny-llama3'"):
        run_distill(rl_recipe_config("distill", log_path=str(tmp_path / "b"), teacher_model="posttrain:tiny-llama3"))
    with pytest.raises(PosttrainError, match="env must be one of arithmetic, token_target, got 'chess'"):
        run_rl(rl_recipe_config("token_target", log_path=str(tmp_path / "c"), env="chess"))
    assert not any((tmp_path / n).exists() for n in "abc")


def test_hosted_backend_is_checked_before_any_work(tmp_path, monkeypatch):
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    with pytest.raises(PosttrainError, match="needs TINKER_API_KEY"):
        run_rl(rl_recipe_config("default", backend="tinker", log_path=str(tmp_path / "a")))
    with pytest.raises(PosttrainError, match="needs TINKER_API_KEY"):
        run_distill(rl_recipe_config("distill", backend="tinker", log_path=str(tmp_path / "b")))
    with pytest.raises(PosttrainError, match="token_target env reads the model's logits: local backend only"):
        run_rl(rl_recipe_config("token_target", backend="tinker", log_path=str(tmp_path / "c")))
    assert not any((tmp_path / n).exists() for n in "abc")


class _ClientFuture:
    """tinker 0.38 returns sampling clients as futures of the client."""

    def __init__(self, client):
        self._client = client

    def result(self):
        return self._client


class _SdkSampler:
    """The local engine behind tinker.SamplingClient's calls: only the SDK's types may arrive."""

    def __init__(self, inner, seeds: list):
        self.inner, self.seeds = inner, seeds

    def sample(self, prompt, num_samples, sampling_params):
        assert isinstance(prompt, tinker.ModelInput), type(prompt)
        assert isinstance(sampling_params, tinker.SamplingParams), type(sampling_params)
        self.seeds.append(sampling_params.seed)
        return self.inner.sample(prompt, num_samples, sampling_params)

    def compute_logprobs(self, prompt):
        assert isinstance(prompt, tinker.ModelInput), type(prompt)
        return self.inner.compute_logprobs(prompt)


class _SdkTraining:
    def __init__(self, inner, seeds: list):
        self.inner, self.seeds = inner, seeds

    def forward_backward(self, data, loss_fn, loss_fn_config=None):
        assert data and all(isinstance(d, tinker.Datum) for d in data)
        return self.inner.forward_backward(data, loss_fn, loss_fn_config)

    def optim_step(self, adam_params):
        assert isinstance(adam_params, tinker.AdamParams)
        return self.inner.optim_step(adam_params)

    def save_weights_and_get_sampling_client(self, name=None):
        return _ClientFuture(_SdkSampler(self.inner.save_weights_and_get_sampling_client(name), self.seeds))

    def __getattr__(self, name):
        return getattr(self.inner, name)


class _SdkService:
    def __init__(self, inner):
        self.inner, self.seeds = inner, []

    def create_lora_training_client(self, *args, **kwargs):
        return _SdkTraining(self.inner.create_lora_training_client(*args, **kwargs), self.seeds)

    def create_sampling_client(self, *args, **kwargs):
        return _ClientFuture(_SdkSampler(self.inner.create_sampling_client(*args, **kwargs), self.seeds))

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_rl_loop_runs_on_the_hosted_path_with_sdk_types_only(tmp_path):
    """The loop as it runs against tinker.ServiceClient (hosted=True: SDK datums, params, prompts, and
    sampling clients returned as futures), served here by the local engine."""
    local = ServiceClient(tmp_path / "ck", device="cpu")
    service = _SdkService(local)
    recipe = rl_recipe_config("token_target", log_path=str(tmp_path / "run"), max_steps=10, kl_penalty_coef=0.1)
    train = TokenTargetDataset(TOKEN_TARGET_PROMPT, _token_targets(local, recipe.model_name), recipe.batch_size,
                               recipe.group_size, 10)
    run = RunFolder.open(tmp_path / "run", {"recipe": "test"}, resume=False)
    result = RLLoop(recipe.loop_config(RLLoopConfig), HostedServiceClient(service), run, train).run()
    rewards = [r["env/all/reward/total"] for r in result.metrics]
    assert len(rewards) == 10 and np.mean(rewards[-3:]) > np.mean(rewards[:3]) + 0.2, rewards
    # Hosted, even a LoRA run's KL reference is a sampler of the start weights (create_sampling_client).
    assert "kl_policy_start" in result.metrics[0]
    # One request per prompt; within a step the seeds are seed + i, so a group's members differ.
    per_step = recipe.batch_size * recipe.group_size
    assert len(service.seeds) == 10 * per_step
    first = service.seeds[:per_step]
    assert first == list(range(first[0], first[0] + per_step))
    assert len(set(service.seeds)) > per_step  # and the steps use other seeds
