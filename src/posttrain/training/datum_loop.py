"""Loops whose step trains one batch of datums from a :class:`SupervisedDataset` (SFT, DPO): the batch,
the step's calls, the metrics every such step reports, and the held-out set.

A method supplies :meth:`DatumLoop.submit_batch` (queue the calls: ``forward_backward`` or
``forward_backward_custom``, then ``optim_step``), :meth:`DatumLoop.step_metrics` and ``evaluate``. Two
steps are in flight: the next step's calls are queued behind the running one.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any

from posttrain.data.supervised import SupervisedDataset
from posttrain.runs.folder import RunFolder
from posttrain.runs.loop import Loop, LoopConfig, Position, adam_params
from posttrain.types import AdamParams, Datum
from posttrain.types.clients import ServiceClientProtocol, TrainingClientProtocol


class DatumLoop(Loop):
    in_flight = 2

    def __init__(self, cfg: LoopConfig, service: ServiceClientProtocol, run: RunFolder, train: SupervisedDataset,
                 test: SupervisedDataset | None, is_main: bool = True,
                 on_first_batch: Callable[[list[Datum]], None] | None = None):
        self.train, self.test = train, test
        super().__init__(cfg, service, run, is_main)
        self.on_first_batch = on_first_batch  # called with the datums of step 0, as trained
        self.test_data = [d for i in range(len(test)) for d in test.get_batch(i)] if test is not None else []

    def batches_per_epoch(self) -> int:
        return len(self.train)

    def start_epoch(self, epoch: int) -> None:
        self.train.set_epoch(seed=epoch)

    @property
    def evaluates(self) -> bool:
        return bool(self.test_data)

    @abstractmethod
    def submit_batch(self, client: TrainingClientProtocol, data: list[Datum], adam: AdamParams) -> dict[str, Any]:
        """Queue one step's calls; return their futures by name (``optim``: the optim_step's)."""

    @abstractmethod
    def step_metrics(self, data: list[Datum], results: dict[str, Any]) -> dict[str, Any]:
        """Metrics of a finished step from its futures' results."""

    def submit(self, client: TrainingClientProtocol, at: Position, lr: float) -> Callable[[], dict[str, Any]]:
        data = self.train.get_batch(at.batch)
        if at.step == 0 and self.on_first_batch is not None and self.is_main:
            self.on_first_batch(data)
        futures = self.submit_batch(client, data, adam_params(self.cfg, lr))

        def finish() -> dict[str, Any]:
            results = {name: f.result() for name, f in futures.items()}
            m: dict[str, Any] = {"num_tokens": sum(len(d) for d in data), **self.step_metrics(data, results)}
            opt = getattr(results.get("optim"), "metrics", None) or {}
            m.update({f"optim/{k.split(':')[0]}": v for k, v in opt.items() if not k.startswith("learning_rate")})
            return m

        return finish
