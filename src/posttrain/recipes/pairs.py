"""Screening preference pairs before DPO (on :mod:`posttrain.runs.screening`): every pair that would train
on nothing, or on no preference, is left out, counted by reason and named by its row — never silently
trained on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from posttrain.data.preference import LabeledComparison, comparison_to_dpo_datums
from posttrain.errors import InputError, PosttrainError
from posttrain.messages import Message
from posttrain.renderers.base import Renderer
from posttrain.runs.screening import RowFindings, RowProblem, RowReport, screen

Row = tuple[str, LabeledComparison | InputError]  # (where it came from, the row)


def _text(messages: Sequence[Message]) -> str:
    return "".join(m.text for m in messages if m.role == "assistant")


def pair_problem(lc: LabeledComparison, renderer: Renderer, max_length: int) -> str | None:
    """Why this pair cannot train DPO, or None."""
    if lc.label == "Tie":
        return "tie: the label prefers neither completion"
    chosen, rejected = lc.chosen_and_rejected
    if [m.to_dict() for m in chosen] == [m.to_dict() for m in rejected]:
        return "identical: chosen and rejected are the same"
    for name, completion in (("chosen", chosen), ("rejected", rejected)):
        if not _text(completion).strip():
            return f"empty completion: the {name} completion has no assistant text"
    prompt = renderer.build_generation_prompt(lc.comparison.prompt_conversation)
    if len(prompt) >= max_length:
        return f"prompt too long: the prompt has {len(prompt)} tokens, max_length is {max_length}"
    for name, datum in zip(("chosen", "rejected"), comparison_to_dpo_datums(lc, renderer, max_length), strict=True):
        if not datum.weights.any():
            return f"truncated: max_length {max_length} leaves the {name} completion no trained token"
    return None


def screen_pairs(rows: Sequence[Row], renderer: Renderer, max_length: int,
                 report: RowReport) -> list[LabeledComparison]:
    """The pairs that can train DPO; every other one is counted by reason and listed in ``report``."""

    def check(row: LabeledComparison | InputError) -> RowFindings:
        if isinstance(row, InputError):
            raise RowProblem(f"unreadable: {row.reason}")
        try:
            problem = pair_problem(row, renderer, max_length)
        except PosttrainError as err:  # a message the renderer cannot express
            problem = f"unrenderable: {err}"
        if problem is not None:
            raise RowProblem(problem)
        return RowFindings()

    bad = {i for i, _ in screen(((where, None, row) for where, row in rows), check, report, source="",
                                skip_invalid=True)}
    return [row for i, (_, row) in enumerate(rows) if i not in bad]  # type: ignore[misc]


def chosen_example(renderer: Renderer) -> Any:
    """For the parity snapshot of a DPO run: a pair row as its prompt + chosen completion, rendered with
    weights on the completion (what the chosen datum holds before truncation)."""
    from dataclasses import replace

    from posttrain.data.preference import _from_row
    from posttrain.train_on_what import TrainOnWhat

    def render(row: dict[str, Any]) -> tuple[list[Message], list[int], list[float]]:
        lc = _from_row(row)
        chosen, _ = lc.chosen_and_rejected
        msgs = [replace(m, trainable=False) for m in lc.comparison.prompt_conversation]
        msgs += [replace(m, trainable=m.role == "assistant") for m in chosen]
        ex = renderer.build_supervised_example(msgs, TrainOnWhat.CUSTOMIZED)
        return msgs, ex.tokens, ex.weights

    return render
