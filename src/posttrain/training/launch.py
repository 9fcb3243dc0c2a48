"""Process-group setup for data-parallel runs under ``torchrun``.

``torchrun --nproc_per_node N -m posttrain.cli train sft ...`` starts N processes with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` set; :func:`init_distributed` joins them (NCCL on GPUs, gloo on CPU).
Every rank runs the same loop on the same batches; the engine splits each batch across ranks and sums
the gradients (see :mod:`posttrain.engine.distributed`). Rank 0 writes the run folder.
"""

from __future__ import annotations

import os

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

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
