"""Process-group setup for data-parallel runs under ``torchrun``.

``torchrun --nproc_per_node N -m posttrain.cli train sft ...`` starts N processes with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` set; :func:`init_distributed` joins them (NCCL on GPUs, gloo on CPU).
Every rank runs the same loop on the same batches; the engine splits each batch across ranks and sums
the gradients (see :mod:`posttrain.engine.distributed`). Rank 0 writes the run folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from posttrain.engine.distributed import DistContext


def init_distributed() -> DistContext:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")
    return DistContext.current()


def shutdown_distributed() -> None:
    import torch.distributed as dist

    if _group_exists():
        dist.destroy_process_group()


def _group_exists() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


@contextmanager
def process_group() -> Iterator[DistContext]:
    """The torchrun group for the body: joined on entry and, if joined here, left after a clean finish.

    A process that exits with gloo's group alive can abort in the teardown of its C++ threads
    ("terminate called without an active exception", SIGABRT), failing a run that trained well. After an
    error the group stays as it is: destroying it while another rank waits in a collective would hang.
    A group the caller created is the caller's to leave."""
    joins = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not _group_exists()
    context = init_distributed()
    yield context
    if joins:
        shutdown_distributed()
