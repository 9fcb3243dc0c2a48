"""Supervised datasets: indexable batches over a ``datasets.Dataset`` with exact epoch order.

Semantics follow tinker-cookbook's ``SupervisedDatasetFromHFDataset``:

* batch ``i`` holds the datums of rows ``[i*bs, (i+1)*bs)`` of the current epoch order;
* ``len(ds) == n_rows // batch_size`` (the last partial batch is dropped);
* ``set_epoch(seed)`` reshuffles the *rows* with ``datasets.Dataset.shuffle(seed=seed)`` — the
  exact permutation ``datasets`` produces — and datums are built lazily, per batch.

Resuming at (epoch seed, batch index) is ``set_epoch(seed)`` then ``get_batch(index)``: batches
are a pure function of those two numbers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Literal

import datasets
import numpy as np

from posttrain.datum import datum_from_tokens_weights, datum_sequence_length
from posttrain.errors import NothingToTrainError, PosttrainError
from posttrain.messages import MessageLike
from posttrain.renderers.base import Renderer, SupervisedExample
from posttrain.train_on_what import TrainOnWhat
from posttrain.types import Datum

MapFn = Callable[[dict[str, Any]], Datum]
FlatMapFn = Callable[[dict[str, Any]], list[Datum]]


class SupervisedDataset(ABC):
    """Batches of datums; the interface training loops consume."""

    @abstractmethod
    def get_batch(self, index: int) -> list[Datum]: ...

    @abstractmethod
    def __len__(self) -> int: ...

    def set_epoch(self, seed: int = 0) -> None:  # noqa: B027 - datasets without shuffling keep their order
        """Reorder rows for a new epoch (no-op for datasets that do not shuffle)."""


def conversation_to_datum(
    conversation: Sequence[MessageLike],
    renderer: Renderer,
    max_length: int | None,
    train_on_what: TrainOnWhat | str = TrainOnWhat.ALL_ASSISTANT_MESSAGES,
    reduction: Literal["none", "mean"] = "mean",
) -> Datum:
    """Render one conversation and cut it into a datum (truncated to ``max_length`` first).

    ``reduction="mean"`` (the default, as in tinker-cookbook's SFT path) scales each datum's weights
    to sum to 1, so long and short examples weigh the same; ``"none"`` keeps the renderer's 0/1
    weights (token-sum loss, what DPO needs). Raises :class:`NothingToTrainError` when truncation
    leaves no trained token (an all-zero datum would silently train on nothing).
    """
    _check_reduction(reduction)
    return example_to_datum(renderer.build_supervised_example(conversation, train_on_what), max_length, reduction)


def _check_reduction(reduction: str) -> None:
    if reduction not in ("none", "mean"):
        raise PosttrainError(f"unknown reduction {reduction!r} (expected 'none' or 'mean')")


def example_to_datum(
    example: SupervisedExample, max_length: int | None, reduction: Literal["none", "mean"] = "mean"
) -> Datum:
    """The datum of a rendered example: truncate, shift, check something is left to train, reduce."""
    _check_reduction(reduction)
    datum = datum_from_tokens_weights(example.tokens, example.weights, max_length)
    if not datum.weights.any():
        raise _nothing_to_train(example, max_length)
    if reduction == "mean":
        total = float(datum.weights.sum())
        datum = Datum.from_arrays(datum.input_chunks, datum.target_tokens, (datum.weights / total).astype(np.float32))
    return datum


def datum_target_counts(example: SupervisedExample, max_length: int | None) -> tuple[int, int]:
    """``(targets, trained targets)`` of :func:`example_to_datum`'s datum, without building it: the
    same truncation, the same errors (lengths, and :class:`NothingToTrainError` when nothing is trained)."""
    tokens, weights = example.tokens, example.weights
    if len(weights) != len(tokens):
        raise PosttrainError(f"tokens and weights must be 1-D of equal length, got ({len(tokens)},) and "
                             f"({len(weights)},)")
    n = datum_sequence_length(len(tokens), max_length)
    target_weights = list(weights[1:n])  # a list already when a renderer made the example
    trained = len(target_weights) - target_weights.count(0.0)
    if trained == 0:
        raise _nothing_to_train(example, max_length)
    return n - 1, trained


def _nothing_to_train(example: SupervisedExample, max_length: int | None) -> NothingToTrainError:
    # Renderers never return an example without a trained token, so truncation removed them all.
    tokens, weights = example.tokens, example.weights
    first = next((i for i, w in enumerate(weights) if i > 0 and w > 0), len(tokens))
    return NothingToTrainError(f"max_length {max_length} cuts this conversation ({len(tokens)} tokens) before "
                               f"its first trained token (position {first}); nothing left to train")


def _check_fns(map_fn: MapFn | None, flatmap_fn: FlatMapFn | None) -> None:
    if (map_fn is None) == (flatmap_fn is None):
        raise PosttrainError("pass exactly one of map_fn (row → datum) or flatmap_fn (row → list of datums)")


def apply_fns(rows: list[dict[str, Any]], map_fn: MapFn | None, flatmap_fn: FlatMapFn | None) -> list[Datum]:
    if map_fn is not None:
        return [map_fn(row) for row in rows]
    assert flatmap_fn is not None
    return [d for row in rows for d in flatmap_fn(row)]


class SupervisedDatasetFromHFDataset(SupervisedDataset):
    """Indexable batches over a ``datasets.Dataset``; datums are built when a batch is asked for."""

    def __init__(
        self,
        hf_dataset: datasets.Dataset,
        batch_size: int,
        map_fn: MapFn | None = None,
        flatmap_fn: FlatMapFn | None = None,
    ):
        _check_fns(map_fn, flatmap_fn)
        if batch_size < 1:
            raise PosttrainError(f"batch_size must be at least 1, got {batch_size}")
        self.hf_dataset = hf_dataset
        self.shuffle_dataset = hf_dataset  # the current epoch order
        self.batch_size = batch_size
        self.map_fn = map_fn
        self.flatmap_fn = flatmap_fn

    def get_batch(self, index: int) -> list[Datum]:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range: {len(self)} batches of {self.batch_size} "
                             f"({len(self.hf_dataset)} rows, last partial batch dropped)")
        rows = self.shuffle_dataset.select(range(index * self.batch_size, (index + 1) * self.batch_size))
        return apply_fns(rows.to_list(), self.map_fn, self.flatmap_fn)

    def set_epoch(self, seed: int = 0) -> None:
        self.shuffle_dataset = self.hf_dataset.shuffle(seed=seed)

    def __len__(self) -> int:
        return len(self.hf_dataset) // self.batch_size
