"""Direct Preference Optimization: tinker-cookbook's ``preference/train_dpo.py`` step on the shared loop.

Batches hold (chosen, rejected) datum pairs, chosen first, with weights on the completion only. Per
sequence, the weighted sum of target logprobs under the policy and under a frozen reference gives
``chosen_log_ratio = lp_c - ref_c`` and ``rejected_log_ratio = lp_r - ref_r``, and

    loss = mean(-logsigmoid(β · (chosen_log_ratio - rejected_log_ratio)))

through ``forward_backward_custom``. Metrics: ``dpo_loss``, ``accuracy`` (chosen ratio > rejected ratio),
``margin`` (β·chosen − β·rejected, β applied once), ``chosen_reward``, ``rejected_reward``, ``num_pairs``.

The reference is the run's *starting* weights, also after a resume: with LoRA on the local engine, the
base model with the adapter switched off (no second copy in memory); otherwise a sampler checkpoint of
the starting weights saved when the run begins (``RUN/reference.json`` names it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from posttrain.errors import PosttrainError
from posttrain.settings import positive_finite
from posttrain.training.datum_loop import DatumLoop
from posttrain.training.reference import Reference
from posttrain.types import AdamParams, Datum
from posttrain.types.clients import TrainingClientProtocol


def dpo_loss(policy: Sequence[torch.Tensor], reference: Sequence[np.ndarray], weights: Sequence[np.ndarray],
             beta: float) -> tuple[torch.Tensor, dict[str, float]]:
    """The DPO loss of adjacent (chosen, rejected) sequences and its metrics."""
    if len(policy) % 2:
        raise PosttrainError(f"DPO needs (chosen, rejected) pairs, got {len(policy)} sequences")
    # Both sides summed the same way, in float64: equal logprobs give exactly zero log-ratios.
    seq = torch.stack([(lp.double() * torch.as_tensor(w, dtype=torch.float64)).sum()
                       for lp, w in zip(policy, weights, strict=True)])
    ref = torch.stack([(torch.as_tensor(r, dtype=torch.float64) * torch.as_tensor(w, dtype=torch.float64)).sum()
                       for r, w in zip(reference, weights, strict=True)])
    ratio = seq - ref
    chosen, rejected = ratio[0::2], ratio[1::2]
    loss = -F.logsigmoid(beta * (chosen - rejected)).mean()
    c, r = beta * chosen.detach(), beta * rejected.detach()
    return loss, {"dpo_loss": float(loss.detach()), "accuracy": float((chosen > rejected).float().mean()),
                  "margin": float((c - r).mean()), "chosen_reward": float(c.mean()),
                  "rejected_reward": float(r.mean())}


class DPOLoop(DatumLoop):
    title = "dpo"
    plot_series = (("dpo_loss", "train loss"), ("test/dpo_loss", "test loss"), ("accuracy", "train accuracy"),
                   ("test/accuracy", "test accuracy"))

    def __init__(self, *args: Any, beta: float = 0.1, **kwargs: Any):
        super().__init__(*args, **kwargs)
        problem = positive_finite(beta)  # the same check as DPOConfig.beta's
        if problem:
            raise PosttrainError(f"beta {problem}")
        self.beta = beta
        self.reference: Reference | None = None

    def prepare(self, client: TrainingClientProtocol, resumed: bool) -> None:
        self.reference = Reference.for_run(client, self.service, self.run_folder, self.cfg.lora_rank, resumed)

    def _loss_fn(self, data: list[Datum], reference: list[np.ndarray]) -> Any:
        weights = [d.weights for d in data]

        def fn(_data: list[Any], logprobs: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
            return dpo_loss(logprobs, reference, weights, self.beta)

        return fn

    def submit_batch(self, client: TrainingClientProtocol, data: list[Datum], adam: AdamParams) -> dict[str, Any]:
        assert self.reference is not None, "prepare() sets the reference"
        reference = self.reference.logprobs(data)
        fwd = client.forward_backward_custom(data, self._loss_fn(data, reference))
        return {"fwd": fwd, "optim": client.optim_step(adam)}

    def step_metrics(self, data: list[Datum], results: dict[str, Any]) -> dict[str, Any]:
        keep = ("dpo_loss", "accuracy", "margin", "chosen_reward", "rejected_reward")
        return {"num_pairs": len(data) // 2, **{k: results["fwd"].metrics[k] for k in keep}}

    def evaluate(self, client: TrainingClientProtocol) -> dict[str, float]:
        out = client.forward(self.test_data, "cross_entropy").result()
        policy = [torch.from_numpy(o["logprobs"].to_numpy()) for o in out.loss_fn_outputs]
        assert self.reference is not None, "prepare() sets the reference"
        reference = self.reference.logprobs(self.test_data)
        _, m = dpo_loss(policy, reference, [d.weights for d in self.test_data], self.beta)
        return {"test/dpo_loss": m["dpo_loss"], "test/accuracy": m["accuracy"], "test/margin": m["margin"]}
