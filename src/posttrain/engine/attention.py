"""Attention for packed batches at the cost of the sequences alone.

A packed batch lays sequences end to end in one row. Left to itself, ``transformers`` turns the position
resets into a dense ``[T, T]`` block-diagonal mask: SDPA then computes all T² scores, skips no block, and
autograd keeps an fp32 copy of the mask per layer. Here the batch's boundaries travel with the forward
call (``cu_seq_lens_q``, the cumulative lengths, as the flash-attention kwargs spell them) and each
sequence gets its own causal SDPA call, so attention costs Σ nᵢ², not (Σ nᵢ)², and no ``[T, T]`` mask is
built (a sliding-window model gets an ``[n, n]`` band for each sequence longer than its window).

The implementation is registered with ``transformers`` under :data:`PACKED_ATTENTION`. A call without
boundaries (generation with a KV cache, a padded batch) is plain SDPA with the usual masks, so a model
switched to it behaves as before everywhere else.

Models whose layers carry state along the row (linear attention, state-space layers: Qwen3-Next,
Qwen3.5, Mamba hybrids) ignore position resets, so packing would leak one sequence into the next:
:func:`can_pack` says no for them and the engine runs each sequence on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch
import torch.nn.functional as F

from posttrain.errors import PosttrainError

PACKED_ATTENTION = "posttrain_packed"
_ATTENTION_LAYERS = {"full_attention", "sliding_attention", "attention"}
_RECURRENT_MODEL_TYPES = {  # layers that carry state along the row; checked besides config.layer_types
    "mamba", "mamba2", "jamba", "bamba", "falcon_h1", "falcon_mamba", "granitemoehybrid", "lfm2", "lfm2_moe",
    "zamba", "zamba2", "rwkv", "recurrent_gemma", "qwen3_next", "qwen3_5", "qwen3_5_moe", "nemotron_h",
    "minimax", "xlstm",
}
_UNSUPPORTED = ("softcap", "s_aux", "sinks", "position_bias")  # attention variants SDPA per sequence lacks
_building_packed_mask: ContextVar[bool] = ContextVar("posttrain_packed_forward", default=False)


def can_pack(config: Any) -> bool:
    """Whether sequences of this model can share a row: every layer attends causally (or within a
    sliding window), none carries state, none soft-caps its scores. :class:`~.forward.PackedForward`
    also checks it on the model itself before packing."""
    text = getattr(config, "text_config", None) or config
    if getattr(text, "model_type", None) in _RECURRENT_MODEL_TYPES:
        return False
    if getattr(text, "attn_logit_softcapping", None) is not None:
        return False
    layer_types = getattr(text, "layer_types", None) or ()
    return all(kind in _ATTENTION_LAYERS for kind in layer_types)


def boundaries(lengths: list[int]) -> dict[str, Any]:
    """The forward kwargs that mark where each packed sequence starts. Kept on the CPU: only this
    module reads them, and reading them from a GPU would synchronise once per layer."""
    cu = torch.zeros(len(lengths) + 1, dtype=torch.int32)
    cu[1:] = torch.cumsum(torch.tensor(lengths), 0)
    longest = max(lengths)
    return {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": longest, "max_length_k": longest}


@contextmanager
def packed_forward() -> Iterator[None]:
    """While active, the model builds no attention mask (the boundaries replace it)."""
    token = _building_packed_mask.set(True)
    try:
        yield
    finally:
        _building_packed_mask.reset(token)


def _sliding_band(n: int, window: int, device: torch.device) -> torch.Tensor:
    i = torch.arange(n, device=device)
    return (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] < window)


def _one_sequence(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scaling: float | None,
                  window: int | None) -> torch.Tensor:
    from transformers.integrations.sdpa_attention import repeat_kv

    n, groups = q.shape[2], q.shape[1] // k.shape[1]
    if window is not None and n > window:  # the band only matters past the window
        mask = _sliding_band(n, window, q.device)
        # grouped-query SDPA with a mask falls back to the math kernel: expand the heads instead
        return F.scaled_dot_product_attention(q, repeat_kv(k, groups), repeat_kv(v, groups), attn_mask=mask,
                                              scale=scaling)
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scaling, enable_gqa=groups > 1)


def packed_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                     **kwargs: Any) -> tuple[torch.Tensor, None]:
    """``transformers`` attention interface: ``[1, H, T, D]`` in, ``[1, T, H, D]`` out."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    cu = kwargs.get("cu_seq_lens_q")
    if cu is None:
        if _building_packed_mask.get():  # no mask was built: without boundaries the row would be one sequence
            raise PosttrainError(f"{type(module).__name__} did not pass the packed sequences' boundaries to its "
                                 "attention; this architecture cannot be packed")
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    unsupported = [k for k in _UNSUPPORTED if kwargs.get(k) is not None] + (["dropout"] if dropout else [])
    if unsupported or kwargs.get("is_causal", getattr(module, "is_causal", True)) is False:
        raise PosttrainError(f"packed attention cannot apply {unsupported or 'non-causal attention'} "
                             f"({type(module).__name__})")
    window = kwargs.get("sliding_window")
    starts = cu.tolist()
    outs = [_one_sequence(query[:, :, s:e], key[:, :, s:e], value[:, :, s:e], scaling, window)
            for s, e in zip(starts[:-1], starts[1:], strict=True)]
    return torch.cat(outs, dim=2).transpose(1, 2).contiguous(), None


def _packed_mask(*args: Any, **kwargs: Any) -> Any:
    from transformers.masking_utils import sdpa_mask

    return None if _building_packed_mask.get() else sdpa_mask(*args, **kwargs)


def register() -> None:
    """Make :data:`PACKED_ATTENTION` a valid ``attn_implementation`` (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(PACKED_ATTENTION, packed_attention)
    AttentionMaskInterface.register(PACKED_ATTENTION, _packed_mask)
