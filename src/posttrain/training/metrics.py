"""The mean negative log-likelihood of a batch, as tinker-cookbook computes it (the run's log and
progress bar live in :mod:`posttrain.runs`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mean_nll(logprobs: Sequence[np.ndarray], weights: Sequence[np.ndarray]) -> float:
    """``-Σ w·lp / Σ w`` over the batch (tinker-cookbook's ``compute_mean_nll``); NaN if nothing is weighted."""
    total_w = float(sum(np.sum(w) for w in weights))
    if total_w == 0:
        return float("nan")
    return -float(sum(np.dot(lp, w) for lp, w in zip(logprobs, weights, strict=True))) / total_w
