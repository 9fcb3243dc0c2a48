"""Shared pieces of the engine tests: a tiny model, datums of mixed lengths, and the independent
plain-PyTorch reference (the model loaded again with transformers, one unpacked sequence at a time)."""

from __future__ import annotations

import numpy as np
import torch
from transformers import AutoModelForCausalLM

from posttrain.engine.models import resolve_model
from posttrain.types import Datum

TINY = "posttrain:tiny-smollm2"
LENGTHS = (5, 17, 9, 30)


def tokens_of(length: int, seed: int, vocab: int = 49152) -> np.ndarray:
    return np.random.default_rng(seed).integers(3, vocab, size=length + 1).astype(np.int64)


def ce_datums(lengths=LENGTHS) -> list[Datum]:
    out = []
    for i, n in enumerate(lengths):
        toks = tokens_of(n, i)
        w = np.zeros(n, np.float32)
        w[n // 3:] = 1.0 + 0.5 * (i % 2)  # some untrained prefix, non-unit weights
        out.append(Datum.from_arrays((toks[:-1],), toks[1:], w))
    return out


def rl_datums(sampler_logprobs: list[np.ndarray], lengths=LENGTHS, seed: int = 7) -> list[Datum]:
    """RL datums whose sampler logprobs are the model's plus noise, so ratios leave [0.8, 1.2]."""
    rng = np.random.default_rng(seed)
    out = []
    for i, n in enumerate(lengths):
        toks = tokens_of(n, i)
        q = (sampler_logprobs[i] + rng.normal(0, 0.4, n)).astype(np.float32)
        adv = rng.normal(0, 1, n).astype(np.float32)
        adv[: n // 4] = 0.0  # observation tokens
        out.append(Datum.from_arrays((toks[:-1],), toks[1:], None, {"logprobs": q, "advantages": adv}))
    return out


def plain_model() -> torch.nn.Module:
    folder, _ = resolve_model(TINY)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    return model.eval()


def plain_logprobs(model: torch.nn.Module, datum: Datum) -> torch.Tensor:
    """log p(target_t | input_≤t) from an ordinary forward pass of one sequence."""
    ids = torch.from_numpy(datum.input_tokens)[None]
    logits = model(input_ids=ids).logits[0].float()
    return torch.log_softmax(logits, -1).gather(-1, torch.from_numpy(datum.target_tokens)[:, None]).squeeze(-1)
