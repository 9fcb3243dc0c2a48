"""The DPO loss through forward_backward_custom: value and gradients against an independent
plain-PyTorch computation of the formula on the same tiny model; the base-model reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from posttrain.engine import ServiceClient
from posttrain.training.dpo import dpo_loss
from tests.engine_util import TINY, ce_datums, plain_logprobs, plain_model

BETA = 0.3


def test_dpo_loss_and_gradient_match_plain_pytorch(tmp_path):
    data = ce_datums()  # 4 datums = 2 (chosen, rejected) pairs; weights mark the completions
    model = plain_model()
    with torch.no_grad():  # a reference that differs from the policy, so ratios are not zero
        rng = np.random.default_rng(0)
        reference = [plain_logprobs(model, d).numpy() + rng.normal(0, 0.3, len(d)).astype(np.float32) for d in data]
    client = ServiceClient(tmp_path, device="cpu", micro_batch_tokens=25).create_full_finetune_training_client(TINY)
    weights = [d.weights for d in data]
    out = client.forward_backward_custom(data, lambda _d, lps: dpo_loss(lps, reference, weights, BETA)).result()

    # Independent: sequence log-probs as weighted sums, the DPO formula written out.
    lp = [(plain_logprobs(model, d) * torch.from_numpy(d.weights)).sum() for d in data]
    ref = [float(np.dot(r, d.weights)) for r, d in zip(reference, data, strict=True)]
    chosen = [lp[0] - ref[0], lp[2] - ref[2]]
    rejected = [lp[1] - ref[1], lp[3] - ref[3]]
    want = sum(-F.logsigmoid(BETA * (c - r)) for c, r in zip(chosen, rejected, strict=True)) / 2
    want.backward()

    assert out.metrics["dpo_loss"] == pytest.approx(float(want.detach()), rel=1e-5)
    assert out.metrics["loss:sum"] == pytest.approx(float(want.detach()), rel=1e-5)
    margins = [BETA * float(c - r) for c, r in zip(chosen, rejected, strict=True)]
    assert out.metrics["margin"] == pytest.approx(sum(margins) / 2, rel=1e-4, abs=1e-6)
    assert out.metrics["accuracy"] == sum(m > 0 for m in margins) / 2
    assert out.metrics["chosen_reward"] == pytest.approx(BETA * float(chosen[0] + chosen[1]) / 2, rel=1e-4, abs=1e-6)
    ref_params = dict(model.named_parameters())
    for name, p in client.model.named_parameters():
        want_grad = ref_params[name].grad
        assert float((p.grad - want_grad).norm()) <= 1e-5 * float(want_grad.norm()) + 1e-9, name


def test_policy_equal_to_reference_gives_log_2(tmp_path):
    """At the start the LoRA policy is the base model, so every log-ratio is exactly zero."""
    client = ServiceClient(tmp_path, device="cpu").create_lora_training_client(TINY, rank=4, seed=0)
    data = ce_datums()
    reference = client.compute_base_logprobs(data).result()
    weights = [d.weights for d in data]
    out = client.forward_backward_custom(data, lambda _d, lps: dpo_loss(lps, reference, weights, 0.1)).result()
    assert out.metrics["dpo_loss"] == pytest.approx(math.log(2), abs=1e-7)
    assert out.metrics["accuracy"] == 0.0 and out.metrics["margin"] == 0.0
    assert out.metrics["chosen_reward"] == 0.0 and out.metrics["rejected_reward"] == 0.0


def test_base_logprobs_ignore_the_adapter(tmp_path):
    from posttrain.engine import AdamParams

    client = ServiceClient(tmp_path, device="cpu").create_lora_training_client(TINY, rank=4, seed=0)
    data = ce_datums()
    before = client.compute_base_logprobs(data).result()
    client.forward_backward(data, "cross_entropy")
    client.optim_step(AdamParams(learning_rate=5e-2)).result()
    after = client.compute_base_logprobs(data).result()
    policy = client.forward(data, "cross_entropy").result().logprobs()
    for b, a, p in zip(before, after, policy, strict=True):
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(p, b, atol=1e-4)
    with pytest.raises(Exception, match="needs a LoRA client"):
        ServiceClient(tmp_path, device="cpu").create_full_finetune_training_client(TINY).compute_base_logprobs(data)
