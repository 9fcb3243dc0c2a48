"""The hosted Tinker service — or any server that speaks its protocol — behind the same calls as the local
engine: the one adapter between posttrain's types and the ``tinker`` SDK's.

:class:`HostedServiceClient` wraps a ``tinker.ServiceClient``; its training and sampling clients take
posttrain's :class:`~posttrain.types.Datum`, :class:`~posttrain.types.AdamParams`,
:class:`~posttrain.types.SamplingParams` and :class:`~posttrain.types.ModelInput` and convert them here,
so the loops (typed against :mod:`posttrain.types.clients`) never convert. Responses are the SDK's,
which read the same (``loss_fn_outputs[i]["logprobs"].to_numpy()``, ``.path``, ``.metrics``).
:data:`SDK_METHODS` lists every SDK method the adapter calls; a test checks each exists in the
installed SDK with compatible parameter names.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

from posttrain.errors import PosttrainError
from posttrain.types import AdamParams, Datum, ModelInput, SamplingParams
from posttrain.types.clients import CustomLossFn

SDK_METHODS: dict[str, tuple[str, ...]] = {
    "ServiceClient": ("create_lora_training_client", "create_lora_training_client_async",
                      "create_training_client_from_state", "create_training_client_from_state_with_optimizer",
                      "create_training_client_from_state_with_optimizer_async", "create_sampling_client"),
    "TrainingClient": ("forward", "forward_async", "forward_backward", "forward_backward_async",
                       "forward_backward_custom", "forward_backward_custom_async", "optim_step", "optim_step_async",
                       "save_state", "save_state_async", "load_state", "load_state_with_optimizer",
                       "save_weights_for_sampler", "save_weights_for_sampler_async",
                       "save_weights_and_get_sampling_client", "save_weights_and_get_sampling_client_async",
                       "create_sampling_client", "get_tokenizer"),
    "SamplingClient": ("sample", "sample_async", "compute_logprobs", "compute_logprobs_async", "get_tokenizer"),
}


def _sdk() -> Any:
    try:
        import tinker
    except ImportError as err:
        raise PosttrainError("the tinker backend needs the tinker SDK: pip install 'posttrain[tinker]'") from err
    return tinker


def to_tinker_datum(datum: Datum | Any) -> Any:
    """posttrain's Datum as a ``tinker.Datum``; an SDK datum passes through."""
    if not isinstance(datum, Datum):
        return datum
    tinker = _sdk()
    n = len(datum)
    return tinker.Datum(
        model_input=tinker.ModelInput(chunks=[tinker.types.EncodedTextChunk(tokens=c.tolist())
                                              for c in datum.input_chunks]),
        loss_fn_inputs={k: tinker.TensorData(data=v.tolist(), dtype=v.dtype, shape=[n])
                        for k, v in datum.loss_fn_inputs.items()})


def to_tinker_adam(params: AdamParams | Any) -> Any:
    return _sdk().AdamParams(**asdict(params)) if isinstance(params, AdamParams) else params


def to_tinker_sampling_params(params: SamplingParams | Any) -> Any:
    if not isinstance(params, SamplingParams):
        return params
    fields = asdict(params)
    if fields["stop"] is not None and not isinstance(fields["stop"], str):
        fields["stop"] = list(fields["stop"])
    return _sdk().SamplingParams(**fields)


def to_tinker_model_input(model_input: ModelInput | Sequence[int] | Any) -> Any:
    if isinstance(model_input, ModelInput):
        return _sdk().ModelInput.from_ints(model_input.to_ints())
    if isinstance(model_input, Sequence):
        return _sdk().ModelInput.from_ints([int(t) for t in model_input])
    return model_input


def _client(value: Any) -> Any:
    """The SDK returns clients as a future of the client (using the future as the client is deprecated
    since tinker 0.38); the engine and older SDKs return the client."""
    result = getattr(value, "result", None)
    return result() if callable(result) else value


class HostedSamplingClient:
    """A ``tinker.SamplingClient`` taking posttrain's prompts and parameters. ``sample_many`` sends one
    ``sample`` request per prompt, all in flight at once; prompt ``i`` gets seed ``seed + i``: the engine
    draws every row of its batch from one generator, while separate requests with the same seed would give
    every member of a group (same prompt) the same completion."""

    def __init__(self, sdk_client: Any):
        self.sdk = sdk_client

    def sample(self, prompt: ModelInput | Sequence[int], num_samples: int, sampling_params: SamplingParams) -> Any:
        return self.sdk.sample(prompt=to_tinker_model_input(prompt), num_samples=num_samples,
                               sampling_params=to_tinker_sampling_params(sampling_params))

    def sample_many(self, prompts: Sequence[ModelInput | Sequence[int]], num_samples: int,
                    sampling_params: SamplingParams) -> list[Any]:
        seed = sampling_params.seed
        return [self.sample(p, num_samples, sampling_params if seed is None else replace(sampling_params, seed=seed + i))
                for i, p in enumerate(prompts)]

    def compute_logprobs(self, prompt: ModelInput | Sequence[int]) -> Any:
        return self.sdk.compute_logprobs(to_tinker_model_input(prompt))

    def get_tokenizer(self) -> Any:
        return self.sdk.get_tokenizer()


class HostedTrainingClient:
    """A ``tinker.TrainingClient`` taking posttrain's datums and Adam parameters."""

    def __init__(self, sdk_client: Any):
        self.sdk = sdk_client

    def forward(self, data: Sequence[Datum], loss_fn: str) -> Any:
        return self.sdk.forward([to_tinker_datum(d) for d in data], loss_fn)

    def forward_backward(self, data: Sequence[Datum], loss_fn: str) -> Any:
        return self.sdk.forward_backward([to_tinker_datum(d) for d in data], loss_fn)

    def forward_backward_custom(self, data: Sequence[Datum], loss_fn: CustomLossFn) -> Any:
        return self.sdk.forward_backward_custom([to_tinker_datum(d) for d in data], loss_fn)

    def optim_step(self, adam_params: AdamParams) -> Any:
        return self.sdk.optim_step(to_tinker_adam(adam_params))

    def save_state(self, name: str, ttl_seconds: int | None = None, overwrite: bool = False) -> Any:
        # overwrite is the engine's guard against reusing a name; a service keeps names apart itself
        return self.sdk.save_state(name, ttl_seconds=ttl_seconds) if ttl_seconds else self.sdk.save_state(name)

    def save_weights_for_sampler(self, name: str) -> Any:
        return self.sdk.save_weights_for_sampler(name)

    def save_weights_and_get_sampling_client(self, name: str | None = None) -> HostedSamplingClient:
        return HostedSamplingClient(_client(self.sdk.save_weights_and_get_sampling_client(name)))

    def get_tokenizer(self) -> Any:
        return self.sdk.get_tokenizer()


class HostedServiceClient:
    """A ``tinker.ServiceClient`` whose clients take posttrain's types. LoRA only, as the service."""

    def __init__(self, sdk_service: Any):
        self.sdk = sdk_service

    def create_lora_training_client(self, base_model: str, rank: int = 32, seed: int | None = None) -> Any:
        return HostedTrainingClient(_client(self.sdk.create_lora_training_client(base_model=base_model, rank=rank,
                                                                                 seed=seed)))

    def create_full_finetune_training_client(self, base_model: str, seed: int | None = None) -> Any:
        raise PosttrainError("the tinker service trains LoRA only: --lora-rank must be at least 1")

    def create_training_client_from_state(self, path: str) -> Any:
        return HostedTrainingClient(_client(self.sdk.create_training_client_from_state(path)))

    def create_training_client_from_state_with_optimizer(self, path: str) -> Any:
        return HostedTrainingClient(_client(self.sdk.create_training_client_from_state_with_optimizer(path)))

    def create_sampling_client(self, model_path: str | None = None, base_model: str | None = None) -> Any:
        return HostedSamplingClient(_client(self.sdk.create_sampling_client(model_path=model_path,
                                                                            base_model=base_model)))


    def close(self) -> None:
        """End the session (the SDK stops its heartbeats); a service already gone is left as it is."""
        try:
            self.sdk.close("success").result(timeout=30)
        except Exception as err:  # noqa: BLE001 - the run's results are saved; closing is courtesy
            print(f"posttrain: closing the tinker session: {err}", file=sys.stderr)


def hosted_service_client(base_url: str | None = None, **kwargs: Any) -> HostedServiceClient:
    """The tinker service (or a Tinker-compatible server at ``base_url``) behind posttrain's types; fails at
    once, before any work, without an API key (the SDK reads ``TINKER_API_KEY``)."""
    if not os.environ.get("TINKER_API_KEY") and "api_key" not in kwargs:
        raise PosttrainError("the tinker backend needs TINKER_API_KEY in the environment (an API key from the "
                             "Tinker console, or any tml-… key for a local posttrain serve); use the local backend "
                             "to train on this machine")
    if base_url:
        kwargs["base_url"] = base_url
    return HostedServiceClient(_sdk().ServiceClient(**kwargs))
