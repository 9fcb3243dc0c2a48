"""Per-step metrics: ``metrics.jsonl`` (one JSON object a line), a progress bar, and the NLL helper.

Timing metrics live under ``time/`` so comparisons can leave them out (:data:`TIMING_PREFIX`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from posttrain.errors import NonFiniteError

TIMING_PREFIX = "time/"


def mean_nll(logprobs: Sequence[np.ndarray], weights: Sequence[np.ndarray]) -> float:
    """``-Σ w·lp / Σ w`` over the batch (tinker-cookbook's ``compute_mean_nll``); NaN if nothing is weighted."""
    total_w = float(sum(np.sum(w) for w in weights))
    if total_w == 0:
        return float("nan")
    return -float(sum(np.dot(lp, w) for lp, w in zip(logprobs, weights, strict=True))) / total_w


class MetricsLog:
    """Appends one line per step and flushes it to disk, so a killed run keeps every finished step."""

    def __init__(self, path: Path, keep_before_step: int | None = None):
        self.path = path
        if keep_before_step is not None:
            self.truncate(keep_before_step)
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the run

    def truncate(self, step: int) -> None:
        """Drop lines of steps ≥ ``step``: a resumed run recomputes them."""
        if not self.path.exists():
            return
        lines = [line for line in self.path.read_text(encoding="utf-8").splitlines()
                 if line.strip() and json.loads(line).get("step", -1) < step]
        self.path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")

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
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def without_timings(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if not k.startswith(TIMING_PREFIX)} for r in rows]


def progress_bar(enabled: bool, label: str) -> Progress:
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                    TimeRemainingColumn(), disable=not enabled, transient=False)
