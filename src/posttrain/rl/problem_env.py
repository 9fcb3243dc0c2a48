"""Single-turn question → answer environments scored by a checker (tinker-cookbook's ``ProblemEnv``).

The prompt is the renderer's generation prompt for the few-shot messages followed by the question as a
user message; the reply is parsed with the renderer. Reward::

    correct - format_coef * (1 - format)

where ``format`` is 1 when the reply ended with the renderer's stop token *and* :meth:`check_format`
accepts its text, and ``correct`` is :meth:`check_answer`. The correctness check runs on the text even
when the format is bad (a truncated reply can still hold the right answer, minus the format penalty).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from posttrain.messages import MessageLike
from posttrain.renderers.base import Renderer
from posttrain.rl.types import Action, Env, EnvGroupBuilder, StepResult, StopCondition
from posttrain.types import ModelInput


class ProblemEnv(Env):
    """A question with a reference answer. Subclasses implement :meth:`check_answer` and :meth:`check_format`."""

    def __init__(self, renderer: Renderer, question: str, answer: str,
                 few_shot: Sequence[MessageLike] = (), format_coef: float = 0.1):
        self.renderer = renderer
        self.question = question
        self.answer = answer
        self.few_shot = list(few_shot)
        self.format_coef = format_coef

    @property
    def stop_condition(self) -> StopCondition:
        return self.renderer.get_stop_sequences()

    def messages(self) -> list[MessageLike]:
        return [*self.few_shot, {"role": "user", "content": self.question}]

    @abstractmethod
    def check_answer(self, text: str) -> bool:
        """Whether the reply's text holds the right answer."""

    @abstractmethod
    def check_format(self, text: str) -> bool:
        """Whether the reply's text has the expected form (the stop token is checked separately)."""

    def initial_observation(self) -> tuple[ModelInput, StopCondition]:
        return ModelInput.from_ints(self.renderer.build_generation_prompt(self.messages())), self.stop_condition

    def step(self, action: Action) -> StepResult:
        message, ended = self.renderer.parse_response(action)
        text = message.text
        ok_format = float(ended and self.check_format(text))
        correct = float(self.check_answer(text))
        return StepResult(
            reward=correct - self.format_coef * (1.0 - ok_format),
            episode_done=True,
            next_observation=ModelInput.empty(),
            next_stop_condition=self.stop_condition,
            metrics={"format": ok_format, "correct": correct},
        )


@dataclass(frozen=True)
class ProblemGroupBuilder(EnvGroupBuilder):
    """``group_size`` envs from ``env_thunk`` (the same problem each time, sampled independently)."""

    env_thunk: Callable[[], Env]
    group_size: int
    tags: tuple[str, ...] = ("problems",)

    def make_envs(self) -> list[Env]:
        return [self.env_thunk() for _ in range(self.group_size)]

    def logging_tags(self) -> list[str]:
        return list(self.tags)
