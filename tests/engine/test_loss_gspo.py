"""GSPO (Tinker's GSPO-token): value and gradients equal a plain-PyTorch computation of the documented
formula, written out here with its own sequence ratio (not the engine's code), per unpacked sequence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from posttrain.engine import ServiceClient
from posttrain.errors import PosttrainError
from posttrain.types import Datum
from tests.engine.test_losses import assert_grad_close
from tests.engine_util import TINY, ce_datums, plain_logprobs, plain_model, rl_datums


def reference_gspo(lp: torch.Tensor, q: np.ndarray, adv: np.ndarray, mask: np.ndarray, lo: float,
                   hi: float) -> torch.Tensor:
    """s = geometric mean of p/q over the masked tokens; token t's ratio is s in value, p_t/sg(p_t) in
    gradient: exp(log s) · p_t / sg(p_t)."""
    marked = torch.from_numpy(mask != 0)
    diff = lp.detach() - torch.from_numpy(q)
    log_s = diff[marked].sum() / marked.sum() if marked.any() else torch.tensor(0.0)
    s_t = torch.exp(log_s) * torch.exp(lp) / torch.exp(lp).detach()
    a = torch.from_numpy(adv)
    return -torch.min(s_t * a, torch.clamp(s_t, lo, hi) * a).sum()


def gspo_datums(sampler_lps: list[np.ndarray]) -> list[Datum]:
    out = []
    for i, d in enumerate(rl_datums(sampler_lps)):
        mask = (d.extra["advantages"] != 0).astype(np.float32)
        if i == 2:
            mask[:] = 0.0  # a sequence whose mask marks nothing: s = 1
        out.append(Datum.from_arrays(d.input_chunks, d.target_tokens, None, {**d.extra, "sequence_ratio_mask": mask}))
    return out


@pytest.mark.parametrize("cfg", [{}, {"clip_low_threshold": 0.95, "clip_high_threshold": 1.05}])
def test_gspo_matches_plain_pytorch(cfg, tmp_path):
    reference = plain_model()
    with torch.no_grad():
        sampler_lps = [plain_logprobs(reference, d).numpy() for d in ce_datums()]
    datums = gspo_datums(sampler_lps)
    client = ServiceClient(tmp_path, device="cpu", micro_batch_tokens=20).create_full_finetune_training_client(TINY)
    out = client.forward_backward(datums, "gspo", cfg).result()

    lo, hi = cfg.get("clip_low_threshold", 0.8), cfg.get("clip_high_threshold", 1.2)
    lps = [plain_logprobs(reference, d) for d in datums]
    total = sum(reference_gspo(lp, d.extra["logprobs"], d.extra["advantages"], d.extra["sequence_ratio_mask"], lo, hi)
                for lp, d in zip(lps, datums, strict=True))
    total.backward()
    assert out.metrics["loss:sum"] == pytest.approx(float(total.detach()), rel=1e-5, abs=1e-4)
    ref = dict(reference.named_parameters())
    for name, p in client.model.named_parameters():
        assert_grad_close(p.grad, ref[name].grad)


def test_gspo_needs_the_mask_and_stable_reinforce_is_refused(tmp_path):
    client = ServiceClient(tmp_path, device="cpu").create_lora_training_client(TINY, rank=2, seed=0)
    rl = rl_datums([np.zeros(n, np.float32) for n in (5, 17, 9, 30)])
    with pytest.raises(PosttrainError, match=r"datum 0: loss 'gspo' needs loss input\(s\) \['sequence_ratio_mask'\]"):
        client.forward_backward(rl, "gspo")
    with pytest.raises(PosttrainError, match="'stable_reinforce' is not supported by posttrain"):
        client.forward_backward(rl, "stable_reinforce")
