"""The local training engine: the ``tinker`` SDK's API on PyTorch, ``transformers`` and ``peft``.

::

    from posttrain.engine import ServiceClient, AdamParams, SamplingParams

    service = ServiceClient()
    training = service.create_lora_training_client("posttrain:smollm2-135m-instruct", rank=32, seed=0)
    fwd = training.forward_backward(datums, "cross_entropy")
    step = training.optim_step(AdamParams(learning_rate=1e-4))
    print(fwd.result().metrics["loss:sum"], step.result().metrics)
    sampler = training.save_weights_and_get_sampling_client()
    out = sampler.sample(prompt, num_samples=4, sampling_params=SamplingParams(max_tokens=64)).result()

Needs the ``train`` extra (torch, peft, safetensors, gguf). Names load on first use, so importing a
torch-free part (``posttrain.engine.hosted``, the SDK types re-exported from :mod:`posttrain.types`)
does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the names are, for type checkers; at run time they load on first use
    from posttrain.engine.futures import EngineFuture
    from posttrain.engine.lora import LoraSettings
    from posttrain.engine.models import SMOLLM2, BaseModel, ModelLoadError, load_base_model
    from posttrain.engine.packing import DatumError
    from posttrain.engine.sampling import SamplingClient
    from posttrain.engine.service import ServiceClient
    from posttrain.engine.training_client import TrainingClient
    from posttrain.types import (
        AdamParams,
        Datum,
        EncodedTextChunk,
        ForwardBackwardOutput,
        ModelInput,
        OptimStepResponse,
        SampledSequence,
        SampleResponse,
        SamplingParams,
        TensorData,
    )

_HOMES = {
    "EngineFuture": "posttrain.engine.futures",
    "LoraSettings": "posttrain.engine.lora",
    "SMOLLM2": "posttrain.engine.models",
    "BaseModel": "posttrain.engine.models",
    "ModelLoadError": "posttrain.engine.models",
    "load_base_model": "posttrain.engine.models",
    "DatumError": "posttrain.engine.packing",
    "SamplingClient": "posttrain.engine.sampling",
    "ServiceClient": "posttrain.engine.service",
    "TrainingClient": "posttrain.engine.training_client",
    **{name: "posttrain.types" for name in (
        "AdamParams", "Datum", "EncodedTextChunk", "ForwardBackwardOutput", "ModelInput", "OptimStepResponse",
        "SampledSequence", "SampleResponse", "SamplingParams", "TensorData")},
}

__all__ = [
    "SMOLLM2", "AdamParams", "BaseModel", "Datum", "DatumError", "EncodedTextChunk", "EngineFuture",
    "ForwardBackwardOutput", "LoraSettings", "ModelInput", "ModelLoadError", "OptimStepResponse", "SampleResponse",
    "SampledSequence", "SamplingClient", "SamplingParams", "ServiceClient", "TensorData", "TrainingClient",
    "load_base_model",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'posttrain.engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value
