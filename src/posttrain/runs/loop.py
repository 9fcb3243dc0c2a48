"""The run cycle every training method shares — SFT, DPO, RL, distillation: the training client (fresh,
from a checkpoint's weights, or resumed), epochs and positions, the learning-rate schedule, pipelined
steps, evaluation and checkpoint cadence, the metrics log, the final save, and the result.

A method supplies only its step (:meth:`Loop.submit`), its evaluation and how many batches an epoch has.
Per epoch :meth:`Loop.start_epoch` runs first (SFT/DPO: ``dataset.set_epoch(seed=epoch)``, epoch 0
included, as tinker-cookbook does). A step's calls are queued before the previous step's results are
read (``in_flight`` steps at once). Evaluation runs before a step is submitted, so it sees the weights
before that step's update.

Resume is exact. A checkpoint is queued right after its step's ``optim_step``, so it holds that update,
and its record names the *next* batch to train. tinker-cookbook's SFT loop records the checkpoint's own
batch and so trains that batch twice after a resume (its issues 935/940); here the rest of a resumed run
equals the uninterrupted run, step for step.
"""

from __future__ import annotations

import inspect
import math
import sys
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from posttrain.errors import NonFiniteError, PosttrainError
from posttrain.progress import step_progress
from posttrain.runs.checkpoints import CHECKPOINTS, FINAL, CheckpointRecord, step_name
from posttrain.runs.folder import RunFolder, RunFolderError
from posttrain.runs.log import MetricsLog, read_metrics
from posttrain.runs.plot import plot_curves
from posttrain.runs.schedule import SCHEDULES, lr_multiplier
from posttrain.runs.tracking import Tracking, open_trackers, parse_trackers, replay
from posttrain.settings import at_least, check_settings, non_empty, positive_finite, setting
from posttrain.types import AdamParams
from posttrain.types.clients import ServiceClientProtocol, TrainingClientProtocol


def _trackers(text: str) -> tuple[str, ...]:
    return tuple(parse_trackers(text))


@dataclass
class LoopConfig:
    """The run cycle's settings (names follow tinker-cookbook's ``train.Config``)."""

    model_name: str = setting("posttrain:smollm2-135m-instruct", "HF hub id, local model folder, or "
                              "posttrain:smollm2-135m-instruct / posttrain:tiny-llama3 / posttrain:tiny-smollm2",
                              flag="--model", check=non_empty)
    lora_rank: int = setting(32, "LoRA rank; 0 = full fine-tune (local only)", flag="--lora-rank", kind=int,
                             check=at_least(0))
    learning_rate: float = setting(2e-4, "peak learning rate", flag="--lr", kind=float, check=positive_finite)
    lr_schedule: str = setting("linear", "learning-rate schedule", flag="--lr-schedule", choices=SCHEDULES)
    warmup_steps: int = setting(0, "linear warmup steps", flag="--warmup-steps", kind=int, check=at_least(0))
    num_epochs: int = setting(1, "passes over the data", flag="--epochs", kind=int, check=at_least(1))
    max_steps: int | None = setting(None, "stop after this many steps", flag="--max-steps", kind=int,
                                    check=at_least(1))
    eval_every: int = setting(8, "evaluate every N steps (0: never)", flag="--eval-every", kind=int,
                              check=at_least(0))
    save_every: int = setting(20, "checkpoint every N steps (0: final only)", flag="--save-every", kind=int,
                              check=at_least(0))
    seed: int = setting(0, "LoRA initialisation seed", flag="--seed", kind=int, check=at_least(0))
    adam_beta1: float = setting(0.9, "Adam beta1")
    adam_beta2: float = setting(0.95, "Adam beta2")
    adam_eps: float = setting(1e-8, "Adam epsilon")
    weight_decay: float = setting(0.0, "decoupled weight decay (AdamW)", check=at_least(0))
    grad_clip_norm: float = setting(0.0, "clip the global gradient norm", flag="--grad-clip-norm", kind=float,
                                    check=at_least(0))
    show_progress: bool = setting(False, "no progress bar or summary", flag="--quiet", action="store_false")
    load_checkpoint_path: str | None = setting(None, "start from a training-state checkpoint's weights (fresh "
                                               "optimizer, as tinker-cookbook), e.g. after SFT",
                                               flag="--load-checkpoint", check=non_empty)
    log_with: tuple[str, ...] = setting((), "mirror metrics.jsonl to trackers: tensorboard, wandb, trackio "
                                        "(comma-separated)", flag="--log-with", kind=_trackers, metavar="NAMES")


def adam_params(cfg: LoopConfig, lr: float) -> AdamParams:
    return AdamParams(learning_rate=lr, beta1=cfg.adam_beta1, beta2=cfg.adam_beta2, eps=cfg.adam_eps,
                      weight_decay=cfg.weight_decay, grad_clip_norm=cfg.grad_clip_norm)


def make_training_client(service: Any, cfg: LoopConfig, resume: CheckpointRecord | None) -> TrainingClientProtocol:
    """Resume (weights + optimizer), start from a checkpoint's weights, or start fresh (LoRA or full)."""
    if resume is not None:
        return service.create_training_client_from_state_with_optimizer(resume.state_path)
    if cfg.load_checkpoint_path:
        create = service.create_training_client_from_state
        if "base_model" in inspect.signature(create).parameters:  # the local engine checks it before loading
            return create(cfg.load_checkpoint_path, base_model=cfg.model_name)  # type: ignore[no-any-return]
        return create(cfg.load_checkpoint_path)  # type: ignore[no-any-return]
    if cfg.lora_rank == 0:
        return service.create_full_finetune_training_client(cfg.model_name, seed=cfg.seed)  # type: ignore[no-any-return]
    return service.create_lora_training_client(cfg.model_name, rank=cfg.lora_rank, seed=cfg.seed)  # type: ignore[no-any-return]


def resume_client(service: ServiceClientProtocol, cfg: LoopConfig,
                  run: RunFolder) -> tuple[TrainingClientProtocol, CheckpointRecord | None]:
    """The training client and the checkpoint record it resumes from (None: a fresh start). A checkpoint
    that cannot be read is passed over for the one before it, and said so; records whose checkpoints
    are all gone stop the run rather than silently start it again."""
    records = run.checkpoints.records()
    failures: list[str] = []
    for record in reversed([r for r in records if r.usable]):
        try:
            client = make_training_client(service, cfg, record)
        except PosttrainError as err:
            failures.append(f"{record.name}: {err}")
            continue
        if failures:
            print(f"posttrain: {run.path}: resuming from {record.name} (step {record.step}); passed over "
                  f"{'; '.join(failures)}", file=sys.stderr)
        return client, record
    if records:
        why = f": {failures[0]}" if failures else ": their folders are gone"
        raise RunFolderError(f"{run.path}: none of the {len(records)} checkpoints in {CHECKPOINTS} can be resumed"
                             f"{why}; start a new run with another --out")
    if read_metrics(run.metrics_path):
        print(f"posttrain: {run.path}: no checkpoint was saved; training again from step 0", file=sys.stderr)
    return make_training_client(service, cfg, None), None


@dataclass
class LoopResult:
    steps: int
    metrics: list[dict[str, Any]]
    final_state_path: str | None
    final_sampler_path: str | None
    final_eval: dict[str, float]
    plot_path: str | None
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def final_test_nll(self) -> float | None:
        return self.final_eval.get("test/nll")


@dataclass(frozen=True)
class Position:
    step: int
    epoch: int
    batch: int


@dataclass
class InFlight:
    at: Position
    finish: Callable[[], dict[str, Any]]  # waits for the step's calls; returns its metrics
    save: Any  # the queued save_state future, or None
    metrics: dict[str, Any]
    started: float


class Loop(ABC):
    """A training method's step on the shared run cycle. Subclasses set ``title`` and ``plot_series``
    ((metric, label) pairs for the progress bar and the plot) and implement the abstract hooks."""

    title = "training"
    plot_series: tuple[tuple[str, str], ...] = ()
    in_flight = 1  # steps queued before the oldest one's results are read

    def __init__(self, cfg: LoopConfig, service: ServiceClientProtocol, run: RunFolder, is_main: bool = True):
        check_settings(cfg)
        self.cfg, self.service, self.run_folder, self.is_main = cfg, service, run, is_main
        self.n_batches = self.batches_per_epoch()
        self.total_steps = self.n_batches * self.epochs()
        if cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.max_steps)

    # -- the method's hooks ---------------------------------------------------------------------------
    @abstractmethod
    def batches_per_epoch(self) -> int: ...

    def epochs(self) -> int:
        return self.cfg.num_epochs

    def start_epoch(self, epoch: int) -> None:  # noqa: B027 - optional hook
        """Called before an epoch's first step (also the first step after a resume)."""

    def prepare(self, client: TrainingClientProtocol, resumed: bool) -> None:  # noqa: B027 - optional hook
        """Called once the training client exists (DPO and RL's KL anchor set up their reference here)."""

    @abstractmethod
    def submit(self, client: TrainingClientProtocol, at: Position, lr: float) -> Callable[[], dict[str, Any]]:
        """Queue one step's calls; return what waits for them and gives the step's metrics."""

    @property
    def evaluates(self) -> bool:
        return False

    def evaluate(self, client: TrainingClientProtocol) -> dict[str, float]:
        return {}

    # -- the cycle ------------------------------------------------------------------------------------
    def run(self) -> LoopResult:
        start = time.perf_counter()
        last = self.run_folder.checkpoints.last()
        if last is not None and last.is_final:
            with self._tracking(resumed=True) as tracking:  # a tracker first named now gets the whole log
                if last.eval:
                    tracking.log(last.eval, last.step)
            return self._result(start, last, note="already complete")
        client, resume = resume_client(self.service, self.cfg, self.run_folder)
        self.prepare(client, resumed=resume is not None)
        steps_done = resume.step if resume else 0
        log = MetricsLog(self.run_folder.metrics_path, keep_before_step=steps_done) if self.is_main else None
        with self._tracking(resumed=steps_done > 0) as tracking:
            with step_progress(self.cfg.show_progress and self.is_main, self.title, self.total_steps,
                               steps_done) as bar:
                self._steps(client, resume, log, tracking, bar)
            final = self._save_final(client)
            if final.eval:
                tracking.log(final.eval, final.step)
        if log is not None:
            log.close()
        result = self._result(start, final)
        busy = getattr(client, "busy_seconds", None)  # local engine: time spent computing, for benchmarks
        if busy is not None:
            result.extra["engine_seconds"] = busy
        return result

    def _tracking(self, resumed: bool) -> Tracking:
        """The trackers mirroring the metrics log (main rank only); a tracker new to a resumed run first
        gets the steps already logged."""
        names = list(self.cfg.log_with) if self.is_main else []
        tracking = open_trackers(names, self.run_folder.path, self.run_folder.config,
                                 run_name=self.run_folder.path.name, resume=resumed)
        if names:
            replay(self.run_folder.metrics_path, tracking)
        return tracking

    def _steps(self, client: TrainingClientProtocol, resume: CheckpointRecord | None, log: MetricsLog | None,
               tracking: Tracking, bar: Callable[[int, str], None]) -> None:
        pending: deque[InFlight] = deque()
        for at in self._positions(resume):
            pending.append(self._submit(client, at))
            while len(pending) > self.in_flight - 1:
                self._finish(pending.popleft(), log, tracking, bar)
        while pending:
            self._finish(pending.popleft(), log, tracking, bar)

    def _positions(self, resume: CheckpointRecord | None) -> Any:
        first_epoch, first_batch = (resume.epoch, resume.batch) if resume else (0, 0)
        for epoch in range(first_epoch, self.epochs()):
            self.start_epoch(epoch)
            for batch in range(first_batch if epoch == first_epoch else 0, self.n_batches):
                step = epoch * self.n_batches + batch
                if step >= self.total_steps:
                    return
                yield Position(step, epoch, batch)

    def _submit(self, client: TrainingClientProtocol, at: Position) -> InFlight:
        started = time.perf_counter()
        lr = self.cfg.learning_rate * lr_multiplier(self.cfg.lr_schedule, at.step, self.total_steps,
                                                    self.cfg.warmup_steps)
        metrics: dict[str, Any] = {"step": at.step, "epoch": at.epoch, "learning_rate": lr}
        if self.evaluates and self.cfg.eval_every > 0 and at.step % self.cfg.eval_every == 0:
            metrics.update(self.evaluate(client))
        finish = self.submit(client, at, lr)
        save = None
        done = at.step + 1
        if self.cfg.save_every > 0 and done % self.cfg.save_every == 0 and done < self.total_steps:
            # queued after this step's update; overwrite: a crash may have left it saved but unrecorded
            save = client.save_state(step_name(done), overwrite=True)
        return InFlight(at, finish, save, metrics, started)

    def _finish(self, s: InFlight, log: MetricsLog | None, tracking: Tracking, bar: Callable[[int, str], None]) -> None:
        try:
            self._finish_step(s, log, tracking, bar)
        except NonFiniteError as err:  # nothing of this step is recorded; say what is kept
            last = self.run_folder.checkpoints.last()
            kept = f"the last good checkpoint is {last.name} (step {last.step})" if last else \
                "no checkpoint was saved before it"
            where = "" if str(err).startswith("step ") else f"step {s.at.step}: "
            raise NonFiniteError(f"{where}{err}; {kept}") from err

    def _finish_step(self, s: InFlight, log: MetricsLog | None, tracking: Tracking,
                     bar: Callable[[int, str], None]) -> None:
        m = s.metrics
        m["progress"] = min((s.at.step + 1) / self.total_steps, 1.0)
        m.update(s.finish())
        elapsed = time.perf_counter() - s.started
        m["time/step"] = elapsed
        if "num_tokens" in m:
            m["time/tokens_per_second"] = m["num_tokens"] / elapsed if elapsed > 0 else 0.0
        if log is not None:
            log.write(m)
            tracking.log(m, s.at.step)
        if s.save is not None:  # recorded after the step's metrics line, so a resume truncates nothing it needs
            self._record(s.at, s.save.result().path)
        shown = [f"{label} {m[key]:.3f}" for key, label in self.plot_series if isinstance(m.get(key), float)]
        bar(s.at.step + 1, " · ".join(shown))

    def _record(self, at: Position, path: str) -> None:
        epoch, batch = (at.epoch, at.batch + 1) if at.batch + 1 < self.n_batches else (at.epoch + 1, 0)
        self.run_folder.checkpoints.add(CheckpointRecord(step_name(at.step + 1), at.step + 1, epoch, batch, path))

    def _save_final(self, client: TrainingClientProtocol) -> CheckpointRecord:
        """The final training state and sampler weights, the final evaluation, and their record."""
        state = client.save_state(FINAL, overwrite=True).result().path
        sampler = client.save_weights_for_sampler(f"{FINAL}_sampler").result().path
        final_eval = self.evaluate(client) if self.evaluates else {}
        bad = sorted(k for k, v in final_eval.items() if not math.isfinite(v))
        if bad:
            last = self.run_folder.checkpoints.last()
            kept = f"the last good checkpoint is {last.name} (step {last.step})" if last else "no checkpoint was kept"
            raise NonFiniteError(f"final evaluation: {', '.join(f'{k} = {final_eval[k]}' for k in bad)}; {kept}")
        record = CheckpointRecord(FINAL, self.total_steps, self.epochs(), 0, state, sampler, final_eval)
        self.run_folder.checkpoints.add(record)
        return record

    def _result(self, start: float, final: CheckpointRecord, note: str = "") -> LoopResult:
        """The run's metrics and its plot; the final evaluation is the curves' last point."""
        rows = read_metrics(self.run_folder.metrics_path)
        plot = None
        if self.is_main and rows:
            points = rows + ([{"step": final.step, **final.eval}] if final.eval else [])
            plot = str(plot_curves(points, self.plot_series, self.run_folder.path / "curves.png",
                                   f"{self.title} · {self.cfg.model_name}"))
        return LoopResult(steps=final.step, metrics=rows, final_state_path=final.state_path or None,
                          final_sampler_path=final.sampler_path, final_eval=final.eval, plot_path=plot,
                          seconds=time.perf_counter() - start, extra={"note": note} if note else {})
