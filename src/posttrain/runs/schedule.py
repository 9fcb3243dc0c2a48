"""Learning-rate schedules, as tinker-cookbook defines them, plus an optional linear warmup.

``linear``: ``1 - step / total``; ``cosine``: ``½(1 + cos(π·step / total))``; ``constant``: 1. With
``warmup_steps`` w, step s < w uses ``(s + 1) / w`` of the scheduled value.
"""

from __future__ import annotations

import math
from typing import Literal

from posttrain.errors import PosttrainError

LRSchedule = Literal["linear", "cosine", "constant"]
SCHEDULES: tuple[str, ...] = ("linear", "cosine", "constant")


def lr_multiplier(schedule: str, step: int, total_steps: int, warmup_steps: int = 0) -> float:
    if total_steps <= 0:
        raise PosttrainError(f"total_steps must be positive, got {total_steps}")
    if schedule == "linear":
        value = 1 - step / total_steps
    elif schedule == "cosine":
        value = 0.5 * (1 + math.cos(math.pi * step / total_steps))
    elif schedule == "constant":
        value = 1.0
    else:
        raise PosttrainError(f"unknown learning-rate schedule {schedule!r}; known: {', '.join(SCHEDULES)}")
    if step < warmup_steps:
        value *= (step + 1) / warmup_steps
    return value
