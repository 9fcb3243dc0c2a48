"""Reinforcement learning and on-policy distillation: tinker-cookbook's ``rl/train.py`` (synchronous)
and ``distillation/train_on_policy.py`` on any ServiceClient.

Per batch: a sampling snapshot of the current weights → every group of the batch rolled out together
→ advantages → datums (target tokens, sampler logprobs, advantages; 0 on observation tokens) →
``num_substeps`` × (``forward_backward(..., "importance_sampling" | "ppo")`` + ``optim_step``).

* RL advantages: ``reward - group mean``; groups whose rewards are all equal are dropped (they carry no
  gradient). An optional KL penalty against the starting weights adds ``coef · (mean_kl - kl_t)`` to each
  action token's advantage, ``kl_t = logp_sampler - logp_start`` (the reference's form).
* Distillation: prompts only, reward 0; the teacher's ``compute_logprobs`` on the student's own samples
  gives the per-token reverse KL ``logp_student - logp_teacher``, and the advantage is
  ``-kl_penalty_coef · reverse_kl``. Metric ``teacher_kl``.

Metrics use the reference's names: ``env/all/reward/total``, ``env/all/by_group/frac_mixed``,
``frac_all_good``, ``frac_all_bad``, ``ac_tokens_per_turn``, ``optim/kl_sample_train_v1`` (sampler
minus trainer logprobs on action tokens: near 0 when they agree), ``optim/entropy``, ``learning_rate``.
Sampling seeds are a function of (seed, batch), so a resumed run repeats the uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from posttrain.rl import (
    RLDataset,
    TrajectoryGroup,
    assemble_training_data,
    compute_advantages,
    do_group_rollouts,
    remove_constant_reward_groups,
    remove_mask,
    trajectory_metrics,
)
from posttrain.runs.folder import RunFolder
from posttrain.runs.loop import Loop, LoopConfig, Position, adam_params
from posttrain.settings import at_least, setting
from posttrain.training.reference import Reference, sequence_logprobs
from posttrain.types import Datum, SamplingParams
from posttrain.types.clients import SamplingClientProtocol, ServiceClientProtocol, TrainingClientProtocol


@dataclass
class RLLoopConfig(LoopConfig):
    max_tokens: int = setting(32, "tokens sampled per turn", flag="--max-tokens", kind=int, check=at_least(1))
    temperature: float = setting(1.0, "sampling temperature", flag="--temperature", kind=float, check=at_least(0))
    top_k: int = setting(-1, "sample from the k most likely tokens (-1: all)")
    loss_fn: str = setting("importance_sampling", "policy-gradient loss", flag="--loss-fn",
                           choices=("importance_sampling", "ppo"))
    num_substeps: int = setting(1, "optimizer steps per batch", flag="--num-substeps", kind=int, check=at_least(1))
    kl_penalty_coef: float = setting(0.0, "rl: KL penalty against the starting weights; distill: weight of the "
                                     "teacher's reverse KL", flag="--kl-penalty-coef", kind=float, check=at_least(0))
    remove_constant_groups: bool = setting(True, "drop groups whose rewards are all equal (no gradient)")


def _masked(data: list[Datum], key: str) -> np.ndarray:
    return np.concatenate([d.extra[key][d.extra["mask"] > 0] for d in data]) if data else np.zeros(0)


class RLLoop(Loop):
    """One step per batch of env groups, one pass (``epochs`` 1): a step samples with the current
    weights, so it runs whole before the next one is queued."""

    title = "rl"
    plot_series: tuple[tuple[str, str], ...] = (("env/all/reward/total", "reward"),
                                                 ("test/env/all/reward/total", "held-out reward"))
    cfg: RLLoopConfig

    def __init__(self, cfg: RLLoopConfig, service: ServiceClientProtocol, run: RunFolder, train: RLDataset,
                 test: RLDataset | None = None, is_main: bool = True):
        self.train, self.test = train, test
        super().__init__(cfg, service, run, is_main)
        self.reference: Reference | None = None

    def batches_per_epoch(self) -> int:
        return len(self.train)

    def epochs(self) -> int:
        return 1

    @property
    def evaluates(self) -> bool:
        return self.test is not None

    def prepare(self, client: TrainingClientProtocol, resumed: bool) -> None:
        if self.cfg.kl_penalty_coef > 0:
            self.reference = Reference.for_run(client, self.service, self.run_folder, self.cfg.lora_rank, resumed)

    def make_data(self, groups: list[TrajectoryGroup]) -> tuple[list[Datum], dict[str, float]]:
        if self.cfg.remove_constant_groups:
            groups = remove_constant_reward_groups(groups)
        data = assemble_training_data(groups, compute_advantages(groups), include_mask=True)
        metrics: dict[str, float] = {"num_groups_trained": float(len(groups))}
        if data and self.reference is not None:
            metrics.update(self._kl_penalty(data, self.reference.logprobs(data)))
        return data, metrics

    def _kl_penalty(self, data: list[Datum], start: list[np.ndarray]) -> dict[str, float]:
        kls = [(d.extra["logprobs"] - s) * d.extra["mask"] for d, s in zip(data, start, strict=True)]
        mean_kl = float(sum(k.sum() for k in kls) / max(sum(d.extra["mask"].sum() for d in data), 1.0))
        for d, kl in zip(data, kls, strict=True):
            d.extra["advantages"] = (d.extra["advantages"]
                                     + self.cfg.kl_penalty_coef * (mean_kl - kl) * d.extra["mask"]).astype(np.float32)
        return {"kl_policy_start": mean_kl}

    # -- one step ---------------------------------------------------------------------------------------
    def _params(self, step: int, greedy: bool = False) -> SamplingParams:
        return SamplingParams(max_tokens=self.cfg.max_tokens, seed=self.cfg.seed * 1_000_003 + step,
                              temperature=0.0 if greedy else self.cfg.temperature, top_k=self.cfg.top_k)

    def submit(self, client: TrainingClientProtocol, at: Position, lr: float) -> Callable[[], dict[str, Any]]:
        metrics = self.step(client, at.step, lr)
        return lambda: metrics

    def step(self, client: TrainingClientProtocol, step: int, lr: float) -> dict[str, Any]:
        sampler = client.save_weights_and_get_sampling_client()
        groups = do_group_rollouts(sampler, self.train.get_batch(step), self._params(step))
        metrics: dict[str, Any] = dict(trajectory_metrics(groups))
        data, extra = self.make_data(groups)
        metrics.update(extra)
        if not data:  # every trajectory failed or was dropped: record it and go on
            metrics["optim/skipped"] = 1.0
            return metrics
        metrics.update(self._train(client, data, lr))
        return metrics

    def _train(self, client: TrainingClientProtocol, data: list[Datum], lr: float) -> dict[str, float]:
        parts = [list(p) for p in np.array_split(np.arange(len(data)), self.cfg.num_substeps) if len(p)]
        first: list[np.ndarray] = []
        for k, part in enumerate(parts):
            batch = [remove_mask(data[i]) for i in part]
            fwd = client.forward_backward(batch, self.cfg.loss_fn)
            opt = client.optim_step(adam_params(self.cfg, lr))
            logprobs = [o["logprobs"].to_numpy() for o in fwd.result().loss_fn_outputs]
            opt.result()
            if k == 0:
                first = logprobs
        head = [data[i] for i in parts[0]]
        sampled = _masked(head, "logprobs")
        trained = np.concatenate([lp[d.extra["mask"] > 0] for lp, d in zip(first, head, strict=True)])
        return {"optim/kl_sample_train_v1": float(np.mean(sampled - trained)) if len(sampled) else 0.0,
                "optim/entropy": float(-np.mean(_masked(data, "logprobs"))) if data else 0.0,
                "num_datums": float(len(data)), "num_tokens": float(sum(len(d) for d in data))}

    def evaluate(self, client: TrainingClientProtocol) -> dict[str, float]:
        assert self.test is not None
        sampler = client.save_weights_and_get_sampling_client()
        groups = [g for i in range(len(self.test))
                  for g in do_group_rollouts(sampler, self.test.get_batch(i), self._params(i, greedy=True))]
        return {f"test/{k}": v for k, v in trajectory_metrics(groups).items() if k.startswith("env/all/reward")}


class DistillLoop(RLLoop):
    """On-policy distillation: the student samples, the teacher scores, the advantage is −coef · reverse KL.

    A student must already put some mass where the teacher does: a randomly initialised one samples
    tokens uniformly from the whole vocabulary and almost never meets the teacher's choices (start it
    from a checkpoint with ``load_checkpoint_path``, e.g. after a short SFT)."""

    title = "distill"
    plot_series = (("teacher_kl", "teacher KL"),)

    def __init__(self, *args: Any, teacher: SamplingClientProtocol, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.teacher = teacher  # the teacher model's sampling client

    def prepare(self, client: TrainingClientProtocol, resumed: bool) -> None:
        """No start-weight reference: the teacher is the anchor."""

    def make_data(self, groups: list[TrajectoryGroup]) -> tuple[list[Datum], dict[str, float]]:
        data = assemble_training_data(groups, [np.zeros(len(g.trajectories), np.float32) for g in groups],
                                      include_mask=True)
        if not data:
            return data, {}
        teacher = sequence_logprobs(self.teacher, data)
        kls = [(d.extra["logprobs"] - t) * d.extra["mask"] for d, t in zip(data, teacher, strict=True)]
        mean_kl = float(sum(k.sum() for k in kls) / max(sum(d.extra["mask"].sum() for d in data), 1.0))
        for d, kl in zip(data, kls, strict=True):
            d.extra["advantages"] = (d.extra["advantages"] - self.cfg.kl_penalty_coef * kl).astype(np.float32)
        return data, {"teacher_kl": mean_kl}
