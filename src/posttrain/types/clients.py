"""What the training loops need of a service and its clients, as ``Protocol``s.

The local engine (:mod:`posttrain.engine`) satisfies them as it is; the hosted ``tinker`` SDK, or any
Tinker-compatible server, through the one adapter in :mod:`posttrain.engine.hosted`, which converts
posttrain's types to the SDK's there and nowhere else. Method names and parameters are the SDK's;
``sample_many`` (many prompts in one call) and ``save_state(..., overwrite=)`` are posttrain's additions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from posttrain.types.api import AdamParams, SamplingParams
from posttrain.types.datum import Datum
from posttrain.types.payload import ModelInput

T_co = TypeVar("T_co", covariant=True)

#: A custom loss: (the datums, each datum's target logprobs as a tensor) → (loss tensor, metrics).
CustomLossFn = Callable[[list[Any], list[Any]], tuple[Any, dict[str, float]]]


@runtime_checkable
class APIFuture(Protocol[T_co]):
    """A call in flight: ``result()`` waits for it and returns its response (or raises its error)."""

    def result(self, timeout: float | None = None) -> T_co: ...


@runtime_checkable
class SamplingClientProtocol(Protocol):
    def sample(self, prompt: ModelInput, num_samples: int, sampling_params: SamplingParams) -> APIFuture[Any]: ...

    def sample_many(self, prompts: Sequence[ModelInput], num_samples: int,
                    sampling_params: SamplingParams) -> Sequence[APIFuture[Any]]: ...

    def compute_logprobs(self, prompt: ModelInput) -> APIFuture[Any]: ...

    def get_tokenizer(self) -> Any: ...


@runtime_checkable
class TrainingClientProtocol(Protocol):
    def forward(self, data: Sequence[Datum], loss_fn: str) -> APIFuture[Any]: ...

    def forward_backward(self, data: Sequence[Datum], loss_fn: str) -> APIFuture[Any]: ...

    def forward_backward_custom(self, data: Sequence[Datum], loss_fn: CustomLossFn) -> APIFuture[Any]: ...

    def optim_step(self, adam_params: AdamParams) -> APIFuture[Any]: ...

    def save_state(self, name: str, ttl_seconds: int | None = None, overwrite: bool = False) -> APIFuture[Any]: ...

    def save_weights_for_sampler(self, name: str) -> APIFuture[Any]: ...

    def save_weights_and_get_sampling_client(self, name: str | None = None) -> SamplingClientProtocol: ...

    def get_tokenizer(self) -> Any: ...


@runtime_checkable
class ServiceClientProtocol(Protocol):
    def create_lora_training_client(self, base_model: str, rank: int = 32,
                                    seed: int | None = None) -> TrainingClientProtocol: ...

    def create_training_client_from_state(self, path: str) -> TrainingClientProtocol: ...

    def create_training_client_from_state_with_optimizer(self, path: str) -> TrainingClientProtocol: ...

    def create_sampling_client(self, model_path: str | None = None,
                               base_model: str | None = None) -> SamplingClientProtocol: ...

    def close(self) -> None:
        """Release the session (the SDK stops its heartbeats); the clients made from it are done."""
