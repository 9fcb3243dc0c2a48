"""Datums from rendered tokens: what a training step consumes (the :class:`~posttrain.types.Datum`
type itself lives in :mod:`posttrain.types`). ``input = tokens[:-1]``, ``targets = tokens[1:]``, and
``weights[i]`` is the loss weight of predicting ``targets[i]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from posttrain.errors import PosttrainError
from posttrain.types import Datum


def datum_from_tokens_weights(
    tokens: Sequence[int] | np.ndarray,
    weights: Sequence[float] | np.ndarray,
    max_length: int | None = None,
) -> Datum:
    """Truncate to ``max_length`` tokens (keeping the start), then shift: input = tokens[:-1],
    targets = tokens[1:], weights = weights[1:] (the weight of each target)."""
    toks = np.asarray(tokens, dtype=np.int64)
    ws = np.asarray(weights, dtype=np.float32)
    if toks.ndim != 1 or ws.shape != toks.shape:
        raise PosttrainError(f"tokens and weights must be 1-D of equal length, got {toks.shape} and {ws.shape}")
    n = datum_sequence_length(len(toks), max_length)
    toks, ws = toks[:n], ws[:n]
    return Datum.from_arrays((toks[:-1].copy(),), toks[1:].copy(), ws[1:].copy())


def datum_sequence_length(n_tokens: int, max_length: int | None) -> int:
    """How many of ``n_tokens`` a datum keeps (before the shift): all, or the first ``max_length``.
    Raises when ``max_length`` is below 2 or fewer than 2 tokens are left."""
    if max_length is not None:
        if max_length < 2:
            raise PosttrainError(f"max_length must be at least 2, got {max_length}")
        n_tokens = min(n_tokens, max_length)
    if n_tokens < 2:
        raise PosttrainError(f"a datum needs at least 2 tokens, got {n_tokens}")
    return n_tokens
