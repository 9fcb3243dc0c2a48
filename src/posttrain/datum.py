"""Datums: what a training step consumes. ``input = tokens[:-1]``, ``targets = tokens[1:]``, and
``weights[i]`` is the loss weight of predicting ``targets[i]``.

The JSON form is the tinker payload shape::

    {"model_input": {"chunks": [{"type": "encoded_text", "tokens": [...]}]},
     "loss_fn_inputs": {"target_tokens": {"data": [...], "dtype": "int64", "shape": [n]},
                        "weights": {"data": [...], "dtype": "float32", "shape": [n]}}}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from posttrain.errors import PosttrainError
from posttrain.payload import EncodedTextChunk, ModelInput, TensorData, as_numpy


class Datum:
    """One training sequence: ``input_chunks`` concatenate to the model input, and the loss inputs
    (``target_tokens``, ``weights``, and for RL losses e.g. ``logprobs`` and ``advantages`` in
    ``extra``) hold one value per input token.

    ``model_input`` and ``loss_fn_inputs`` give the tinker SDK's view of the same datum."""

    __slots__ = ("input_chunks", "target_tokens", "_weights", "extra")

    def __init__(
        self,
        input_chunks: tuple[np.ndarray, ...],
        target_tokens: np.ndarray,
        weights: np.ndarray | None = None,
        extra: Mapping[str, np.ndarray] | None = None,
    ):
        self.input_chunks = tuple(input_chunks)
        self.target_tokens = target_tokens
        self._weights = weights
        self.extra = dict(extra or {})
        n = sum(len(c) for c in self.input_chunks)
        lengths = {"target_tokens": len(target_tokens)}
        if weights is not None:
            lengths["weights"] = len(weights)
        lengths.update({k: len(v) for k, v in self.extra.items()})
        if any(m != n for m in lengths.values()):
            parts = ", ".join(f"{k} {m}" for k, m in lengths.items())
            raise PosttrainError(f"datum lengths disagree: input {n}, {parts}")

    @classmethod
    def from_loss_fn_inputs(cls, model_input: Any, loss_fn_inputs: Mapping[str, Any]) -> Datum:
        """Build from the SDK's shape: a ``ModelInput`` and a dict of tensors (TensorData, numpy, torch)."""
        if "target_tokens" not in loss_fn_inputs:
            raise PosttrainError("loss_fn_inputs needs 'target_tokens'")
        arrays = {k: as_numpy(v, k).reshape(-1) for k, v in loss_fn_inputs.items()}
        targets = arrays.pop("target_tokens").astype(np.int64)
        weights = arrays.pop("weights", None)
        extra = {k: v.astype(np.float32) for k, v in arrays.items()}
        chunks = tuple(np.asarray(c.tokens, dtype=np.int64) for c in model_input.chunks)
        return cls(chunks, targets, None if weights is None else weights.astype(np.float32), extra)

    @property
    def weights(self) -> np.ndarray:
        if self._weights is None:
            raise PosttrainError("this datum has no 'weights' loss input (it was built for another loss)")
        return self._weights

    @property
    def has_weights(self) -> bool:
        return self._weights is not None

    @property
    def input_tokens(self) -> np.ndarray:
        if len(self.input_chunks) == 1:
            return self.input_chunks[0]
        return np.concatenate(self.input_chunks) if self.input_chunks else np.zeros(0, np.int64)

    @property
    def model_input(self) -> ModelInput:
        return ModelInput([EncodedTextChunk(c.tolist()) for c in self.input_chunks])

    @property
    def loss_fn_inputs(self) -> dict[str, TensorData]:
        out = {"target_tokens": TensorData.from_numpy(self.target_tokens)}
        if self._weights is not None:
            out["weights"] = TensorData.from_numpy(self._weights)
        out.update({k: TensorData.from_numpy(v) for k, v in self.extra.items()})
        return out

    def __len__(self) -> int:
        return len(self.target_tokens)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Datum):
            return NotImplemented
        return (
            len(self.input_chunks) == len(other.input_chunks)
            and all(np.array_equal(a, b) for a, b in zip(self.input_chunks, other.input_chunks, strict=True))
            and np.array_equal(self.target_tokens, other.target_tokens)
            and _same_optional(self._weights, other._weights)
            and self.extra.keys() == other.extra.keys()
            and all(np.array_equal(v, other.extra[k]) for k, v in self.extra.items())
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        keys = ", ".join(self.loss_fn_inputs)
        return f"Datum(length={len(self)}, loss_fn_inputs=[{keys}])"

    def to_json(self) -> dict[str, Any]:
        n = len(self.target_tokens)
        return {
            "model_input": {
                "chunks": [{"type": "encoded_text", "tokens": c.tolist()} for c in self.input_chunks]
            },
            "loss_fn_inputs": {
                k: {"data": v.tolist(), "dtype": v.dtype, "shape": [n]} for k, v in self.loss_fn_inputs.items()
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
            arrays = {k: np.asarray(v["data"], dtype=v.get("dtype", "float32")) for k, v in lfi.items()}
            targets = arrays.pop("target_tokens")
        except (KeyError, TypeError) as err:
            raise PosttrainError(f"not a datum in the tinker payload shape: missing {err}") from err
        weights = arrays.pop("weights", None)
        return cls(chunks, targets, weights, arrays)

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
                k: tinker.TensorData(data=v.tolist(), dtype=v.dtype, shape=[len(self)])
                for k, v in self.loss_fn_inputs.items()
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
    n = datum_sequence_length(len(toks), max_length)
    toks, ws = toks[:n], ws[:n]
    return Datum((toks[:-1].copy(),), toks[1:].copy(), ws[1:].copy())


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


def _same_optional(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
