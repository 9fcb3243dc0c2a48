"""Mirror ``metrics.jsonl`` to the trackers people already watch: TensorBoard, Weights & Biases, trackio.

``metrics.jsonl`` stays the record. Each tracker gets the same metric names at the same steps, and the
run's config as hyper-parameters. A training loop uses it like this::

    names = parse_trackers("tensorboard,wandb")  # at start-up: an unknown or missing one is one line
    tracking = open_trackers(names, run_dir, config, run_name=run_dir.name, resume=resuming)
    with tracking:                                # closes at the end; a W&B run that raised is marked failed
        replay(run_dir / "metrics.jsonl", tracking)  # steps a tracker lacks: a tracker added on resume
        for step, metrics in ...:
            metrics_log.write(metrics)
            tracking.log(metrics, step)

Where each one writes, and how to look:

* ``tensorboard``: ``RUN/tensorboard/`` — ``tensorboard --logdir RUN/tensorboard``;
* ``wandb``: ``RUN/wandb/``, offline unless ``WANDB_MODE`` says otherwise (project ``WANDB_PROJECT`` or
  ``posttrain``) — ``wandb sync RUN/wandb/offline-run-*`` uploads every session of the run into one run;
* ``trackio``: trackio's own local store (``TRACKIO_DIR``, by default ``~/.cache/huggingface/trackio``),
  so one dashboard shows every run — ``trackio show --project posttrain``. It goes to a Space or a
  server only if ``TRACKIO_SPACE_ID`` or ``TRACKIO_SERVER_URL`` says so.

Resume: ``RUN/tracking.json`` keeps the tracked run's id and, per tracker, the last step it was sent. A
resumed run reopens the same TensorBoard folder, W&B run id and trackio run, and sends each tracker only
the steps after its last one, so no step is there twice.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from posttrain.errors import PosttrainError
from posttrain.runs.atomic import write_json_atomically
from posttrain.runs.log import read_log

STATE_FILE = "tracking.json"
TENSORBOARD_DIR = "tensorboard"
DEFAULT_PROJECT = "posttrain"

# tracker name → (module, package to install) pairs it imports
_REQUIREMENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "tensorboard": (("tensorboard", "tensorboard"), ("torch", "torch")),
    "wandb": (("wandb", "wandb"),),
    "trackio": (("trackio", "trackio"),),
}
TRACKERS = tuple(_REQUIREMENTS)


def check_trackers(names: Sequence[str]) -> None:
    """Raise a one-line :class:`PosttrainError` for a tracker name that is unknown or not installed; call it
    before training starts."""
    for name in names:
        if name not in _REQUIREMENTS:
            raise PosttrainError(f"--log-with: unknown tracker '{name}' (expected some of {', '.join(TRACKERS)})")
        for module, package in _REQUIREMENTS[name]:
            if importlib.util.find_spec(module) is None:
                raise PosttrainError(f"--log-with {name} needs the '{package}' package: "
                                     f"pip install '{package}' (or pip install 'posttrain[track]')")


def parse_trackers(spec: str | Sequence[str]) -> list[str]:
    """``"tensorboard, wandb"`` (or a list of names) → checked, de-duplicated names in order."""
    parts = spec.split(",") if isinstance(spec, str) else spec
    names = list(dict.fromkeys(p.strip().lower() for p in parts if p.strip()))
    check_trackers(names)
    return names


@dataclass
class _State:
    """``tracking.json``: what a resumed run needs to continue the same tracked runs."""

    id: str
    run_name: str
    project: str
    logged_through: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, run_name: str, project: str, resume: bool) -> _State:
        if resume and path.exists():
            try:
                return cls(**json.loads(path.read_text(encoding="utf-8")))
            except (json.JSONDecodeError, TypeError) as err:
                raise PosttrainError(f"{path}: not a tracking record ({err}); delete it to start new tracked runs") from None
        return cls(id=uuid.uuid4().hex[:8], run_name=run_name, project=project)

    def save(self, path: Path) -> None:
        write_json_atomically(path, asdict(self))


class _Backend(Protocol):
    def log(self, scalars: Mapping[str, float], texts: Mapping[str, str], step: int) -> None: ...

    def close(self, failed: bool) -> None: ...


class Tracking:
    """The open trackers of one run (possibly none). ``log`` sends a step to every tracker that has not had
    it yet; ``close`` (or leaving a ``with`` block) ends them."""

    def __init__(self, backends: Mapping[str, _Backend], state: _State, state_path: Path):
        self._backends = dict(backends)
        self._state = state
        self._state_path = state_path
        # Fixed at open, not moved by this session's own logs: several calls may log parts of one step.
        self._first_step = {name: state.logged_through.get(name, -1) + 1 for name in backends}

    @property
    def names(self) -> list[str]:
        return list(self._backends)

    @property
    def run_id(self) -> str:
        """The tracked run's id (the W&B run id; the suffix of the trackio run name)."""
        return self._state.id

    def log(self, metrics: Mapping[str, Any], step: int) -> bool:
        """Send one step's metrics (a ``metrics.jsonl`` line; its ``step`` key is dropped). Numbers are
        scalars; anything else is text (TensorBoard text, W&B and trackio values). Returns whether any
        tracker took it (``False``: each had this step from an earlier session)."""
        takers = [name for name in self._backends if step >= self._first_step[name]]
        if not takers:
            return False
        scalars, texts = _split(metrics)
        for name in takers:
            self._backends[name].log(scalars, texts, step)
            self._state.logged_through[name] = max(step, self._state.logged_through.get(name, -1))
        self._state.save(self._state_path)
        return True

    def close(self, failed: bool = False) -> None:
        backends, self._backends = self._backends, {}
        for backend in backends.values():
            backend.close(failed)

    def __enter__(self) -> Tracking:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(failed=exc_type is not None)


def open_trackers(names: Sequence[str], run_dir: Path, config: Mapping[str, Any], *, run_name: str,
                  resume: bool, project: str = DEFAULT_PROJECT) -> Tracking:
    """Open the named trackers for the run in ``run_dir`` (see the module's doc for where each writes).

    ``config`` goes in as hyper-parameters. With ``resume``, the tracked runs recorded in
    ``RUN/tracking.json`` continue; without it (or without that file) new ones start. An empty ``names``
    gives a :class:`Tracking` that does nothing."""
    check_trackers(names)
    state_path = run_dir / STATE_FILE
    state = _State.load(state_path, run_name, project, resume)
    backends: dict[str, _Backend] = {}
    try:
        for name in names:
            backends[name] = _open_backend(name, run_dir, config, state)
    except BaseException:
        for backend in backends.values():
            backend.close(failed=True)
        raise
    if names:
        state.save(state_path)
    return Tracking(backends, state, state_path)


def replay(metrics_path: Path, tracking: Tracking) -> int:
    """Send the steps of an existing ``metrics.jsonl`` that the trackers have not had (all of them for a
    tracker new to the run); returns how many lines some tracker took."""
    rows = read_log(metrics_path)
    return sum(tracking.log(row, row["step"]) for row in rows if isinstance(row.get("step"), int))


def _open_backend(name: str, run_dir: Path, config: Mapping[str, Any], state: _State) -> _Backend:
    first_step = state.logged_through.get(name, -1) + 1
    try:
        if name == "tensorboard":
            return _TensorBoard(run_dir / TENSORBOARD_DIR, config, first_step)
        if name == "wandb":
            return _WandB(run_dir, config, state)
        return _Trackio(config, state, resume=first_step > 0)
    except PosttrainError:
        raise
    except Exception as err:
        raise PosttrainError(f"--log-with {name}: could not start ({type(err).__name__}: {err})") from err


def _split(metrics: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """Numbers (bools as 0/1) apart from the rest, which becomes text; ``step`` is the step, not a metric."""
    scalars: dict[str, float] = {}
    texts: dict[str, str] = {}
    for key, value in metrics.items():
        if key == "step":
            continue
        if isinstance(value, int | float) and math.isfinite(value):
            scalars[key] = float(value)
        else:
            texts[key] = value if isinstance(value, str) else json.dumps(value)
    return scalars, texts


def _flat_hparams(config: Mapping[str, Any], prefix: str = "") -> dict[str, int | float | str | bool]:
    """TensorBoard's hparams take flat scalars: nested keys joined with ``/``, lists and nulls as JSON."""
    out: dict[str, int | float | str | bool] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.update(_flat_hparams(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value if isinstance(value, int | float | str | bool) else json.dumps(value)
    return out


class _TensorBoard:
    """Event files in ``RUN/tensorboard``. A resumed session purges its steps from earlier sessions' files
    (TensorBoard's ``purge_step``), so steps an earlier session wrote past its record are not shown twice."""

    def __init__(self, log_dir: Path, config: Mapping[str, Any], first_step: int):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=first_step)
        if first_step == 0:
            self._write_config(config)

    def _write_config(self, config: Mapping[str, Any]) -> None:
        from torch.utils.tensorboard.summary import hparams

        file_writer = self.writer.file_writer  # made by SummaryWriter's __init__
        assert file_writer is not None
        for summary in hparams(_flat_hparams(config), {}):  # add_hparams would put them in a folder apart
            file_writer.add_summary(summary)
        self.writer.add_text("config", "    " + json.dumps(config, indent=1).replace("\n", "\n    "))

    def log(self, scalars: Mapping[str, float], texts: Mapping[str, str], step: int) -> None:
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, step)
        for key, text in texts.items():
            self.writer.add_text(key, text, step)
        self.writer.flush()  # so tracking.json never records a step the event file does not have

    def close(self, failed: bool) -> None:
        self.writer.close()


class _WandB:
    """A W&B run in ``RUN/wandb``, offline unless the environment sets ``WANDB_MODE``; its id is the
    tracked run's id, so every session of a run (``resume="allow"``) is the same W&B run."""

    def __init__(self, run_dir: Path, config: Mapping[str, Any], state: _State):
        import wandb

        # Read here, not left to wandb: it reads its environment once per process, at its first use. Set
        # for the whole process too, or W&B's own usage analytics (process-wide) still call its server.
        mode: Any = os.environ.get("WANDB_MODE") or "offline"
        wandb.setup(settings=wandb.Settings(mode=mode))
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT") or state.project, name=state.run_name,
                              id=state.id, resume="allow", dir=str(run_dir), mode=mode, config=dict(config))

    def log(self, scalars: Mapping[str, float], texts: Mapping[str, str], step: int) -> None:
        self.run.log({**scalars, **texts}, step=step)

    def close(self, failed: bool) -> None:
        self.run.finish(exit_code=1 if failed else 0)


class _Trackio:
    """A trackio run in trackio's local store, named ``RUN_NAME-ID`` so a resume finds this run and no
    other run of the same name. Its CPU and GPU auto-logging is off: the metrics are those of the run."""

    def __init__(self, config: Mapping[str, Any], state: _State, resume: bool):
        import trackio

        self.run = trackio.init(project=state.project, name=f"{state.run_name}-{state.id}", config=dict(config),
                                resume="allow" if resume else "never", embed=False, auto_log_cpu=False,
                                auto_log_gpu=False)

    def log(self, scalars: Mapping[str, float], texts: Mapping[str, str], step: int) -> None:
        self.run.log({**scalars, **texts}, step=step)

    def close(self, failed: bool) -> None:
        import trackio

        # trackio.finish also forgets the process's current run, which its exit hook would finish again.
        if trackio.context_vars.current_run.get() is self.run:
            trackio.finish()
        else:
            self.run.finish()
