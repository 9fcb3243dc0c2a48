"""Supervised fine-tuning: tinker-cookbook's ``supervised/train.py`` step on the shared loop.

Each step is ``forward_backward(batch, "cross_entropy")`` then ``optim_step``; ``train_mean_nll`` comes
from the step's returned logprobs (the weights before the update), ``test/nll`` from ``forward`` on
the test set. See :mod:`posttrain.runs.loop` for epochs, resume and checkpoints.
"""

from __future__ import annotations

from typing import Any

from posttrain.runs.loop import LoopResult
from posttrain.training.datum_loop import DatumLoop
from posttrain.training.metrics import mean_nll
from posttrain.types import AdamParams, Datum
from posttrain.types.clients import TrainingClientProtocol

SFTResult = LoopResult


class SFTLoop(DatumLoop):
    title = "sft"
    plot_series = (("train_mean_nll", "train NLL"), ("test/nll", "test NLL"))

    def submit_batch(self, client: TrainingClientProtocol, data: list[Datum], adam: AdamParams) -> dict[str, Any]:
        return {"fwd": client.forward_backward(data, "cross_entropy"),
                "optim": client.optim_step(adam)}

    def step_metrics(self, data: list[Datum], results: dict[str, Any]) -> dict[str, Any]:
        logprobs = [o["logprobs"].to_numpy() for o in results["fwd"].loss_fn_outputs]
        weights = [d.weights for d in data]
        # num_loss_tokens is the weight sum, as in the reference (with mean reduction: one per sequence)
        return {"num_sequences": len(data), "num_loss_tokens": float(sum(w.sum() for w in weights)),
                "train_mean_nll": mean_nll(logprobs, weights)}

    def evaluate(self, client: TrainingClientProtocol) -> dict[str, float]:
        out = client.forward(self.test_data, "cross_entropy").result()
        logprobs = [o["logprobs"].to_numpy() for o in out.loss_fn_outputs]
        return {"test/nll": mean_nll(logprobs, [d.weights for d in self.test_data])}
