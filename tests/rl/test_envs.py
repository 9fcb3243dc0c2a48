"""ProblemEnv rewards, the arithmetic task and dataset, and the target-token task."""

from __future__ import annotations

import pytest

from posttrain import get_renderer
from posttrain.rl import ProblemEnv, ProblemGroupBuilder
from posttrain.rl.envs.arithmetic import FEW_SHOT, ArithmeticDataset, ArithmeticEnv, last_integer
from posttrain.rl.envs.token_target import TokenTargetDataset, TokenTargetEnv
from posttrain.tokenizer import get_tokenizer
from posttrain.types import ModelInput


@pytest.fixture(scope="module")
def renderer():
    return get_renderer("smollm2", get_tokenizer("posttrain:smollm2"))


def reply(renderer, text, stop=True):
    return renderer.tokenizer.encode(text) + (renderer.get_stop_sequences() if stop else [])


def test_prompt_is_few_shot_then_question(renderer):
    env = ArithmeticEnv(renderer, 12, 30)
    ob, stop = env.initial_observation()
    expected = renderer.build_generation_prompt([*FEW_SHOT, {"role": "user", "content": "What is 12 + 30?"}])
    assert isinstance(ob, ModelInput) and ob.to_ints() == expected
    assert stop == renderer.get_stop_sequences() == [renderer.special_id("<|im_end|>")]
    assert env.answer == "42"
    bare, _ = ArithmeticEnv(renderer, 12, 30, few_shot=()).initial_observation()
    assert bare.to_ints() == renderer.build_generation_prompt([{"role": "user", "content": "What is 12 + 30?"}])


@pytest.mark.parametrize(("text", "stop", "reward", "correct", "fmt"), [
    ("42", True, 1.0, 1.0, 1.0),  # right and cleanly ended
    ("The answer is 1,042 or rather 42", True, 1.0, 1.0, 1.0),  # the last integer counts
    ("41", True, 0.0, 0.0, 1.0),  # wrong
    ("no number", True, 0.0, 0.0, 1.0),
    ("42", False, 0.9, 1.0, 0.0),  # right but cut off (no stop token): format penalty 0.1
    ("41", False, -0.1, 0.0, 0.0),  # wrong and cut off
])
def test_arithmetic_rewards(renderer, text, stop, reward, correct, fmt):
    result = ArithmeticEnv(renderer, 12, 30).step(reply(renderer, text, stop))
    assert result.reward == pytest.approx(reward)
    assert result.metrics == {"format": fmt, "correct": correct}
    assert result.episode_done and result.next_observation.length == 0
    assert result.next_stop_condition == renderer.get_stop_sequences()


class ShoutEnv(ProblemEnv):
    """The answer must be upper case (check_format) and contain the reference (check_answer)."""

    def check_answer(self, text: str) -> bool:
        return self.answer in text.lower()

    def check_format(self, text: str) -> bool:
        return text.isupper()


def test_problem_env_format_check_and_coefficient(renderer):
    env = ShoutEnv(renderer, "Say paris", "paris", format_coef=0.5)
    assert env.step(reply(renderer, "PARIS")).reward == 1.0
    bad = env.step(reply(renderer, "paris"))  # correct, but check_format rejects it
    assert bad.reward == 0.5 and bad.metrics == {"format": 0.0, "correct": 1.0}
    assert env.step(reply(renderer, "LONDON")).reward == 0.0
    assert env.step(reply(renderer, "london", stop=False)).reward == -0.5
    builder = ProblemGroupBuilder(lambda: ShoutEnv(renderer, "q", "a"), 3)
    envs = builder.make_envs()
    assert len(envs) == 3 and len({id(e) for e in envs}) == 3 and builder.logging_tags() == ["problems"]
    assert builder.compute_group_rewards([None, None]) == [(0.0, {}), (0.0, {})]  # type: ignore[list-item]


def test_last_integer():
    assert last_integer("x = -7, then 12") == 12 and last_integer("-7") == -7 and last_integer("none") is None


def test_arithmetic_dataset_is_deterministic_per_seed_and_batch(renderer):
    ds = ArithmeticDataset(batch_size=4, group_size=3, n_batches=5, seed=1, renderer=renderer)
    assert len(ds) == 5
    later_first = ds.problems(3)
    assert ds.problems(0) != ds.problems(1)
    assert ds.problems(3) == later_first  # the order of requests does not matter
    assert ArithmeticDataset(4, 3, 5, 1, renderer).problems(3) == later_first
    assert ArithmeticDataset(4, 3, 5, 2, renderer).problems(3) != later_first
    assert all(0 <= v <= 100 for pair in later_first for v in pair)
    batch = ds.get_batch(3)
    assert len(batch) == 4 and batch[0].logging_tags() == ["arithmetic"]
    envs = batch[0].make_envs()
    x, y = later_first[0]
    assert len(envs) == 3 and all(e.question == f"What is {x} + {y}?" for e in envs)
    with pytest.raises(IndexError, match="outside this dataset of 5"):
        ds.get_batch(5)


def test_token_target_env():
    env = TokenTargetEnv([5, 6, 7], {11, 12})
    ob, stop = env.initial_observation()
    assert ob.to_ints() == [5, 6, 7] and stop == []
    assert env.step([12]).reward == 1.0 and env.step([12]).metrics == {"correct": 1.0}
    assert env.step([13, 12]).reward == 0.0  # only the first token counts
    assert env.step([]).reward == 0.0
    ds = TokenTargetDataset([5, 6], [11], batch_size=2, group_size=4, n_batches=3)
    assert len(ds) == 3 and len(ds.get_batch(0)) == 2 and len(ds.get_batch(2)[1].make_envs()) == 4
    with pytest.raises(IndexError):
        ds.get_batch(3)
    with pytest.raises(ValueError, match="at least one token"):
        TokenTargetEnv([], {1})
