"""The parameters and responses of the client calls, named and shaped as in the ``tinker`` SDK
(``tinker.types``), so code written against one reads the same against the other. Torch-free."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from posttrain.types.payload import TensorData

LossFnType = Literal["cross_entropy", "importance_sampling", "ppo", "cispo", "dro", "gspo"]
StopReason = Literal["stop", "length"]


@dataclass(frozen=True)
class AdamParams:
    """AdamW step parameters. ``weight_decay`` is decoupled (AdamW); ``grad_clip_norm`` 0 means no
    clipping. Defaults are the SDK's."""

    learning_rate: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-12
    weight_decay: float = 0.0
    grad_clip_norm: float = 0.0


@dataclass(frozen=True)
class SamplingParams:
    """``stop``: strings or token ids; sampling ends after the first one produced (it is kept).
    ``max_tokens`` None: until the model's context is full. ``top_k`` -1 and ``top_p`` 1 are off."""

    max_tokens: int | None = None
    seed: int | None = None
    stop: str | Sequence[str] | Sequence[int] | None = None
    temperature: float = 1.0
    top_k: int = -1
    top_p: float = 1.0


@dataclass
class SampledSequence:
    """One sample: its tokens (the stop token included), the model's log-probability of each sampled
    token at temperature 1 (what ``compute_logprobs`` and ``forward`` give for the same tokens), and
    why it ended."""

    stop_reason: StopReason
    tokens: list[int]
    logprobs: list[float]


@dataclass
class SampleResponse:
    sequences: list[SampledSequence]
    prompt_logprobs: list[float | None] | None = None


@dataclass
class ForwardBackwardOutput:
    """Per datum, ``loss_fn_outputs[i]["logprobs"]`` holds the target tokens' log-probabilities under
    the weights before any update; ``metrics`` use the SDK's ``name:reduction`` keys (``loss:sum``)."""

    loss_fn_output_type: str
    loss_fn_outputs: list[dict[str, TensorData]]
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def loss(self) -> float:
        return self.metrics["loss:sum"]

    def logprobs(self) -> list[np.ndarray]:
        return [out["logprobs"].to_numpy() for out in self.loss_fn_outputs]


@dataclass
class OptimStepResponse:
    metrics: dict[str, float] | None = None


@dataclass(frozen=True)
class SaveWeightsResponse:
    path: str
    type: str = "save_weights"


@dataclass(frozen=True)
class SaveWeightsForSamplerResponse:
    path: str
    type: str = "save_weights_for_sampler"


@dataclass(frozen=True)
class LoadWeightsResponse:
    path: str | None = None
    model_id: str | None = None
    type: str = "load_weights"


@dataclass(frozen=True)
class GetInfoResponse:
    model_id: str
    base_model: str
    lora_rank: int | None
    num_parameters: int
    num_trainable_parameters: int
    device: str
    dtype: str
    max_context_length: int
