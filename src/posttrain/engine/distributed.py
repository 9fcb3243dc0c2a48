"""Data parallelism over ``torch.distributed`` (launch with ``torchrun``).

Each rank gets the whole batch, works on its share of the datums (``rank::world_size``), and the
gradients are summed across ranks with ``all_reduce`` before the optimizer step. The built-in losses
are sums over tokens, so that sum is exactly the single-process gradient of the whole batch. Grads are
reduced once per step rather than per backward (as DDP's hooks would): packed micro-batches give
ranks different numbers of backward passes, which DDP's per-backward collectives cannot handle.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1

    @classmethod
    def current(cls) -> DistContext:
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def shard(self, n: int) -> list[int]:
        """The datum indices this rank computes."""
        return list(range(self.rank, n, self.world_size))

    def gather(self, n: int, mine: Sequence[T]) -> list[T]:
        """Every rank's results in original datum order (each rank passes its shard's results)."""
        if not self.active:
            return list(mine)
        parts: list[Any] = [None] * self.world_size
        dist.all_gather_object(parts, list(mine))
        out: list[Any] = [None] * n
        for rank, values in enumerate(parts):
            for i, v in zip(range(rank, n, self.world_size), values, strict=True):
                out[i] = v
        return out

    def sum_grads(self, params: Iterable[torch.nn.Parameter]) -> None:
        if not self.active:
            return
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)

    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.active:
            dist.barrier()
