"""Per-step metrics: ``metrics.jsonl`` (one JSON object a line), a progress bar, and the NLL helper.

Timing metrics live under ``time/`` so comparisons can leave them out (:data:`TIMING_PREFIX`).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from posttrain.errors import NonFiniteError, PosttrainError

TIMING_PREFIX = "time/"


def mean_nll(logprobs: Sequence[np.ndarray], weights: Sequence[np.ndarray]) -> float:
    """``-Σ w·lp / Σ w`` over the batch (tinker-cookbook's ``compute_mean_nll``); NaN if nothing is weighted."""
    total_w = float(sum(np.sum(w) for w in weights))
    if total_w == 0:
        return float("nan")
    return -float(sum(np.dot(lp, w) for lp, w in zip(logprobs, weights, strict=True))) / total_w


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` beside ``path``, sync it, then rename it into place: a crash leaves the old file or
    the new one, never half of either. Readable by others (mkstemp alone makes it 0600)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def read_log(path: Path, repair: bool = False) -> list[dict[str, Any]]:
    """The records of an append-only JSON-lines log (``metrics.jsonl``, ``checkpoints.jsonl``).

    A crash mid-write leaves a torn last line (no newline, not JSON): it is dropped, and with ``repair``
    cut from the file, so appending can go on. Any other bad line is an error naming the file and line."""
    if not path.exists():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    records: list[dict[str, Any]] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            records.append(json.loads(raw))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            if number == len(lines):  # the last line and no newline after it: a write the crash cut short
                if repair:
                    with open(path, "r+b") as fh:
                        fh.truncate(len(data) - len(raw))
                return records
            raise PosttrainError(f"{path}:{number}: not a JSON record ({err}); the run's log is damaged") from None
    return records


class MetricsLog:
    """Appends one line per step and flushes it to disk, so a killed run keeps every finished step."""

    def __init__(self, path: Path, keep_before_step: int | None = None):
        self.path = path
        if keep_before_step is not None:
            self.truncate(keep_before_step)
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the run

    def truncate(self, step: int) -> None:
        """Drop lines of steps ≥ ``step`` (a resumed run recomputes them) and a torn last line; the file
        is replaced whole, so a crash here leaves the old one."""
        if not self.path.exists():
            return
        kept = [r for r in read_log(self.path) if r.get("step", -1) < step]
        write_text_atomically(self.path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))

    def write(self, metrics: dict[str, Any]) -> None:
        """One strict-JSON line; a non-finite value stops the run instead (NaN is not JSON)."""
        bad = sorted(k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v))
        if bad:
            raise NonFiniteError(f"step {metrics.get('step')}: {', '.join(f'{k} = {metrics[k]}' for k in bad)}: "
                                 "training diverged; the run stopped before recording this step")
        self._file.write(json.dumps(metrics, sort_keys=True, allow_nan=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    return read_log(path)


def without_timings(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if not k.startswith(TIMING_PREFIX)} for r in rows]


def progress_bar(enabled: bool, label: str) -> Progress:
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                    TimeRemainingColumn(), disable=not enabled, transient=False)
