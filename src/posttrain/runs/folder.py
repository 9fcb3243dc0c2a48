"""A training run's folder: its config, metrics, checkpoint records and checkpoints.

::

    RUN/config.json          the run's settings (also what ``parity diff`` compares)
    RUN/metrics.jsonl        one line per step
    RUN/checkpoints.jsonl    one line per saved checkpoint: name, step, loop position, paths
    RUN/checkpoints/NAME/    the checkpoints themselves
    RUN/parity/*.json        dataset snapshot, rendered samples, first batch as trained

A folder that already holds something is never written over: a run resumes (same settings) or
stops with an error that says why. A run holds an exclusive lock on ``RUN/.lock`` (``flock``) from its
first check to its end, so a second run into the same folder stops at once, naming the holder; the
kernel drops the lock of a killed run, and the next run takes it over.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from posttrain.default_data import canonical_dataset
from posttrain.runs.atomic import RunFolderError, write_json_atomically
from posttrain.runs.checkpoints import CHECKPOINTS, CheckpointLog
from posttrain.runs.log import read_log

CONFIG = "config.json"
METRICS = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
LOCK = ".lock"
DATA_REPORT = "data_report.json"
# Settings that may change on resume without changing what the run computes.
# log_path: the folder being opened is the run's, however its path is spelled (relative, absolute).
# base_url: a restarted server may listen elsewhere; the checkpoints it serves are the same.
# log_with: a tracker may be added on resume (it first gets the steps already logged).
RESUMABLE_CHANGES = frozenset({"resume", "show_progress", "log_path", "base_url", "log_with"})


__all__ = ["CHECKPOINTS", "CONFIG", "RunFolder", "RunFolderError", "RunLock"]


def run_path(path: str | Path) -> Path:
    if not str(path).strip():
        raise RunFolderError("the run folder (--out) must not be empty")
    return Path(path)


class RunLock:
    """The exclusive lock of a run folder, held until :meth:`release` (or the process ends)."""

    def __init__(self, path: str | Path):
        self.folder = folder = run_path(path)
        self.created = not folder.exists()
        self.created_file = self.created or not (folder / LOCK).exists()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._fd: int | None = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise RunFolderError(f"cannot create the run folder {folder}: {err.strerror}") from err
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(self._fd)
            self._fd = None
            raise RunFolderError(f"{folder} is in use by another run ({holder}); wait for it to end or choose "
                                 "another --out") from None
        self.taken_over = os.pread(self._fd, 4096, 0).decode("utf-8", "replace").strip() or None
        me = f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}: " \
             f"{' '.join(sys.argv)[:300]}"
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, me.encode(), 0)

    def release(self, remove_if_unused: bool = False) -> None:
        """Drop the lock; ``remove_if_unused`` also removes the lock file and the folder if this lock
        created them and nothing else was written (a run refused before it wrote anything leaves no trace)."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # a holder's name left in the file means a run that was killed
            os.close(self._fd)
            self._fd = None
        if remove_if_unused and self.created_file:
            (self.folder / LOCK).unlink(missing_ok=True)
            if self.created and not any(self.folder.iterdir()):
                self.folder.rmdir()


class RunFolder:
    """An open run folder: its settings, its checkpoint records (:attr:`checkpoints`), its metrics log's
    path. ``write`` False: a reader (the non-main ranks of a data-parallel run) that changes nothing."""

    def __init__(self, path: Path, config: dict[str, Any], lock: RunLock | None = None, write: bool = True):
        self.path = path
        self.config = config
        self.lock = lock
        self.write = write
        self.checkpoints = CheckpointLog(path, write=write)

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.lock is not None:
            self.lock.release()

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINT_DIR

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @classmethod
    def open(cls, path: str | Path, config: dict[str, Any], resume: bool, write: bool = True) -> RunFolder:
        """Check ``path`` can hold this run; create it (``write``) or validate it for resuming."""
        folder = run_path(path)
        if folder.exists() and not folder.is_dir():
            raise RunFolderError(f"{folder} is a file, not a run folder; choose another --out")
        if folder.is_dir() and cls._contents(folder) and not cls._never_started(folder):
            cls._check_existing(folder, config, resume)
        elif write:
            folder.mkdir(parents=True, exist_ok=True)
            if not os.access(folder, os.W_OK):
                raise RunFolderError(f"{folder} is not writable")
            write_json_atomically(folder / CONFIG, config)
        return cls(folder, config, write=write)

    @staticmethod
    def _contents(folder: Path) -> set[str]:
        return {p.name for p in folder.iterdir()} - {LOCK}

    @classmethod
    def _never_started(cls, folder: Path) -> bool:
        """A run that stopped before finishing its first step (say, refused by the engine): no metrics line,
        no checkpoint record. Nothing to lose by starting again, with corrected settings too."""
        contents = cls._contents(folder)
        if CONFIG not in contents or not contents <= {CONFIG, METRICS, CHECKPOINTS, CHECKPOINT_DIR, "parity", DATA_REPORT}:
            return False
        return not read_log(folder / METRICS) and not read_log(folder / CHECKPOINTS)

    @staticmethod
    def _check_existing(folder: Path, config: dict[str, Any], resume: bool) -> None:
        try:
            existing = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            existing = None
        if not isinstance(existing, dict) or existing.get("recipe") is None:
            raise RunFolderError(f"{folder} holds files that are not a posttrain training run; choose another --out")
        if not resume:
            raise RunFolderError(f"{folder} already holds a {existing['recipe']} run; pass --resume to continue it, "
                                 "or choose another --out")
        if isinstance(existing.get("dataset"), str):  # a run from before posttrain:default
            existing["dataset"] = canonical_dataset(existing["dataset"])
        changed = sorted(k for k in set(existing) | set(config)
                         if k not in RESUMABLE_CHANGES and existing.get(k) != config.get(k))
        if changed:
            k = changed[0]
            raise RunFolderError(f"--resume: the run in {folder} was started with {k}={existing.get(k)!r}, "
                                 f"not {config.get(k)!r}; resume with the same settings ({len(changed)} differ: "
                                 f"{', '.join(changed)})")

    def write_json(self, name: str, obj: Any) -> Path:
        target = self.path / name
        if self.write:
            write_json_atomically(target, obj)
        return target
