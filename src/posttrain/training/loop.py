"""The loop every batch-of-datums method shares (SFT, DPO): epochs, the learning-rate schedule,
pipelined steps, evaluation, checkpoints, exact resume, metrics and the plot.

Per epoch: ``dataset.set_epoch(seed=epoch)`` (epoch 0 included, as tinker-cookbook does), then per
batch the method's step is submitted before the previous step's results are read. Evaluation runs
before a step is submitted, so it sees the weights before that step's update.

Resume is exact. A checkpoint is queued right after its step's ``optim_step``, so it holds that
update, and its record names the *next* batch to train. tinker-cookbook's SFT loop records the
checkpoint's own batch and so trains that batch twice after a resume (its issues 935/940); here the
rest of a resumed run equals the uninterrupted run, step for step.
"""

from __future__ import annotations

import inspect
import sys
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from posttrain.data.supervised import SupervisedDataset
from posttrain.datum import Datum
from posttrain.engine.hosted import Backend
from posttrain.engine.types import AdamParams
from posttrain.errors import NonFiniteError, PosttrainError
from posttrain.training.metrics import MetricsLog, progress_bar, read_metrics
from posttrain.training.plot import plot_curves
from posttrain.training.run_folder import CHECKPOINTS, RunFolder, RunFolderError
from posttrain.training.schedule import lr_multiplier


@dataclass
class LoopConfig:
    model_name: str = "posttrain:smollm2-135m-instruct"
    lora_rank: int = 32  # 0: full fine-tune (local engine only)
    learning_rate: float = 2e-4
    lr_schedule: str = "linear"
    warmup_steps: int = 0
    num_epochs: int = 1
    max_steps: int | None = None
    eval_every: int = 8  # 0: never
    save_every: int = 20  # 0: only the final checkpoint
    seed: int = 0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    adam_eps: float = 1e-8
    weight_decay: float = 0.0
    grad_clip_norm: float = 0.0
    show_progress: bool = False
    load_checkpoint_path: str | None = None  # start from these weights (fresh optimizer), as tinker-cookbook


def adam_params(cfg: LoopConfig, backend: Backend, lr: float) -> Any:
    return backend.adam(AdamParams(learning_rate=lr, beta1=cfg.adam_beta1, beta2=cfg.adam_beta2, eps=cfg.adam_eps,
                                   weight_decay=cfg.weight_decay, grad_clip_norm=cfg.grad_clip_norm))


def make_training_client(service: Any, cfg: LoopConfig, resume: dict[str, Any] | None) -> Any:
    """Resume (weights + optimizer), start from a checkpoint's weights, or start fresh (LoRA or full)."""
    if resume is not None:
        return service.create_training_client_from_state_with_optimizer(resume["state_path"])
    if cfg.load_checkpoint_path:
        create = service.create_training_client_from_state
        if "base_model" in inspect.signature(create).parameters:  # the local engine checks it before loading
            return create(cfg.load_checkpoint_path, base_model=cfg.model_name)
        return create(cfg.load_checkpoint_path)
    if cfg.lora_rank == 0:
        return service.create_full_finetune_training_client(cfg.model_name, seed=cfg.seed)
    return service.create_lora_training_client(cfg.model_name, rank=cfg.lora_rank, seed=cfg.seed)


def resume_client(service: Any, cfg: LoopConfig, run: RunFolder) -> tuple[Any, dict[str, Any] | None]:
    """The training client and the checkpoint record it resumes from (None: a fresh start). A checkpoint
    that cannot be read is passed over for the one before it, and said so; records whose checkpoints
    are all gone stop the run rather than silently start it again."""
    records = run.records()
    failures: list[str] = []
    for record in reversed(run.usable_checkpoints()):
        try:
            client = make_training_client(service, cfg, record)
        except PosttrainError as err:
            failures.append(f"{record['name']}: {err}")
            continue
        if failures:
            print(f"posttrain: {run.path}: resuming from {record['name']} (step {record['step']}); passed over "
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


@dataclass
class Submitted:
    step: int
    epoch: int
    batch: int
    data: list[Datum]
    futures: dict[str, Any]  # the method's in-flight calls
    save: Any
    metrics: dict[str, Any]
    started: float


class TrainingLoop(ABC):
    """Subclasses define one step (:meth:`submit`, :meth:`step_metrics`) and :meth:`evaluate`."""

    title = "training"
    plot_series: tuple[tuple[str, str], ...] = ()

    def __init__(self, cfg: LoopConfig, backend: Backend, run: RunFolder, train: SupervisedDataset,
                 test: SupervisedDataset | None, is_main: bool = True,
                 on_first_batch: Callable[[list[Datum]], None] | None = None):
        self.cfg, self.backend, self.run_folder = cfg, backend, run
        self.train, self.test, self.is_main = train, test, is_main
        self.on_first_batch = on_first_batch  # called with the datums of step 0, as trained
        self.n_batches = len(train)
        self.total_steps = self.n_batches * cfg.num_epochs
        if cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        self.test_data = [d for i in range(len(test)) for d in test.get_batch(i)] if test is not None else []

    # -- the method's hooks ---------------------------------------------------------------------------
    def prepare(self, client: Any, resumed: bool) -> None:  # noqa: B027 - optional hook
        """Called once the training client exists (DPO sets up its reference here)."""

    @abstractmethod
    def submit(self, client: Any, data: list[Datum], adam: Any) -> dict[str, Any]:
        """Queue one step's calls; return their futures by name."""

    @abstractmethod
    def step_metrics(self, data: list[Datum], results: dict[str, Any]) -> dict[str, Any]:
        """Metrics of a finished step from its futures' results."""

    @abstractmethod
    def evaluate(self, client: Any) -> dict[str, float]: ...

    # -- setup ----------------------------------------------------------------------------------------
    # -- the loop -------------------------------------------------------------------------------------
    def run(self) -> LoopResult:
        start = time.perf_counter()
        resume = self.run_folder.last_checkpoint()
        if resume is not None and resume.get("name") == "final":
            return self._result(start, resume, note="already complete")
        client, resume = resume_client(self.backend.service, self.cfg, self.run_folder)
        steps_done = resume["step"] if resume else 0
        self.prepare(client, resumed=resume is not None)
        log = MetricsLog(self.run_folder.metrics_path, keep_before_step=steps_done) if self.is_main else None
        first_epoch, first_batch = (resume["epoch"], resume["batch"]) if resume else (0, 0)
        pending: deque[Submitted] = deque()
        with progress_bar(self.cfg.show_progress and self.is_main, self.title) as bar:
            task = bar.add_task(self.title, total=self.total_steps, completed=steps_done, status="")
            for epoch in range(first_epoch, self.cfg.num_epochs):
                self.train.set_epoch(seed=epoch)
                for batch in range(first_batch if epoch == first_epoch else 0, self.n_batches):
                    step = epoch * self.n_batches + batch
                    if step >= self.total_steps:
                        break
                    pending.append(self._submit(client, step, epoch, batch))
                    if len(pending) > 1:
                        self._finish(pending.popleft(), log, bar, task)
            while pending:
                self._finish(pending.popleft(), log, bar, task)
        final = self._save_final(client)
        if log is not None:
            log.close()
        result = self._result(start, final)
        if hasattr(client, "busy_seconds"):  # local engine: time spent computing, for benchmarks
            result.extra["engine_seconds"] = client.busy_seconds
        return result

    def _submit(self, client: Any, step: int, epoch: int, batch: int) -> Submitted:
        started = time.perf_counter()
        data = self.train.get_batch(batch)
        if step == 0 and self.on_first_batch is not None and self.is_main:
            self.on_first_batch(data)
        lr = self.cfg.learning_rate * lr_multiplier(self.cfg.lr_schedule, step, self.total_steps, self.cfg.warmup_steps)
        metrics: dict[str, Any] = {"step": step, "epoch": epoch, "learning_rate": lr}
        if self.test_data and self.cfg.eval_every > 0 and step % self.cfg.eval_every == 0:
            metrics.update(self.evaluate(client))
        futures = self.submit(client, data, adam_params(self.cfg, self.backend, lr))
        save = None
        if self.cfg.save_every > 0 and (step + 1) % self.cfg.save_every == 0 and step + 1 < self.total_steps:
            # queued after this step's update; overwrite: a crash may have left it saved but unrecorded
            save = client.save_state(f"step_{step + 1:06d}", overwrite=True)
        return Submitted(step, epoch, batch, data, futures, save, metrics, started)

    def _finish(self, s: Submitted, log: MetricsLog | None, bar: Any, task: Any) -> None:
        try:
            self._finish_step(s, log, bar, task)
        except NonFiniteError as err:  # nothing of this step is recorded; say what is kept
            last = self.run_folder.last_checkpoint()
            kept = f"the last good checkpoint is {last['name']} (step {last['step']})" if last else \
                "no checkpoint was saved before it"
            where = "" if str(err).startswith("step ") else f"step {s.step}: "
            raise NonFiniteError(f"{where}{err}; {kept}") from err

    def _finish_step(self, s: Submitted, log: MetricsLog | None, bar: Any, task: Any) -> None:
        results = {name: f.result() for name, f in s.futures.items()}
        num_tokens = sum(len(d) for d in s.data)
        elapsed = time.perf_counter() - s.started
        m = s.metrics
        m.update(progress=min((s.step + 1) / self.total_steps, 1.0), num_tokens=num_tokens)
        m.update(self.step_metrics(s.data, results))
        opt = results.get("optim")
        m.update({f"optim/{k.split(':')[0]}": v for k, v in (getattr(opt, "metrics", None) or {}).items()
                  if not k.startswith("learning_rate")})
        m.update({"time/step": elapsed, "time/tokens_per_second": num_tokens / elapsed if elapsed > 0 else 0.0})
        if log is not None:
            log.write(m)
        if s.save is not None:
            self._record(s, s.save.result().path)
        shown = [f"{label} {m[key]:.3f}" for key, label in self.plot_series if isinstance(m.get(key), float)]
        bar.update(task, completed=s.step + 1, status=" · ".join(shown))

    def _record(self, s: Submitted, path: str) -> None:
        """Recorded after the step's metrics line, so a resume truncates nothing it needs."""
        epoch, batch = (s.epoch, s.batch + 1) if s.batch + 1 < self.n_batches else (s.epoch + 1, 0)
        if self.is_main:
            self.run_folder.record_checkpoint({"name": f"step_{s.step + 1:06d}", "step": s.step + 1,
                                               "epoch": epoch, "batch": batch, "state_path": path})

    def _save_final(self, client: Any) -> dict[str, Any]:
        return save_final(client, self.run_folder, self.total_steps, self.cfg.num_epochs,
                          self.evaluate if self.test_data else None, self.is_main)

    def _result(self, start: float, final: dict[str, Any], note: str = "") -> LoopResult:
        return loop_result(self.run_folder, f"{self.title} · {self.cfg.model_name}", self.plot_series, start, final,
                           note, self.is_main)


def save_final(client: Any, run: RunFolder, steps: int, epoch: int, evaluate: Callable[[Any], dict[str, float]] | None,
               is_main: bool) -> dict[str, Any]:
    """The final training state and sampler weights, the final evaluation, and their record."""
    state = client.save_state("final", overwrite=True).result().path
    sampler = client.save_weights_for_sampler("final_sampler").result().path
    record: dict[str, Any] = {"name": "final", "step": steps, "epoch": epoch, "batch": 0, "state_path": state,
                              "sampler_path": sampler}
    if evaluate is not None:
        record["eval"] = evaluate(client)
    if is_main:
        run.record_checkpoint(record)
    return record


def loop_result(run: RunFolder, title: str, series: tuple[tuple[str, str], ...], start: float,
                final: dict[str, Any], note: str, is_main: bool) -> LoopResult:
    """The run's metrics and its plot; the final evaluation is the curves' last point."""
    rows = read_metrics(run.metrics_path)
    plot = None
    if is_main and rows:
        points = rows + ([{"step": final["step"], **final["eval"]}] if final.get("eval") else [])
        plot = str(plot_curves(points, series, run.path / "curves.png", title))
    return LoopResult(steps=final["step"], metrics=rows, final_state_path=final.get("state_path"),
                      final_sampler_path=final.get("sampler_path"), final_eval=final.get("eval", {}),
                      plot_path=plot, seconds=time.perf_counter() - start, extra={"note": note} if note else {})
