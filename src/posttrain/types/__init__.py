"""The tinker SDK's types, spelled as the SDK spells them, and the client protocols. Torch-free.

::

    from posttrain.types import Datum, ModelInput, TensorData, AdamParams

    datum = Datum(model_input=ModelInput.from_ints(tokens[:-1]),
                  loss_fn_inputs={"target_tokens": tokens[1:], "weights": weights[1:]})

Code written against ``tinker.types`` reads the same against these; the training loops are typed
against :mod:`posttrain.types.clients`' protocols, which the local engine, the hosted SDK (through
:mod:`posttrain.engine.hosted`) and any Tinker-compatible server satisfy.
"""

from posttrain.types.api import (
    AdamParams,
    ForwardBackwardOutput,
    GetInfoResponse,
    LoadWeightsResponse,
    LossFnType,
    OptimStepResponse,
    SampledSequence,
    SampleResponse,
    SamplingParams,
    SaveWeightsForSamplerResponse,
    SaveWeightsResponse,
    StopReason,
)
from posttrain.types.clients import (
    APIFuture,
    SamplingClientProtocol,
    ServiceClientProtocol,
    TrainingClientProtocol,
)
from posttrain.types.datum import Datum
from posttrain.types.payload import EncodedTextChunk, ModelInput, TensorData, TensorDtype

__all__ = [
    "APIFuture",
    "AdamParams",
    "Datum",
    "EncodedTextChunk",
    "ForwardBackwardOutput",
    "GetInfoResponse",
    "LoadWeightsResponse",
    "LossFnType",
    "ModelInput",
    "OptimStepResponse",
    "SampleResponse",
    "SampledSequence",
    "SamplingClientProtocol",
    "SamplingParams",
    "SaveWeightsForSamplerResponse",
    "SaveWeightsResponse",
    "ServiceClientProtocol",
    "StopReason",
    "TensorData",
    "TensorDtype",
    "TrainingClientProtocol",
]
