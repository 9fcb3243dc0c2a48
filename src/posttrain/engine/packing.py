"""Datums as the engine packs them: checked, and grouped into micro-batches.

A batch is packed into one row: sequences laid end to end, each with its own ``position_ids``
starting at 0, attending only within itself (:mod:`.attention`), so no compute is spent on padding and
a datum's logprobs are those it would get alone (:mod:`.forward` computes them). Batches larger than
a token budget are split into micro-batches; losses are sums over tokens, so accumulating micro-batch
gradients is exact.

Every datum is checked here before any compute, so bad input changes no state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from posttrain.errors import PosttrainError
from posttrain.types import Datum
from posttrain.types.payload import as_numpy


class DatumError(PosttrainError, ValueError):
    """A datum cannot be used as given; the message names its index and the problem."""


@dataclass
class PackedDatum:
    tokens: np.ndarray  # model input, int64
    inputs: dict[str, np.ndarray]  # loss inputs, target_tokens included

    def __len__(self) -> int:
        return len(self.tokens)


def as_packed(datum: Any, index: int) -> PackedDatum:
    """Our Datum, a ``tinker.Datum`` (anything with ``model_input``/``loss_fn_inputs``) or a payload dict."""
    try:
        if isinstance(datum, dict):
            datum = Datum.from_json(datum)
        if isinstance(datum, Datum):
            inputs = {"target_tokens": datum.target_tokens, **datum.extra}
            if datum.has_weights:
                inputs["weights"] = datum.weights
            return PackedDatum(np.asarray(datum.input_tokens, dtype=np.int64), inputs)
        tokens = np.asarray(datum.model_input.to_ints(), dtype=np.int64)
        inputs = {k: as_numpy(v, k).reshape(-1) for k, v in datum.loss_fn_inputs.items()}
        return PackedDatum(tokens, inputs)
    except (AttributeError, TypeError, ValueError, PosttrainError) as err:
        raise DatumError(f"datum {index}: not a datum ({err})") from err


def check_datums(datums: Sequence[PackedDatum], needs: Sequence[str], vocab_size: int, context: int,
                 loss_name: str) -> None:
    if not datums:
        raise DatumError("no datums: a batch needs at least one")
    for i, d in enumerate(datums):
        missing = [k for k in ("target_tokens", *needs) if k not in d.inputs]
        if missing:
            raise DatumError(f"datum {i}: loss {loss_name!r} needs loss input(s) {missing}; "
                             f"the datum has {sorted(d.inputs)}")
        _check_one(i, d, vocab_size, context)


def _check_one(i: int, d: PackedDatum, vocab_size: int, context: int) -> None:
    n = len(d.tokens)
    if n == 0:
        raise DatumError(f"datum {i}: empty model input")
    if n > context:
        raise DatumError(f"datum {i}: {n} tokens exceed the model's context length of {context}")
    for key, arr in d.inputs.items():
        if len(arr) != n:
            raise DatumError(f"datum {i}: loss input {key!r} has {len(arr)} values for {n} input tokens")
        if key != "target_tokens" and not np.all(np.isfinite(arr)):
            raise DatumError(f"datum {i}: loss input {key!r} has non-finite values")
    for key, ids in (("model_input", d.tokens), ("target_tokens", d.inputs["target_tokens"])):
        bad = np.flatnonzero((ids < 0) | (ids >= vocab_size))
        if len(bad):
            raise DatumError(f"datum {i}: token id {int(ids[bad[0]])} at {key} position {int(bad[0])} is outside "
                             f"the model's vocabulary (size {vocab_size})")


def micro_batches(lengths: Sequence[int], token_budget: int) -> list[list[int]]:
    """Consecutive datum indices grouped so each group's total length stays within the budget (a datum
    longer than the budget gets a group of its own)."""
    groups: list[list[int]] = []
    total = 0
    for i, n in enumerate(lengths):
        if groups and total + n <= token_budget:
            groups[-1].append(i)
            total += n
        else:
            groups.append([i])
            total = n
    return groups


def input_tensors(d: PackedDatum, device: torch.device) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v, dtype=torch.float32, device=device)
            for k, v in d.inputs.items() if k != "target_tokens"}
