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

Needs the ``train`` extra (torch, peft, safetensors, gguf). Importing this package imports torch.
"""

from posttrain.engine.futures import EngineFuture
from posttrain.engine.lora import LoraSettings
from posttrain.engine.models import SMOLLM2, BaseModel, ModelLoadError, load_base_model
from posttrain.engine.packing import DatumError
from posttrain.engine.sampling import SamplingClient
from posttrain.engine.service import ServiceClient
from posttrain.engine.training_client import TrainingClient
from posttrain.engine.types import (
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

__all__ = [
    "SMOLLM2",
    "AdamParams",
    "BaseModel",
    "Datum",
    "DatumError",
    "EncodedTextChunk",
    "EngineFuture",
    "ForwardBackwardOutput",
    "LoraSettings",
    "ModelInput",
    "ModelLoadError",
    "OptimStepResponse",
    "SampleResponse",
    "SampledSequence",
    "SamplingClient",
    "SamplingParams",
    "ServiceClient",
    "TensorData",
    "TrainingClient",
    "load_base_model",
]
