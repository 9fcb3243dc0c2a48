"""The hosted Tinker service through the real ``tinker`` SDK, behind the same calls as the local engine.

Training loops take a :class:`Backend`: its ``service`` is either our :class:`ServiceClient` or
``tinker.ServiceClient``, and its converters turn posttrain datums and parameters into what that
service takes. Loops sample through :meth:`Backend.sampler`, which for the hosted service is a
:class:`HostedSampler` (the engine's batched ``sample_many`` as one ``sample`` request per prompt).
:data:`SDK_METHODS` lists every client method the loops call; a test checks each exists in the
installed SDK with compatible parameter names.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from posttrain.datum import Datum
from posttrain.engine.types import AdamParams, SamplingParams
from posttrain.errors import PosttrainError
from posttrain.payload import ModelInput

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


def hosted_service_client(**kwargs: Any) -> Any:
    """``tinker.ServiceClient``; fails at once, before any work, without ``TINKER_API_KEY``."""
    if not os.environ.get("TINKER_API_KEY"):
        raise PosttrainError("the tinker backend needs TINKER_API_KEY in the environment (an API key from the "
                             "Tinker console); use the local backend to train on this machine")
    try:
        import tinker
    except ImportError as err:
        raise PosttrainError("the tinker backend needs the tinker SDK: pip install 'posttrain[tinker]'") from err
    return tinker.ServiceClient(**kwargs)


def to_tinker_adam(params: AdamParams) -> Any:
    import tinker

    return tinker.AdamParams(**asdict(params))


def to_tinker_sampling_params(params: SamplingParams) -> Any:
    import tinker

    fields = asdict(params)
    if fields["stop"] is not None and not isinstance(fields["stop"], str):
        fields["stop"] = list(fields["stop"])
    return tinker.SamplingParams(**fields)


def to_tinker_model_input(model_input: ModelInput | Sequence[int]) -> Any:
    import tinker

    ints = model_input.to_ints() if isinstance(model_input, ModelInput) else list(model_input)
    return tinker.ModelInput.from_ints(ints)


@dataclass
class Backend:
    """A service plus the conversions its clients need. ``hosted`` is False for the local engine."""

    service: Any
    hosted: bool = False

    def datums(self, datums: Sequence[Datum]) -> list[Any]:
        return [d.to_tinker() for d in datums] if self.hosted else list(datums)

    def adam(self, params: AdamParams) -> Any:
        return to_tinker_adam(params) if self.hosted else params

    def sampling_params(self, params: SamplingParams) -> Any:
        return to_tinker_sampling_params(params) if self.hosted else params

    def model_input(self, tokens: ModelInput | Sequence[int]) -> Any:
        if self.hosted:
            return to_tinker_model_input(tokens)
        return tokens if isinstance(tokens, ModelInput) else ModelInput.from_ints(tokens)

    def sampler(self, client: Any) -> Any:
        """What a ``create_sampling_client``-like call returned, ready for the loops: posttrain prompts
        and parameters in, ``sample_many`` available. The SDK returns a future of the client (using the
        future as the client is deprecated since tinker 0.38); the engine returns the client."""
        result = getattr(client, "result", None)
        client = result() if callable(result) else client
        return HostedSampler(client, self) if self.hosted else client


@dataclass
class HostedSampler:
    """A ``tinker.SamplingClient`` behind the engine's sampling calls. ``sample_many`` sends one
    ``sample`` request per prompt, all in flight at once. Prompt ``i`` gets seed ``seed + i``: the
    engine draws every row of its batch from one generator, while separate requests with the same seed
    would give every member of a group (same prompt) the same completion."""

    client: Any
    backend: Backend

    def sample_many(self, prompts: Sequence[ModelInput | Sequence[int]], num_samples: int,
                    sampling_params: SamplingParams) -> list[Any]:
        seed = sampling_params.seed
        return [self.client.sample(prompt=self.backend.model_input(p), num_samples=num_samples,
                                   sampling_params=self.backend.sampling_params(
                                       sampling_params if seed is None else replace(sampling_params, seed=seed + i)))
                for i, p in enumerate(prompts)]

    def sample(self, prompt: ModelInput | Sequence[int], num_samples: int, sampling_params: SamplingParams) -> Any:
        return self.sample_many([prompt], num_samples, sampling_params)[0]

    def compute_logprobs(self, prompt: ModelInput | Sequence[int]) -> Any:
        return self.client.compute_logprobs(self.backend.model_input(prompt))


def local_backend(**kwargs: Any) -> Backend:
    from posttrain.engine.service import ServiceClient

    return Backend(ServiceClient(**kwargs), hosted=False)


def hosted_backend(**kwargs: Any) -> Backend:
    return Backend(hosted_service_client(**kwargs), hosted=True)
