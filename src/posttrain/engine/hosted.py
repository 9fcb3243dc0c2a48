"""The hosted Tinker service through the real ``tinker`` SDK, behind the same calls as the local engine.

Training loops take a :class:`Backend`: its ``service`` is either our :class:`ServiceClient` or
``tinker.ServiceClient``, and its converters turn posttrain datums and parameters into what that
service takes. :data:`SDK_METHODS` lists every client method the loops call; a test checks each exists
in the installed SDK with compatible parameter names.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
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


def local_backend(**kwargs: Any) -> Backend:
    from posttrain.engine.service import ServiceClient

    return Backend(ServiceClient(**kwargs), hosted=False)


def hosted_backend(**kwargs: Any) -> Backend:
    return Backend(hosted_service_client(**kwargs), hosted=True)
