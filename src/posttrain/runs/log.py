"""A run's append-only JSON-lines logs: ``metrics.jsonl`` (one object per step) and ``checkpoints.jsonl``.

Lines are appended, flushed and synced one at a time, so a killed run keeps every finished step. A resume
drops the lines of the steps it recomputes by rewriting the file atomically (the old file or the new one,
never a mix). Timing metrics live under ``time/`` so comparisons can leave them out (:data:`TIMING_PREFIX`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from posttrain.errors import NonFiniteError, PosttrainError
from posttrain.runs.atomic import write_text_atomically

TIMING_PREFIX = "time/"


def read_log(path: Path, repair: bool = False) -> list[dict[str, Any]]:
    """The records of an append-only JSON-lines log.

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


def append_line(path: Path, record: Mapping[str, Any]) -> None:
    """One strict-JSON line, synced before returning."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True, allow_nan=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


class MetricsLog:
    """``metrics.jsonl``: one line per step. Opened with ``keep_before_step`` (a resume), the lines of
    later steps (which the resumed run recomputes) and a torn last line are dropped first."""

    def __init__(self, path: Path, keep_before_step: int | None = None):
        self.path = path
        if keep_before_step is not None:
            self.truncate(keep_before_step)
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the run

    def truncate(self, step: int) -> None:
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
