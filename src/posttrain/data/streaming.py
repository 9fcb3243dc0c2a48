"""Streaming supervised dataset: rows come from a ``datasets.IterableDataset`` through a shuffle
buffer, so memory stays flat however large the source is.

Batches are read sequentially (``get_batch`` only moves forward; skipping ahead consumes rows
without building datums). ``set_epoch(seed)`` restarts the stream with the buffer reseeded, as
``datasets.IterableDataset.set_epoch`` does. The length is given explicitly, since a stream has
none. Resuming at (epoch, batch index) = ``set_epoch(epoch)`` then ``get_batch(index)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import datasets

from posttrain.data.supervised import FlatMapFn, MapFn, SupervisedDataset, _check_fns, apply_fns
from posttrain.errors import PosttrainError
from posttrain.types import Datum


class StreamingSupervisedDataset(SupervisedDataset):
    def __init__(
        self,
        source: datasets.IterableDataset,
        batch_size: int,
        length: int,
        map_fn: MapFn | None = None,
        flatmap_fn: FlatMapFn | None = None,
        buffer_size: int = 10_000,
        seed: int = 0,
    ):
        _check_fns(map_fn, flatmap_fn)
        if batch_size < 1 or length < 0:
            raise PosttrainError(f"need batch_size >= 1 and length >= 0, got {batch_size} and {length}")
        self.stream = source.shuffle(seed=seed, buffer_size=buffer_size) if buffer_size > 1 else source
        self.batch_size = batch_size
        self.length = length
        self.map_fn = map_fn
        self.flatmap_fn = flatmap_fn
        self.epoch = 0
        self._restart()

    def _restart(self) -> None:
        self.stream.set_epoch(self.epoch)
        self._rows: Iterator[dict[str, Any]] = iter(self.stream)
        self._next_index = 0

    def _take(self, n: int, index: int) -> list[dict[str, Any]]:
        rows = []
        for _ in range(n):
            try:
                rows.append(next(self._rows))
            except StopIteration:
                raise IndexError(f"the stream ended during batch {index}; it holds fewer rows than the length "
                                 f"{self.length} given") from None
        return rows

    def get_batch(self, index: int) -> list[Datum]:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range: {len(self)} batches of {self.batch_size}")
        if index < self._next_index:
            raise PosttrainError(f"streaming datasets only move forward: batch {index} requested after batch "
                                 f"{self._next_index - 1}; call set_epoch() to restart")
        for skipped in range(self._next_index, index):
            self._take(self.batch_size, skipped)
        rows = self._take(self.batch_size, index)
        self._next_index = index + 1
        return apply_fns(rows, self.map_fn, self.flatmap_fn)

    def set_epoch(self, seed: int = 0) -> None:
        self.epoch = seed
        self._restart()

    def __len__(self) -> int:
        return self.length // self.batch_size
