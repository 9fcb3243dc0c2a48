"""Datums: what a training step consumes. ``input = tokens[:-1]``, ``targets = tokens[1:]``, and
``weights[i]`` is the loss weight of predicting ``targets[i]``.

The JSON form is the tinker payload shape::

    {"model_input": {"chunks": [{"type": "encoded_text", "tokens": [...]}]},
     "loss_fn_inputs": {"target_tokens": {"data": [...], "dtype": "int64", "shape": [n]},
                        "weights": {"data": [...], "dtype": "float32", "shape": [n]}}}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from posttrain.errors import PosttrainError


@dataclass(frozen=True, eq=False)
class Datum:
    """One training sequence. ``input_chunks`` concatenate to the model input."""

    input_chunks: tuple[np.ndarray, ...]
    target_tokens: np.ndarray
    weights: np.ndarray

    def __post_init__(self) -> None:
        n = sum(len(c) for c in self.input_chunks)
        if n != len(self.target_tokens) or n != len(self.weights):
            raise PosttrainError(
                f"datum lengths disagree: input {n}, target_tokens {len(self.target_tokens)}, weights {len(self.weights)}"
            )

    @property
    def input_tokens(self) -> np.ndarray:
        if len(self.input_chunks) == 1:
            return self.input_chunks[0]
        return np.concatenate(self.input_chunks) if self.input_chunks else np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self.target_tokens)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Datum):
            return NotImplemented
        return (
            len(self.input_chunks) == len(other.input_chunks)
            and all(np.array_equal(a, b) for a, b in zip(self.input_chunks, other.input_chunks, strict=True))
            and np.array_equal(self.target_tokens, other.target_tokens)
            and np.array_equal(self.weights, other.weights)
        )

    def to_json(self) -> dict[str, Any]:
        n = len(self.target_tokens)
        return {
            "model_input": {
                "chunks": [{"type": "encoded_text", "tokens": c.tolist()} for c in self.input_chunks]
            },
            "loss_fn_inputs": {
                "target_tokens": {"data": self.target_tokens.tolist(), "dtype": "int64", "shape": [n]},
                "weights": {"data": self.weights.tolist(), "dtype": "float32", "shape": [n]},
            },
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Datum:
        try:
            chunks = tuple(
                np.asarray(c["tokens"], dtype=np.int64)
                for c in obj["model_input"]["chunks"]
                if c.get("type", "encoded_text") == "encoded_text"
            )
            lfi = obj["loss_fn_inputs"]
            targets = np.asarray(lfi["target_tokens"]["data"], dtype=np.int64)
            weights = np.asarray(lfi["weights"]["data"], dtype=np.float32)
        except (KeyError, TypeError) as err:
            raise PosttrainError(f"not a datum in the tinker payload shape: missing {err}") from err
        return cls(chunks, targets, weights)

    def to_tinker(self) -> Any:
        """Convert to ``tinker.Datum`` (needs the optional ``tinker`` SDK)."""
        try:
            import tinker
        except ImportError as err:
            raise PosttrainError("Datum.to_tinker needs the tinker SDK: pip install 'posttrain[tinker]'") from err
        model_input = tinker.ModelInput(
            chunks=[tinker.types.EncodedTextChunk(tokens=c.tolist()) for c in self.input_chunks]
        )
        return tinker.Datum(
            model_input=model_input,
            loss_fn_inputs={
                "target_tokens": tinker.TensorData(data=self.target_tokens.tolist(), dtype="int64",
                                                   shape=[len(self.target_tokens)]),
                "weights": tinker.TensorData(data=self.weights.tolist(), dtype="float32", shape=[len(self.weights)]),
            },
        )


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
    if max_length is not None:
        if max_length < 2:
            raise PosttrainError(f"max_length must be at least 2, got {max_length}")
        toks, ws = toks[:max_length], ws[:max_length]
    if len(toks) < 2:
        raise PosttrainError(f"a datum needs at least 2 tokens, got {len(toks)}")
    return Datum((toks[:-1].copy(),), toks[1:].copy(), ws[1:].copy())
