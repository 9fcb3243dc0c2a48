"""The tinker payload types a datum is made of: :class:`ModelInput` (chunks of tokens) and
:class:`TensorData` (a flat tensor with dtype and shape).

Names, fields and methods mirror the ``tinker`` SDK (``ModelInput.from_ints``, ``to_ints``, ``length``,
``append_int``; ``TensorData.from_numpy``, ``to_numpy``, ``to_torch``, ``tolist``) so loop code reads
the same against either. Torch-free: ``to_torch``/``from_torch`` import torch only when called.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from posttrain.errors import PosttrainError

TensorDtype = Literal["int64", "float32"]


@dataclass(frozen=True)
class EncodedTextChunk:
    tokens: Sequence[int]
    type: Literal["encoded_text"] = "encoded_text"

    @property
    def length(self) -> int:
        return len(self.tokens)


@dataclass(frozen=True)
class ModelInput:
    """A model's input sequence as chunks of token ids."""

    chunks: list[EncodedTextChunk] = field(default_factory=list)

    @classmethod
    def from_ints(cls, tokens: Sequence[int]) -> ModelInput:
        return cls([EncodedTextChunk([int(t) for t in tokens])])

    @classmethod
    def empty(cls) -> ModelInput:
        return cls([])

    def to_ints(self) -> list[int]:
        return [int(t) for c in self.chunks for t in c.tokens]

    @property
    def length(self) -> int:
        return sum(len(c.tokens) for c in self.chunks)

    def append(self, chunk: EncodedTextChunk) -> ModelInput:
        return ModelInput([*self.chunks, chunk])

    def append_int(self, token: int) -> ModelInput:
        """A new ModelInput with ``token`` added to the last text chunk (as the SDK does)."""
        if self.chunks:
            last = self.chunks[-1]
            return ModelInput([*self.chunks[:-1], EncodedTextChunk([*last.tokens, int(token)])])
        return ModelInput.from_ints([token])


@dataclass(frozen=True)
class TensorData:
    """A flat tensor: ``data`` (a list or numpy array), ``dtype`` and ``shape``."""

    data: Any
    dtype: TensorDtype = "float32"
    shape: list[int] | None = None

    @classmethod
    def from_numpy(cls, array: np.ndarray) -> TensorData:
        dtype: TensorDtype = "int64" if np.issubdtype(array.dtype, np.integer) else "float32"
        return cls(np.asarray(array, dtype=dtype), dtype, list(array.shape))

    @classmethod
    def from_torch(cls, tensor: Any) -> TensorData:
        return cls.from_numpy(tensor.detach().cpu().numpy())

    def to_numpy(self) -> np.ndarray:
        array = np.asarray(self.data, dtype=self.dtype)
        return array.reshape(self.shape) if self.shape is not None else array

    def to_torch(self) -> Any:
        import torch

        return torch.from_numpy(self.to_numpy().copy())

    def tolist(self) -> list[Any]:
        return self.to_numpy().tolist()


def as_numpy(value: Any, name: str) -> np.ndarray:
    """A loss input given as TensorData (ours or the SDK's), a numpy array, a torch tensor or a list."""
    if hasattr(value, "to_numpy"):
        return np.asarray(value.to_numpy())
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as err:
        raise PosttrainError(f"loss input {name!r} is not a tensor: {type(value).__name__}") from err
