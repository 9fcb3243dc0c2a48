"""The usual way to batch datums, for comparison with the engine's packing: right-padded tensors."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from posttrain.types import Datum


def padded_batch(datums: Sequence[Datum], device: torch.device) -> tuple[torch.Tensor, ...]:
    """``(input_ids, targets, weights, attention_mask)``, each ``[batch, longest]``, zero-padded."""
    width = max(len(d) for d in datums)
    ids = torch.zeros(len(datums), width, dtype=torch.long)
    targets, weights, mask = torch.zeros_like(ids), torch.zeros(len(datums), width), torch.zeros_like(ids)
    for i, d in enumerate(datums):
        n = len(d)
        ids[i, :n], targets[i, :n] = torch.from_numpy(d.input_tokens), torch.from_numpy(d.target_tokens)
        weights[i, :n], mask[i, :n] = torch.from_numpy(d.weights), 1
    return tuple(t.to(device) for t in (ids, targets, weights, mask))


def padded_logprobs(model: torch.nn.Module, ids: torch.Tensor, targets: torch.Tensor,
                    mask: torch.Tensor) -> torch.Tensor:
    logits = model(input_ids=ids, attention_mask=mask).logits.float()
    return torch.log_softmax(logits, -1).gather(-1, targets[..., None]).squeeze(-1)
