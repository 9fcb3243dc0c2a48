"""Addition problems: ``"What is x + y?"``, reward 1 for the right number (tinker-cookbook's arithmetic
task). The last integer in the reply is the answer; one few-shot example shows the expected form."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np

from posttrain.renderers.base import Renderer
from posttrain.rl.problem_env import ProblemEnv, ProblemGroupBuilder
from posttrain.rl.types import RLDataset

_INTEGER = re.compile(r"-?\d+")
FEW_SHOT: tuple[dict[str, Any], ...] = (
    {"role": "user", "content": "What is 4 + 5?"},
    {"role": "assistant", "content": "9"},
)


def last_integer(text: str) -> int | None:
    """The last integer in ``text`` (thousands separators ignored), or None."""
    found = _INTEGER.findall(text.replace(",", ""))
    return int(found[-1]) if found else None


class ArithmeticEnv(ProblemEnv):
    def __init__(self, renderer: Renderer, x: int, y: int, few_shot: Sequence[dict[str, Any]] = FEW_SHOT,
                 format_coef: float = 0.1):
        super().__init__(renderer, f"What is {x} + {y}?", str(x + y), few_shot, format_coef)
        self.x, self.y = x, y

    def check_answer(self, text: str) -> bool:
        return last_integer(text) == self.x + self.y

    def check_format(self, text: str) -> bool:
        return True  # as the reference: only the stop token counts toward the format


class ArithmeticDataset(RLDataset):
    """``n_batches`` batches of ``batch_size`` problems, ``group_size`` envs each. Operands are drawn
    from ``[0, max_operand]`` by an RNG seeded with ``(seed, batch index)``: a batch is the same
    whenever and in whatever order it is asked for."""

    def __init__(self, batch_size: int, group_size: int, n_batches: int, seed: int, renderer: Renderer,
                 include_few_shot: bool = True, max_operand: int = 100, format_coef: float = 0.1):
        if batch_size < 1 or group_size < 1 or n_batches < 0:
            raise ValueError(f"batch_size and group_size must be positive and n_batches non-negative, got "
                             f"{batch_size}, {group_size}, {n_batches}")
        self.batch_size, self.group_size, self.n_batches = batch_size, group_size, n_batches
        self.seed, self.renderer, self.max_operand = seed, renderer, max_operand
        self.few_shot = FEW_SHOT if include_few_shot else ()
        self.format_coef = format_coef

    def problems(self, index: int) -> list[tuple[int, int]]:
        """The ``(x, y)`` pairs of batch ``index``."""
        if not 0 <= index < self.n_batches:
            raise IndexError(f"batch {index} is outside this dataset of {self.n_batches} batches")
        rng = np.random.default_rng([self.seed, index])
        pairs = rng.integers(0, self.max_operand + 1, size=(self.batch_size, 2))
        return [(int(x), int(y)) for x, y in pairs]

    def get_batch(self, index: int) -> list[ProblemGroupBuilder]:
        return [ProblemGroupBuilder(partial(ArithmeticEnv, self.renderer, x, y, self.few_shot, self.format_coef),
                                    self.group_size, ("arithmetic",))
                for x, y in self.problems(index)]

    def __len__(self) -> int:
        return self.n_batches
