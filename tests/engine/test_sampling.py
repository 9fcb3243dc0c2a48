"""SamplingClient: logprobs agree with training, stops, seeds, batching, snapshots."""

from __future__ import annotations

import numpy as np
import pytest

from posttrain import get_renderer
from posttrain.engine import AdamParams, ModelInput, SamplingParams, ServiceClient
from posttrain.errors import PosttrainError
from posttrain.types import Datum
from tests.engine_util import TINY, ce_datums

PROMPT = [1, 9690, 198, 19556, 314, 216, 34, 30, 34, 47, 2, 198, 1, 520, 9531, 198]


@pytest.fixture(scope="module")
def training(tmp_path_factory):
    c = ServiceClient(tmp_path_factory.mktemp("ck"), device="cpu").create_lora_training_client(TINY, rank=4, seed=0)
    for _ in range(2):  # move away from the base model so the snapshot is a trained one
        c.forward_backward(ce_datums(), "cross_entropy")
        c.optim_step(AdamParams(learning_rate=1e-2))
    return c


@pytest.fixture(scope="module")
def sampler(training):
    return training.save_weights_and_get_sampling_client()


def test_sample_logprobs_equal_compute_logprobs_and_forward(training, sampler):
    out = sampler.sample(ModelInput.from_ints(PROMPT), 3, SamplingParams(max_tokens=10, seed=0, temperature=1.0)).result()
    assert len(out.sequences) == 3
    datums = []
    for seq in out.sequences:
        assert len(seq.tokens) == len(seq.logprobs) == 10 and seq.stop_reason == "length"
        full = PROMPT + seq.tokens
        computed = sampler.compute_logprobs(ModelInput.from_ints(full)).result()
        assert computed[0] is None and len(computed) == len(full)
        np.testing.assert_allclose(computed[len(PROMPT):], seq.logprobs, rtol=1e-4, atol=1e-4)
        datums.append(Datum.from_arrays((np.array(full[:-1]),), np.array(full[1:]), np.ones(len(full) - 1, np.float32)))
    trained = training.forward(datums, "cross_entropy").result().logprobs()
    for seq, lp in zip(out.sequences, trained, strict=True):
        np.testing.assert_allclose(lp[len(PROMPT) - 1:], seq.logprobs, rtol=1e-4, atol=1e-4)


def test_seed_reproduces_and_differs(sampler):
    params = SamplingParams(max_tokens=8, seed=11)
    a = sampler.sample(PROMPT, 2, params).result().sequences
    b = sampler.sample(PROMPT, 2, params).result().sequences
    c = sampler.sample(PROMPT, 2, SamplingParams(max_tokens=8, seed=12)).result().sequences
    assert [s.tokens for s in a] == [s.tokens for s in b] != [s.tokens for s in c]


def test_greedy_is_argmax_of_logprobs(sampler):
    import torch

    seq = sampler.sample(PROMPT, 1, SamplingParams(max_tokens=4, temperature=0.0)).result().sequences[0]
    with torch.no_grad():  # an ordinary forward pass over prompt + reply: each greedy token is its step's argmax
        logits = sampler.model(input_ids=torch.tensor([PROMPT + seq.tokens])).logits[0]
    assert [int(logits[len(PROMPT) - 1 + i].argmax()) for i in range(4)] == seq.tokens
    again = sampler.sample(PROMPT, 1, SamplingParams(max_tokens=4, temperature=0.0, seed=5)).result().sequences[0]
    assert again.tokens == seq.tokens


def test_stop_token_and_stop_string(sampler):
    free = sampler.sample(PROMPT, 1, SamplingParams(max_tokens=12, seed=3)).result().sequences[0]
    stop_token = free.tokens[4]
    cut = sampler.sample(PROMPT, 1, SamplingParams(max_tokens=12, seed=3, stop=[stop_token])).result().sequences[0]
    assert cut.stop_reason == "stop" and cut.tokens == free.tokens[: free.tokens.index(stop_token) + 1]
    tok = sampler.base.tokenizer
    text = tok.decode(free.tokens)
    needle = text[len(tok.decode(free.tokens[:6])):][:3]
    if needle:
        by_str = sampler.sample(PROMPT, 1, SamplingParams(max_tokens=12, seed=3, stop=needle)).result().sequences[0]
        assert by_str.stop_reason == "stop" and needle in tok.decode(by_str.tokens)
        assert needle not in tok.decode(by_str.tokens[:-1])


def test_renderer_stop_sequences_and_parse_response(sampler):
    renderer = get_renderer("smollm2", sampler.base.tokenizer)
    prompt = renderer.build_generation_prompt([{"role": "user", "content": "Hi"}])
    params = SamplingParams(max_tokens=6, seed=0, stop=renderer.get_stop_sequences())
    for seq in sampler.sample(ModelInput.from_ints(prompt), 4, params).result().sequences:
        message, ended = renderer.parse_response(seq.tokens)
        assert ended == (seq.stop_reason == "stop") and message.role == "assistant"


def test_batched_prompts_equal_one_at_a_time(sampler):
    short = PROMPT[:5]
    batched = sampler.sample_many([PROMPT, short], 1, SamplingParams(max_tokens=6, temperature=0.0))
    alone = [sampler.sample(p, 1, SamplingParams(max_tokens=6, temperature=0.0)).result() for p in (PROMPT, short)]
    for fut, single in zip(batched, alone, strict=True):
        got = fut.result().sequences[0]
        assert got.tokens == single.sequences[0].tokens  # left padding changes nothing
        np.testing.assert_allclose(got.logprobs, single.sequences[0].logprobs, rtol=1e-4, atol=1e-4)


def test_snapshot_does_not_follow_training(training):
    snap = training.save_weights_and_get_sampling_client()
    before = snap.compute_logprobs(PROMPT).result()
    training.forward_backward(ce_datums(), "cross_entropy")
    training.optim_step(AdamParams(learning_rate=5e-2)).result()
    assert snap.compute_logprobs(PROMPT).result() == before
    assert training.save_weights_and_get_sampling_client().compute_logprobs(PROMPT).result() != before


def test_bad_sampling_input(sampler):
    with pytest.raises(PosttrainError, match="outside the model's vocabulary"):
        sampler.sample([1, 10**6], 1, SamplingParams(max_tokens=2))
    with pytest.raises(PosttrainError, match="2100 tokens leave no room in the model's context of 2048"):
        sampler.sample([5] * 2100, 1, SamplingParams(max_tokens=2))
    with pytest.raises(PosttrainError, match="num_samples must be at least 1"):
        sampler.sample(PROMPT, 0, SamplingParams())
    with pytest.raises(PosttrainError, match="stop must be"):
        sampler.sample(PROMPT, 1, SamplingParams(stop=[1, "x"]))


def test_a_prompt_is_prefilled_once_for_all_its_samples(sampler, monkeypatch):
    import torch

    from posttrain.engine.generation import generate

    prefills: list[tuple[int, int]] = []
    real = sampler.model.forward

    def spy(*args, **kwargs):
        ids = kwargs["input_ids"]
        if ids.shape[1] > 1:
            prefills.append(tuple(ids.shape))
        return real(*args, **kwargs)

    monkeypatch.setattr(sampler.model, "forward", spy)
    other = PROMPT[:5]
    params = SamplingParams(max_tokens=6, seed=4)
    shared = sampler.sample_many([PROMPT, other, PROMPT], 3, params)
    shared = [s for f in shared for s in f.result().sequences]
    assert prefills == [(2, len(PROMPT))]  # two distinct prompts, one prefill row each
    prefills.clear()
    with torch.no_grad():
        each = generate(sampler.model, [p for p in (PROMPT, other, PROMPT) for _ in range(3)], params,
                        sampler.base.max_context_length, sampler.base.tokenizer.decode, share_prefill=False)
    assert prefills == [(9, len(PROMPT))]
    assert [s.tokens for s in shared] == [s.tokens for s in each]
    for a, b in zip(shared, each, strict=True):
        np.testing.assert_allclose(a.logprobs, b.logprobs, rtol=1e-5, atol=1e-5)
