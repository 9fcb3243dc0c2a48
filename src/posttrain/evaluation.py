"""Evaluate a trained model against its base model on one data set, in one table.

* **NLL** on conversations (``{"messages"}`` rows, or question/answer pairs as a two-turn
  conversation): rendered and truncated as training does (the run's ``train_on_what``,
  ``max_length``), scored with ``compute_logprobs``. Two figures: ``nll`` is training's ``test/nll``
  (``-Σ w·lp / Σ w`` with the run's ``reduction``: "mean" weighs every conversation equally) and
  ``nll/token``, the mean over every trained token.
* **Accuracy** on question → answer tasks, scored as tinker-cookbook's ``ProblemEnv`` does (reply
  generated greedily through the renderer, parsed, checked): the shipped ``arithmetic`` env's
  problems, or rows with ``question`` and ``answer`` (an integer answer must be the reply's last
  integer; other answers must appear in the reply, case and surrounding space ignored).

Why not ``inspect-ai``: it would run a local model through its own ``transformers`` provider and chat
template rather than our renderer, has no per-token NLL, and pulls in some 47 packages (boto3,
fastapi, textual, ...) — more than this evaluator's whole code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from posttrain.errors import PosttrainError
from posttrain.replies import PromptRow, generate_replies, read_prompt_rows
from posttrain.rl.envs.arithmetic import ArithmeticDataset, ArithmeticEnv, last_integer
from posttrain.rl.problem_env import ProblemEnv

ARITHMETIC = "arithmetic"


@dataclass(frozen=True)
class Scores:
    nll: float | None = None  # training's test/nll
    nll_per_token: float | None = None
    nll_conversations: int = 0
    nll_skipped: int = 0  # conversations truncation leaves with no trained token
    accuracy: float | None = None
    problems: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"nll": self.nll, "nll/token": self.nll_per_token, "nll_conversations": self.nll_conversations,
                "nll_skipped": self.nll_skipped, "accuracy": self.accuracy, "problems": self.problems}


@dataclass(frozen=True)
class EvalSettings:
    train_on_what: str = "all_assistant_messages"
    max_length: int | None = None
    reduction: str = "mean"
    max_tokens: int = 64  # reply length for accuracy
    limit: int | None = None  # the first rows only

    @classmethod
    def from_run(cls, config: dict[str, Any], **overrides: Any) -> EvalSettings:
        """The run's rendering settings (``config.json``), with ``overrides`` (None: keep)."""
        known = {k: config[k] for k in ("train_on_what", "max_length", "reduction") if config.get(k) is not None}
        return cls(**{**known, **{k: v for k, v in overrides.items() if v is not None}})


class AnswerEnv(ProblemEnv):
    """A question with a reference answer from a file (see the module docstring for the check)."""

    def check_answer(self, text: str) -> bool:
        expected = self.answer.strip()
        if _is_integer(expected):
            return last_integer(text) == int(expected)
        return expected.casefold() in text.casefold()

    def check_format(self, text: str) -> bool:
        return True  # only the stop token counts toward the format, as in the arithmetic env


def _is_integer(text: str) -> bool:
    return text.lstrip("-").replace(",", "").isdigit()


@dataclass(frozen=True)
class Dataset:
    """What to evaluate on: conversations for NLL and/or problems for accuracy."""

    label: str
    conversations: list[list[dict[str, Any]]]
    problems: list[tuple[str, str]]  # (question, answer); envs are built per model's renderer
    arithmetic: list[tuple[int, int]]


def load_dataset(spec: str, limit: int | None = None, n_arithmetic: int = 50, seed: int = 0) -> Dataset:
    """``arithmetic`` (``n_arithmetic`` problems of the RL env), ``posttrain:default`` (the shipped
    conversations), or a prompts file (:mod:`posttrain.replies`)."""
    if limit is not None and limit < 1:
        raise PosttrainError(f"limit must be at least 1, got {limit}")
    if spec == ARITHMETIC:
        n = min(n_arithmetic, limit or n_arithmetic)
        pairs = ArithmeticDataset(n, 1, 1, seed, renderer=None).problems(0)  # type: ignore[arg-type]
        return Dataset(ARITHMETIC, [], [], pairs)
    from posttrain.default_data import shipped_path

    path = shipped_path(spec)  # posttrain:default (or default): the shipped conversations
    rows: list[PromptRow] = read_prompt_rows(path)[:limit]
    conversations = [r.conversation for r in rows if r.conversation is not None]
    problems = [(r.prompt[-1]["content"], r.reference) for r in rows if r.kind == "qa" and r.reference is not None]
    if not conversations and not problems:
        raise PosttrainError(f"{path}: nothing to evaluate (rows need messages ending with an assistant reply, "
                             "or question and answer)")
    return Dataset(spec, conversations, problems, [])


def evaluate(sampler: Any, renderer: Any, data: Dataset, settings: EvalSettings) -> Scores:
    """NLL and accuracy of ``sampler``'s model on ``data``."""
    nll = conversation_nll(sampler, renderer, data.conversations, settings) if data.conversations else None
    envs: list[ProblemEnv] = [ArithmeticEnv(renderer, x, y) for x, y in data.arithmetic]
    envs += [AnswerEnv(renderer, q, a) for q, a in data.problems]
    accuracy = problem_accuracy(sampler, renderer, envs, settings.max_tokens) if envs else None
    nll_value, per_token, scored, skipped = nll or (None, None, 0, 0)
    return Scores(nll_value, per_token, scored, skipped, accuracy=accuracy, problems=len(envs))


def conversation_nll(sampler: Any, renderer: Any, conversations: Sequence[Sequence[dict[str, Any]]],
                     settings: EvalSettings) -> tuple[float, float, int, int]:
    """``(nll as training's test/nll, nll per trained token, conversations scored, skipped)``."""
    lps: list[np.ndarray] = []
    ws: list[np.ndarray] = []
    skipped = 0
    for conv in conversations:
        example = renderer.build_supervised_example(conv, settings.train_on_what)
        n = len(example.tokens) if settings.max_length is None else min(settings.max_length, len(example.tokens))
        weights = np.asarray(example.weights[1:n], dtype=np.float64)
        if n < 2 or not weights.any():
            skipped += 1
            continue
        lp = sampler.compute_logprobs(list(example.tokens[:n])).result()[1:]
        lps.append(np.asarray(lp, dtype=np.float64))
        ws.append(weights)
    if not lps:
        raise PosttrainError(f"no conversation keeps a trained token at max_length {settings.max_length}")
    per_token = -sum(float(np.dot(lp, w)) for lp, w in zip(lps, ws, strict=True)) / sum(float(w.sum()) for w in ws)
    scaled = [w / w.sum() for w in ws] if settings.reduction == "mean" else ws
    nll = -sum(float(np.dot(lp, w)) for lp, w in zip(lps, scaled, strict=True)) / sum(float(w.sum()) for w in scaled)
    return nll, per_token, len(lps), skipped


def problem_accuracy(sampler: Any, renderer: Any, envs: Sequence[ProblemEnv], max_tokens: int) -> float:
    """Fraction of problems whose greedy reply is correct (``ProblemEnv.step``'s ``correct`` metric)."""
    replies = generate_replies(sampler, renderer, [env.messages() for env in envs], max_tokens=max_tokens)
    correct = [env.step(tokens).metrics["correct"] for env, (tokens, _) in zip(envs, replies, strict=True)]
    return float(np.mean(correct))


def comparison_rows(tuned: Scores, base: Scores | None) -> list[tuple[str, str, str, str]]:
    """``(metric, tuned, base, change)`` rows for the figures either model has."""
    rows = []
    for key in ("nll", "nll/token", "accuracy"):
        t = tuned.as_dict()[key]
        b = base.as_dict()[key] if base is not None else None
        if t is None:
            continue
        change = f"{t - b:+.4f}" if b is not None and math.isfinite(t) and math.isfinite(b) else ""
        rows.append((key, f"{t:.4f}", f"{b:.4f}" if b is not None else "", change))
    return rows
