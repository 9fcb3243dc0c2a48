"""The datum, as the tinker SDK spells it: ``Datum(model_input=..., loss_fn_inputs=...)``.

``input = tokens[:-1]``, ``targets = tokens[1:]``, and ``weights[i]`` is the loss weight of predicting
``targets[i]``. The JSON form is the tinker payload shape::

    {"model_input": {"chunks": [{"type": "encoded_text", "tokens": [...]}]},
     "loss_fn_inputs": {"target_tokens": {"data": [...], "dtype": "int64", "shape": [n]},
                        "weights": {"data": [...], "dtype": "float32", "shape": [n]}}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from posttrain.errors import PosttrainError
from posttrain.types.payload import EncodedTextChunk, ModelInput, TensorData, as_numpy


class Datum:
    """One training sequence, built as in the tinker SDK: ``Datum(model_input=ModelInput.from_ints(...),
    loss_fn_inputs={"target_tokens": ..., "weights": ...})`` (values: TensorData, numpy arrays, torch
    tensors or lists). Every loss input holds one value per input token.

    Held as arrays: ``input_chunks`` (concatenating to the model input), ``target_tokens``, ``weights``
    and, for RL losses, ``extra`` (e.g. ``logprobs``, ``advantages``); :meth:`from_arrays` builds one
    from them without conversion."""

    __slots__ = ("input_chunks", "target_tokens", "_weights", "extra")

    def __init__(self, model_input: Any, loss_fn_inputs: Mapping[str, Any]):
        if "target_tokens" not in loss_fn_inputs:
            raise PosttrainError("loss_fn_inputs needs 'target_tokens'")
        arrays = {k: as_numpy(v, k).reshape(-1) for k, v in loss_fn_inputs.items()}
        targets = arrays.pop("target_tokens").astype(np.int64)
        weights = arrays.pop("weights", None)
        chunks = tuple(np.asarray(c.tokens, dtype=np.int64) for c in model_input.chunks)
        self._set(chunks, targets, None if weights is None else weights.astype(np.float32),
                  {k: v.astype(np.float32) for k, v in arrays.items()})

    @classmethod
    def from_arrays(cls, input_chunks: tuple[np.ndarray, ...], target_tokens: np.ndarray,
                    weights: np.ndarray | None = None, extra: Mapping[str, np.ndarray] | None = None) -> Datum:
        datum = cls.__new__(cls)
        datum._set(tuple(input_chunks), target_tokens, weights, extra)
        return datum

    def _set(self, input_chunks: tuple[np.ndarray, ...], target_tokens: np.ndarray, weights: np.ndarray | None,
             extra: Mapping[str, np.ndarray] | None) -> None:
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
        return cls.from_arrays(chunks, targets, weights, arrays)


def _same_optional(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
