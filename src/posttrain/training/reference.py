"""Log-probabilities under a run's *starting* weights: DPO's reference and RL's KL anchor.

With LoRA on the local engine, the base model with the adapter switched off (no second copy in
memory). Otherwise a sampler checkpoint of the starting weights, saved when the run begins and named in
``RUN/reference.json``, so a resumed run keeps the same reference (not the resumed weights).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from posttrain.runs.folder import RunFolder
from posttrain.types import Datum, ModelInput
from posttrain.types.clients import SamplingClientProtocol, ServiceClientProtocol, TrainingClientProtocol

REFERENCE_FILE = "reference.json"


def full_sequence(datum: Datum) -> list[int]:
    """The tokens a datum was cut from: its input plus the last target."""
    return [*datum.input_tokens.tolist(), int(datum.target_tokens[-1])]


def sequence_logprobs(sampler: SamplingClientProtocol, data: list[Datum]) -> list[np.ndarray]:
    """Each datum's target logprobs from a sampler (``compute_logprobs`` of the full sequence)."""
    futures = [sampler.compute_logprobs(ModelInput.from_ints(full_sequence(d))) for d in data]
    return [np.asarray(f.result()[1:], dtype=np.float32) for f in futures]


class Reference:
    def __init__(self, client: Any = None, sampler: Any = None):
        self.client, self.sampler = client, sampler

    @classmethod
    def for_run(cls, client: TrainingClientProtocol, service: ServiceClientProtocol, run: RunFolder, lora_rank: int,
                resumed: bool) -> Reference:
        if lora_rank > 0 and hasattr(client, "compute_base_logprobs"):  # the local engine's LoRA client
            return cls(client=client)
        record = run.path / REFERENCE_FILE
        if resumed:
            path = json.loads(record.read_text())["sampler_path"]
        else:
            path = client.save_weights_for_sampler("reference").result().path
            run.write_json(REFERENCE_FILE, {"sampler_path": path})
        return cls(sampler=service.create_sampling_client(model_path=path))

    def logprobs(self, data: list[Datum]) -> list[np.ndarray]:
        if self.client is not None:
            return self.client.compute_base_logprobs(data).result()
        return sequence_logprobs(self.sampler, data)
