"""Screening a recipe's rows before any training: every row is rendered once, here, and what the run will
train on is written down in one report (``RUN/data_report.json``) whatever the recipe.

A recipe gives :func:`screen` its rows and a check that renders one row and says what it found
(:class:`RowFindings`) or raises :class:`~posttrain.errors.PosttrainError` for a row that cannot train.
Such a row stops the run with its file and line — or, when the recipe leaves bad rows out (SFT's
``--skip-invalid``, always for DPO pairs), is counted by reason and listed; never silently trained on.
Rows that train but lose something (cut by ``max_length``, empty replies) are counted and listed too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from posttrain.data.supervised import datum_target_counts
from posttrain.errors import InputError, PosttrainError
from posttrain.messages import to_messages
from posttrain.renderers import Renderer
from posttrain.train_on_what import TrainOnWhat

MAX_LISTED = 500


class RowProblem(PosttrainError):
    """A well-formed row that cannot train; its message reads ``"kind: detail"`` (``"tie: ..."``)."""


@dataclass
class RowFindings:
    """What rendering one row found. ``trained_cut``: trained tokens that ``max_length`` cuts off."""

    tokens: int = 0
    targets: int = 0
    trained: int = 0
    truncated: bool = False
    trained_cut: int = 0
    empty_replies: bool = False


@dataclass
class RowReport:
    """The one report of what a run trains on: rows read per split, rows kept, rows left out by reason,
    rows cut or with empty replies, token counts, and the first :data:`MAX_LISTED` rows named."""

    max_length: int | None = None
    train_rows: int = 0
    test_rows: int = 0
    kept: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    truncated: int = 0
    trained_tokens_cut: int = 0
    empty_replies: int = 0
    tokens: int = 0
    targets: int = 0
    trained: int = 0
    rows: list[str] = field(default_factory=list)  # "where: what"

    def skip(self, where: str, reason: str) -> None:
        """A row left out; ``reason`` reads ``"kind: detail"`` and is counted by its kind."""
        self.skipped[reason.split(":")[0]] += 1
        self._list(f"{where}: {reason}")

    def unreadable(self, reasons: Iterable[str]) -> None:
        """Rows the loader could not read (each reason names its file and line)."""
        for reason in reasons:
            self.skipped["unreadable"] += 1
            self._list(f"unreadable: {reason}")

    def add(self, where: str, found: RowFindings) -> None:
        self.kept += 1
        self.tokens += found.tokens
        self.targets += found.targets
        self.trained += found.trained
        if found.empty_replies:
            self.empty_replies += 1
            self._list(f"{where}: every assistant reply is empty")
        if found.truncated:
            self.truncated += 1
            self.trained_tokens_cut += found.trained_cut
            self._list(f"{where}: {found.tokens} tokens cut to {self.max_length}, {found.trained_cut} trained "
                       "tokens lost")

    def _list(self, line: str) -> None:
        if len(self.rows) < MAX_LISTED:
            self.rows.append(line)

    def summary(self) -> str:
        parts = [f"{n} {reason}" for reason, n in sorted(self.skipped.items())]
        return f"{self.kept} kept" + (f"; skipped {', '.join(parts)}" if parts else "")

    def as_dict(self) -> dict[str, Any]:
        return {"train_rows": self.train_rows, "test_rows": self.test_rows, "kept": self.kept,
                "skipped": dict(sorted(self.skipped.items())), "max_length": self.max_length,
                "truncated": self.truncated, "trained_tokens_cut": self.trained_tokens_cut,
                "empty_replies": self.empty_replies, "rows": self.rows}


#: Renders one row; returns what it found, or raises PosttrainError when the row cannot train.
RowCheck = Callable[[Any], RowFindings]
#: A checked row: (where, line, what the check found or the error it raised).
Checked = tuple[str, int | None, RowFindings | PosttrainError]


def check_rows(rows: Iterable[tuple[str, int | None, Any]], check: RowCheck) -> list[Checked]:
    """Render each ``(where, line, row)`` once; runs in a worker process too (errors come back plain)."""
    out: list[Checked] = []
    for where, line, row in rows:
        try:
            out.append((where, line, check(row)))
        except RowProblem as err:
            out.append((where, line, RowProblem(str(err))))
        except PosttrainError as err:
            out.append((where, line, PosttrainError(str(err))))
    return out


def record(checked: Iterable[Checked], report: RowReport, *, source: str,
           skip_invalid: bool) -> list[tuple[int, InputError]]:
    """Add checked rows to ``report``; returns each unusable row's position and its error (naming ``source``
    and the line). With ``skip_invalid`` False the first unusable row raises that error instead."""
    bad: list[tuple[int, InputError]] = []
    for position, (where, line, found) in enumerate(checked):
        if isinstance(found, RowFindings):
            report.add(where, found)
            continue
        located = InputError(str(found), source=source, line=line)
        if not skip_invalid:
            raise located
        bad.append((position, located))
        report.skip(where, str(found) if isinstance(found, RowProblem) else f"unrenderable: {located}")
    return bad


def screen(rows: Iterable[tuple[str, int | None, Any]], check: RowCheck, report: RowReport, *, source: str,
           skip_invalid: bool) -> list[tuple[int, InputError]]:
    """:func:`check_rows` then :func:`record`, in this process."""
    return record(check_rows(rows, check), report, source=source, skip_invalid=skip_invalid)


def conversation_check(renderer: Renderer, train_on: TrainOnWhat | str, max_length: int) -> RowCheck:
    """A conversation row (``messages``) rendered as its datum will train it: the same errors (a message
    the format cannot express, nothing left to train), and what ``max_length`` cuts."""

    def check(row: dict[str, Any]) -> RowFindings:
        messages = to_messages(row["messages"])
        example = renderer.build_supervised_example(messages, train_on)
        targets, trained = datum_target_counts(example, max_length)
        n = len(example.tokens)
        return RowFindings(tokens=n, targets=targets, trained=trained, truncated=n > max_length,
                           trained_cut=int(sum(w > 0 for w in example.weights[max_length:])),
                           empty_replies=not any(m.text.strip() for m in messages if m.role == "assistant"))

    return check
