"""Supervised fine-tuning: tinker-cookbook's ``supervised/train.py`` loop, on any ServiceClient.

Per epoch: ``dataset.set_epoch(seed=epoch)`` (epoch 0 included, as the reference does), then per batch
``forward_backward(batch, "cross_entropy")`` and ``optim_step(AdamParams(lr_t))``, the next batch
submitted before the previous one's result is read. Evaluation (test-set NLL with ``forward``) runs
before a step is submitted, so it sees the weights before that step's update.

Resume is exact. A checkpoint is queued right after its step's ``optim_step``, so it holds that
update, and its record names the *next* batch to train. tinker-cookbook records the checkpoint's own
batch and so trains that batch twice after a resume (its issues 935/940); here the rest of a resumed
run equals the uninterrupted run, step for step.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from posttrain.data.supervised import SupervisedDataset
from posttrain.datum import Datum
from posttrain.engine.hosted import Backend
from posttrain.engine.types import AdamParams
from posttrain.training.metrics import MetricsLog, mean_nll, progress_bar, read_metrics
from posttrain.training.plot import plot_curves
from posttrain.training.run_folder import RunFolder
from posttrain.training.schedule import lr_multiplier


@dataclass
class SFTLoopConfig:
    model_name: str
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


@dataclass
class SFTResult:
    steps: int
    metrics: list[dict[str, Any]]
    final_state_path: str | None
    final_sampler_path: str | None
    final_test_nll: float | None
    plot_path: str | None
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Submitted:
    step: int
    epoch: int
    batch: int
    data: list[Datum]
    fwd: Any
    opt: Any
    save: Any
    metrics: dict[str, Any]
    started: float


class SFTLoop:
    """One run: ``run()`` trains from the start or from the run folder's last checkpoint."""

    def __init__(self, cfg: SFTLoopConfig, backend: Backend, run: RunFolder, train: SupervisedDataset,
                 test: SupervisedDataset | None, is_main: bool = True,
                 on_first_batch: Any = None):
        self.cfg, self.backend, self.run_folder = cfg, backend, run
        self.train, self.test, self.is_main = train, test, is_main
        self.on_first_batch = on_first_batch  # called with the datums of step 0, as trained
        self.n_batches = len(train)
        self.total_steps = self.n_batches * cfg.num_epochs
        if cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        self.test_data = [d for i in range(len(test)) for d in test.get_batch(i)] if test is not None else []

    # -- setup ----------------------------------------------------------------------------------------
    def _client(self, resume: dict[str, Any] | None) -> Any:
        service = self.backend.service
        if resume is not None:
            return service.create_training_client_from_state_with_optimizer(resume["state_path"])
        if self.cfg.lora_rank == 0:
            return service.create_full_finetune_training_client(self.cfg.model_name, seed=self.cfg.seed)
        return service.create_lora_training_client(self.cfg.model_name, rank=self.cfg.lora_rank, seed=self.cfg.seed)

    def _adam(self, lr: float) -> Any:
        c = self.cfg
        return self.backend.adam(AdamParams(learning_rate=lr, beta1=c.adam_beta1, beta2=c.adam_beta2, eps=c.adam_eps,
                                            weight_decay=c.weight_decay, grad_clip_norm=c.grad_clip_norm))

    # -- the loop ---------------------------------------------------------------------------------------
    def run(self) -> SFTResult:
        start = time.perf_counter()
        resume = self.run_folder.last_checkpoint()
        if resume is not None and resume.get("name") == "final":
            return self._result(start, resume, note="already complete")
        steps_done = resume["step"] if resume else 0
        client = self._client(resume)
        self.client = client
        log = MetricsLog(self.run_folder.metrics_path, keep_before_step=steps_done) if self.is_main else None
        first_epoch, first_batch = (resume["epoch"], resume["batch"]) if resume else (0, 0)
        pending: deque[_Submitted] = deque()
        with progress_bar(self.cfg.show_progress and self.is_main, "training") as bar:
            task = bar.add_task("train", total=self.total_steps, completed=steps_done, status="")
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
        return self._result(start, final)

    def _submit(self, client: Any, step: int, epoch: int, batch: int) -> _Submitted:
        started = time.perf_counter()
        data = self.train.get_batch(batch)
        if step == 0 and self.on_first_batch is not None and self.is_main:
            self.on_first_batch(data)
        lr = self.cfg.learning_rate * lr_multiplier(self.cfg.lr_schedule, step, self.total_steps, self.cfg.warmup_steps)
        metrics: dict[str, Any] = {"step": step, "epoch": epoch, "learning_rate": lr}
        if self._eval_due(step):
            metrics.update(self._evaluate(client))
        fwd = client.forward_backward(self.backend.datums(data), "cross_entropy")
        opt = client.optim_step(self._adam(lr))
        save = None
        if self.cfg.save_every > 0 and (step + 1) % self.cfg.save_every == 0 and step + 1 < self.total_steps:
            # queued after this step's update; overwrite: a crash may have left it saved but unrecorded
            save = client.save_state(f"step_{step + 1:06d}", overwrite=True)
        return _Submitted(step, epoch, batch, data, fwd, opt, save, metrics, started)

    def _eval_due(self, step: int) -> bool:
        every = self.cfg.eval_every
        return bool(self.test_data) and every > 0 and step % every == 0

    def _evaluate(self, client: Any) -> dict[str, float]:
        out = client.forward(self.backend.datums(self.test_data), "cross_entropy").result()
        logprobs = [o["logprobs"].to_numpy() for o in out.loss_fn_outputs]
        return {"test/nll": mean_nll(logprobs, [d.weights for d in self.test_data])}

    def _finish(self, s: _Submitted, log: MetricsLog | None, bar: Any, task: Any) -> None:
        fwd, opt = s.fwd.result(), s.opt.result()
        logprobs = [o["logprobs"].to_numpy() for o in fwd.loss_fn_outputs]
        weights = [d.weights for d in s.data]
        num_tokens = sum(len(d) for d in s.data)
        elapsed = time.perf_counter() - s.started
        m = s.metrics
        m.update(progress=min((s.step + 1) / self.total_steps, 1.0), num_sequences=len(s.data),
                 num_tokens=num_tokens, num_loss_tokens=float(sum(w.sum() for w in weights)),
                 train_mean_nll=mean_nll(logprobs, weights))
        m.update({f"optim/{k.split(':')[0]}": v for k, v in (opt.metrics or {}).items()
                  if not k.startswith("learning_rate")})
        m.update({"time/step": elapsed, "time/tokens_per_second": num_tokens / elapsed if elapsed > 0 else 0.0})
        if log is not None:
            log.write(m)
        if s.save is not None:
            path = s.save.result().path
            position = (s.epoch, s.batch + 1) if s.batch + 1 < self.n_batches else (s.epoch + 1, 0)
            if self.is_main:  # recorded after the step's metrics line, so a resume truncates nothing it needs
                self.run_folder.record_checkpoint({"name": f"step_{s.step + 1:06d}", "step": s.step + 1,
                                                   "epoch": position[0], "batch": position[1], "state_path": path})
        status = f"nll {m['train_mean_nll']:.3f}" + (f" · test {m['test/nll']:.3f}" if "test/nll" in m else "")
        bar.update(task, completed=s.step + 1, status=status)

    def _save_final(self, client: Any) -> dict[str, Any]:
        state = client.save_state("final", overwrite=True).result().path
        sampler = client.save_weights_for_sampler("final_sampler").result().path
        record = {"name": "final", "step": self.total_steps, "epoch": self.cfg.num_epochs, "batch": 0,
                  "state_path": state, "sampler_path": sampler}
        if self.test_data:
            record["test/nll"] = self._evaluate(client)["test/nll"]
        if self.is_main:
            self.run_folder.record_checkpoint(record)
        return record

    def _result(self, start: float, final: dict[str, Any], note: str = "") -> SFTResult:
        rows = read_metrics(self.run_folder.metrics_path)
        plot = None
        if self.is_main and rows:
            plot = str(plot_curves(rows, [("train_mean_nll", "train NLL"), ("test/nll", "test NLL")],
                                   self.run_folder.path / "loss.png", f"SFT {self.cfg.model_name}"))
        return SFTResult(steps=final["step"], metrics=rows, final_state_path=final.get("state_path"),
                         final_sampler_path=final.get("sampler_path"), final_test_nll=final.get("test/nll"),
                         plot_path=plot, seconds=time.perf_counter() - start, extra={"note": note} if note else {})
