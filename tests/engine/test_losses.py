"""Each built-in loss: value and gradients equal an independent plain-PyTorch computation of the
formula (written out here from Tinker's documented math), on datums of different lengths, packed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from posttrain.engine import ServiceClient
from tests.engine_util import TINY, ce_datums, plain_logprobs, plain_model, rl_datums


def reference_loss(name: str, lp: torch.Tensor, d, cfg: dict) -> torch.Tensor:
    if name == "cross_entropy":
        return -(torch.from_numpy(d.weights) * lp).sum()
    q, a = torch.from_numpy(d.extra["logprobs"]), torch.from_numpy(d.extra["advantages"])
    r = torch.exp(lp - q)
    if name == "importance_sampling":
        return -(r * a).sum()
    if name == "ppo":
        lo, hi = cfg.get("clip_low_threshold", 0.8), cfg.get("clip_high_threshold", 1.2)
        return -torch.min(r * a, torch.clamp(r, lo, hi) * a).sum()
    if name == "cispo":
        lo, hi = cfg.get("clip_low_threshold", 0.0), cfg.get("clip_high_threshold", 4.0)
        return -(torch.clamp(r, lo, hi).detach() * lp * a).sum()
    if name == "dro":
        beta = cfg.get("beta", 0.05)
        return -(lp * a - 0.5 * beta * (lp - q) ** 2).sum()
    raise AssertionError(name)


def assert_grad_close(got: torch.Tensor, want: torch.Tensor) -> None:
    """Packed and per-sequence passes sum in other orders: compare the error's norm to the gradient's,
    and each element within a bound a wrong formula (a missing term, a sign, a mean) could never meet."""
    assert float((got - want).norm()) <= 1e-5 * float(want.norm()) + 1e-9
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4 * float(want.abs().max()) + 1e-9)


@pytest.fixture(scope="module")
def reference():
    return plain_model()


@pytest.fixture(scope="module")
def sampler_lps(reference):
    with torch.no_grad():
        return [plain_logprobs(reference, d).numpy() for d in ce_datums()]


CASES = [("cross_entropy", {}), ("importance_sampling", {}), ("ppo", {}),
         ("ppo", {"clip_low_threshold": 0.9, "clip_high_threshold": 1.1}), ("cispo", {}),
         ("cispo", {"clip_low_threshold": 0.5, "clip_high_threshold": 1.5}), ("dro", {}), ("dro", {"beta": 0.3})]


# the default; and activation checkpointing with the output layer in chunks of 7 tokens
MEMORY = [{}, {"gradient_checkpointing": True, "logprob_chunk_tokens": 7}]


@pytest.mark.parametrize("memory", MEMORY, ids=["default", "checkpointed-chunked"])
@pytest.mark.parametrize("micro_batch_tokens", [8192, 20])  # one packed pass; several micro-batches
@pytest.mark.parametrize(("loss", "cfg"), CASES)
def test_loss_and_gradients_match_plain_pytorch(loss, cfg, micro_batch_tokens, memory, reference, sampler_lps,
                                                tmp_path):
    datums = ce_datums() if loss == "cross_entropy" else rl_datums(sampler_lps)
    client = ServiceClient(tmp_path, device="cpu", micro_batch_tokens=micro_batch_tokens, **memory) \
        .create_full_finetune_training_client(TINY, seed=0)
    out = client.forward_backward(datums, loss, cfg).result()

    reference.zero_grad(set_to_none=True)
    lps = [plain_logprobs(reference, d) for d in datums]
    total = sum(reference_loss(loss, lp, d, cfg) for lp, d in zip(lps, datums, strict=True))
    total.backward()

    assert out.loss_fn_output_type == loss
    assert out.metrics["loss:sum"] == pytest.approx(float(total.detach()), rel=1e-5, abs=1e-4)
    for got, want, d in zip(out.logprobs(), lps, datums, strict=True):
        assert got.shape == (len(d),)
        np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-5, atol=1e-5)
    ref_grads = dict(reference.named_parameters())
    checked = 0
    for name, p in client.model.named_parameters():
        want = ref_grads[name].grad
        if want is None:
            continue
        assert_grad_close(p.grad, want)
        checked += 1
    assert checked == len(list(client.model.parameters()))


def test_ppo_clipping_is_exercised(sampler_lps, reference):
    # The fixture's sampler logprobs are noisy enough that some ratios fall outside [0.8, 1.2].
    datums = rl_datums(sampler_lps)
    with torch.no_grad():
        ratios = np.concatenate([np.exp(plain_logprobs(reference, d).numpy() - d.extra["logprobs"]) for d in datums])
    assert (ratios < 0.8).sum() > 3 and (ratios > 1.2).sum() > 3


def test_forward_equals_forward_backward_without_changing_weights(tmp_path):
    client = ServiceClient(tmp_path, device="cpu").create_lora_training_client(TINY, rank=4, seed=0)
    before = {n: p.detach().clone() for n, p in client.model.named_parameters()}
    fwd = client.forward(ce_datums(), "cross_entropy").result()
    assert all(p.grad is None for p in client.model.parameters())
    fb = client.forward_backward(ce_datums(), "cross_entropy").result()
    assert fwd.metrics["loss:sum"] == pytest.approx(fb.metrics["loss:sum"], rel=1e-6)
    assert all(torch.equal(before[n], p) for n, p in client.model.named_parameters())


@pytest.mark.parametrize("memory", MEMORY, ids=["default", "checkpointed-chunked"])
def test_custom_loss_gradient_matches_plain_pytorch(memory, reference, tmp_path):
    """forward_backward_custom: the user's function of the logprobs, differentiated end to end."""
    datums = ce_datums()

    def fn(data, logprobs):
        seq = torch.stack([lp.sum() for lp in logprobs])
        loss = -torch.nn.functional.logsigmoid(0.1 * (seq[0] - seq[1])) + (seq[2:] ** 2).mean() * 1e-3
        return loss, {"custom:mean": float(loss.detach())}

    client = ServiceClient(tmp_path, device="cpu", micro_batch_tokens=25, **memory).create_full_finetune_training_client(TINY)
    out = client.forward_backward_custom(datums, fn).result()
    reference.zero_grad(set_to_none=True)
    loss, _ = fn(datums, [plain_logprobs(reference, d) for d in datums])
    loss.backward()
    assert out.metrics["loss:sum"] == pytest.approx(float(loss), rel=1e-5)
    assert out.metrics["custom:mean"] == pytest.approx(float(loss), rel=1e-5)
    ref = dict(reference.named_parameters())
    for name, p in client.model.named_parameters():
        assert_grad_close(p.grad, ref[name].grad)
