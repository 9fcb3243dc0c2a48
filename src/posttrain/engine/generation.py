"""Batched sampling with a KV cache.

Prompts of different lengths are left-padded into one batch (attention mask and position ids skip the
padding). A prompt sampled several times (``num_samples``, or an RL group's shared prompt) is prefilled
once and its KV cache copied to each of its rows. Each step samples from the logits shaped by temperature, top-k and top-p, and records the
sampled token's log-probability at temperature 1: the number ``forward`` and ``compute_logprobs``
give for the same token, which importance-sampling losses compare against.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from posttrain.errors import PosttrainError
from posttrain.types import SampledSequence, SamplingParams

STOP_TAIL_TOKENS = 32  # stop strings are searched in the decoded tail of this many tokens


@dataclass(frozen=True)
class StopCondition:
    token_ids: frozenset[int]
    strings: tuple[str, ...]

    @classmethod
    def from_params(cls, stop: str | Sequence[str] | Sequence[int] | None) -> StopCondition:
        if stop is None:
            return cls(frozenset(), ())
        if isinstance(stop, str):
            return cls(frozenset(), (stop,))
        items = list(stop)
        if all(isinstance(s, int) and not isinstance(s, bool) for s in items):
            return cls(frozenset(s for s in items if isinstance(s, int)), ())
        if all(isinstance(s, str) and s for s in items):
            return cls(frozenset(), tuple(str(s) for s in items))
        raise PosttrainError(f"SamplingParams.stop must be a string, a list of strings or a list of token ids, got {stop!r}")

    def hit(self, tokens: list[int], decode: Callable[[list[int]], str]) -> bool:
        if tokens and tokens[-1] in self.token_ids:
            return True
        if self.strings:
            tail = decode(tokens[-STOP_TAIL_TOKENS:])
            return any(s in tail for s in self.strings)
        return False


def check_params(params: SamplingParams, num_samples: int) -> None:
    if num_samples < 1:
        raise PosttrainError(f"num_samples must be at least 1, got {num_samples}")
    if params.max_tokens is not None and params.max_tokens < 1:
        raise PosttrainError(f"SamplingParams.max_tokens must be at least 1, got {params.max_tokens}")
    if params.temperature < 0:
        raise PosttrainError(f"SamplingParams.temperature must be >= 0, got {params.temperature}")
    if not 0 < params.top_p <= 1:
        raise PosttrainError(f"SamplingParams.top_p must be in (0, 1], got {params.top_p}")
    if params.top_k == 0 or params.top_k < -1:
        raise PosttrainError(f"SamplingParams.top_k must be -1 (off) or positive, got {params.top_k}")
    StopCondition.from_params(params.stop)


def _choose(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator) -> torch.Tensor:
    if params.temperature == 0:
        return logits.argmax(-1)
    scores = logits / params.temperature
    if params.top_k > 0:
        kth = torch.topk(scores, min(params.top_k, scores.shape[-1]), dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if params.top_p < 1:
        sorted_scores, order = torch.sort(scores, descending=True, dim=-1)
        probs = torch.softmax(sorted_scores, -1)
        drop = probs.cumsum(-1) - probs >= params.top_p  # keep the smallest prefix reaching top_p
        scores = scores.scatter(-1, order, sorted_scores.masked_fill(drop, float("-inf")))
    probs = torch.softmax(scores, -1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(logits.device)


def _cache_arg(model: torch.nn.Module) -> str:
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _prefill(model: torch.nn.Module, prompts: Sequence[Sequence[int]], longest: int, device: torch.device,
             share: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Last-position logits, attention mask, positions and cache kwargs, one row per prompt. With
    ``share``, each distinct prompt is prefilled once and its rows get copies of its KV cache (attention
    caches only: a recurrent layer's state cannot be selected by row)."""
    from transformers import DynamicCache

    from posttrain.engine.attention import can_pack

    share = share and can_pack(getattr(model, "config", None))

    distinct: dict[tuple[int, ...], int] = {}
    keys = [tuple(p) if share else (i, *p) for i, p in enumerate(prompts)]
    rows = torch.tensor([distinct.setdefault(k, len(distinct)) for k in keys], device=device)
    ids = torch.zeros(len(distinct), longest, dtype=torch.long)
    mask = torch.zeros(len(distinct), longest, dtype=torch.long)
    for key, i in distinct.items():
        p = key if share else key[1:]
        ids[i, longest - len(p):] = torch.tensor(p)
        mask[i, longest - len(p):] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache(config=getattr(model, "config", None))
    # transformers 5.x renamed past_key_values to cache; take whichever this model's forward has
    cache_kw: dict[str, Any] = {_cache_arg(model): cache}
    prefill_kw = dict(cache_kw)
    if "logits_to_keep" in inspect.signature(model.forward).parameters:
        prefill_kw["logits_to_keep"] = 1  # the prefill needs only the last position's logits
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **prefill_kw).logits[:, -1]
    if len(distinct) < len(prompts):
        cache.batch_select_indices(rows)
    return logits[rows], mask[rows], positions[rows], cache_kw


@torch.no_grad()
def generate(model: torch.nn.Module, prompts: Sequence[Sequence[int]], params: SamplingParams, context: int,
             decode: Callable[[list[int]], str], share_prefill: bool = True) -> list[SampledSequence]:
    """Sample one continuation per prompt, all prompts in one batch. ``share_prefill=False`` prefills
    every row on its own (the same numbers, more work: kept for benchmarks)."""
    device = next(model.parameters()).device
    longest = max(len(p) for p in prompts)
    room = context - longest
    if room < 1:
        raise PosttrainError(f"a prompt of {longest} tokens leaves no room in the model's context of {context}")
    max_new = min(params.max_tokens or room, room)
    stop = StopCondition.from_params(params.stop)
    seed = params.seed if params.seed is not None else int.from_bytes(os.urandom(7), "little")
    generator = torch.Generator().manual_seed(seed)

    logits, mask, positions, cache_kw = _prefill(model, prompts, longest, device, share_prefill)
    tokens: list[list[int]] = [[] for _ in prompts]
    logprobs: list[list[float]] = [[] for _ in prompts]
    done = [False] * len(prompts)
    for _ in range(max_new):
        logp = torch.log_softmax(logits.float(), -1)
        chosen = _choose(logits.float(), params, generator)
        chosen_lp = logp.gather(-1, chosen[:, None]).squeeze(-1).tolist()
        for i, (t, lp) in enumerate(zip(chosen.tolist(), chosen_lp, strict=True)):
            if not done[i]:
                tokens[i].append(t)
                logprobs[i].append(lp)
                done[i] = stop.hit(tokens[i], decode)
        if all(done):
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], -1)
        positions = positions[:, -1:] + 1
        logits = model(input_ids=chosen[:, None], attention_mask=mask, position_ids=positions, use_cache=True,
                       **cache_kw).logits[:, -1]
    return [SampledSequence("stop" if d else "length", t, lp) for d, t, lp in zip(done, tokens, logprobs, strict=True)]
