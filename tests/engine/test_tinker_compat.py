"""The local engine and the installed ``tinker`` SDK expose the same calls, and our types convert.

No network: the SDK's classes are inspected, and its pydantic types are built from ours."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import tinker

from posttrain.engine import (
    AdamParams,
    ModelInput,
    SamplingClient,
    SamplingParams,
    ServiceClient,
    TrainingClient,
)
from posttrain.engine.hosted import (
    SDK_METHODS,
    HostedServiceClient,
    hosted_service_client,
    to_tinker_adam,
    to_tinker_datum,
    to_tinker_model_input,
    to_tinker_sampling_params,
)
from posttrain.errors import PosttrainError
from posttrain.types import Datum

OURS = {"ServiceClient": ServiceClient, "TrainingClient": TrainingClient, "SamplingClient": SamplingClient}


def _params(fn) -> list[inspect.Parameter]:
    return [p for p in inspect.signature(fn).parameters.values() if p.name != "self" and p.kind not in
            (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)]


@pytest.mark.parametrize(("cls", "method"), [(c, m) for c, ms in SDK_METHODS.items() for m in ms])
def test_method_exists_in_sdk_with_compatible_parameters(cls, method):
    theirs = getattr(getattr(tinker, cls), method)
    ours = getattr(OURS[cls], method)
    assert inspect.iscoroutinefunction(ours) == method.endswith("_async")
    their_params, our_params = _params(theirs), _params(ours)
    their_names = [p.name for p in their_params]
    # Every parameter we take, the SDK takes under the same name; positional ones at the same place.
    for i, p in enumerate(our_params):
        assert p.name in their_names, f"{cls}.{method}: {p.name!r} is not a parameter of the SDK's method"
        if p.default is inspect.Parameter.empty:
            assert their_names[i] == p.name, f"{cls}.{method}: positional {p.name!r} at another place"
    # Every parameter the SDK requires, we take too.
    required = [p.name for p in their_params if p.default is inspect.Parameter.empty]
    assert set(required) <= {p.name for p in our_params}, f"{cls}.{method}: SDK requires {required}"


def test_types_convert_to_the_sdks():
    d = Datum.from_arrays((np.array([1, 2, 3]),), np.array([2, 3, 4]), np.array([0, 1, 1], np.float32))
    t = to_tinker_datum(d)
    assert isinstance(t, tinker.Datum)
    assert t.model_input.to_ints() == [1, 2, 3]
    assert t.loss_fn_inputs["weights"].tolist() == [0.0, 1.0, 1.0]
    rl = Datum.from_arrays((np.array([1, 2]),), np.array([2, 3]), None,
               {"logprobs": np.array([-1.0, -2.0], np.float32), "advantages": np.array([0.0, 1.5], np.float32)})
    assert set(to_tinker_datum(rl).loss_fn_inputs) == {"target_tokens", "logprobs", "advantages"}
    adam = to_tinker_adam(AdamParams(learning_rate=2e-4, grad_clip_norm=1.0))
    assert isinstance(adam, tinker.AdamParams) and adam.learning_rate == 2e-4 and adam.grad_clip_norm == 1.0
    sp = to_tinker_sampling_params(SamplingParams(max_tokens=5, stop=[2], temperature=0.7))
    assert isinstance(sp, tinker.SamplingParams) and sp.stop == [2] and sp.max_tokens == 5
    assert to_tinker_model_input(ModelInput.from_ints([5, 6])).to_ints() == [5, 6]


def test_sdk_datums_feed_the_local_engine(tmp_path):
    """A loop that builds tinker.Datum objects can train locally as is."""
    from tests.engine_util import TINY, ce_datums

    client = ServiceClient(tmp_path, device="cpu").create_lora_training_client(TINY, rank=4, seed=0)
    ours = ce_datums()
    a = client.forward(ours, "cross_entropy").result()
    b = client.forward([to_tinker_datum(d) for d in ours], "cross_entropy").result()
    assert a.metrics == b.metrics
    assert client.optim_step(tinker.AdamParams(learning_rate=1e-3)).result().metrics["learning_rate:mean"] == 1e-3


def test_hosted_backend_needs_a_key(monkeypatch):
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    with pytest.raises(PosttrainError, match="needs TINKER_API_KEY"):
        hosted_service_client()


def test_the_adapter_satisfies_the_client_protocols_and_the_engine_too(tmp_path):
    from posttrain.engine.hosted import HostedSamplingClient, HostedTrainingClient
    from posttrain.types import SamplingClientProtocol, ServiceClientProtocol, TrainingClientProtocol

    assert isinstance(HostedServiceClient(None), ServiceClientProtocol)
    assert isinstance(HostedTrainingClient(None), TrainingClientProtocol)
    assert isinstance(HostedSamplingClient(None), SamplingClientProtocol)
    assert isinstance(ServiceClient(tmp_path), ServiceClientProtocol)
    for cls, proto in ((TrainingClient, TrainingClientProtocol), (SamplingClient, SamplingClientProtocol)):
        missing = [m for m in dir(proto) if not m.startswith("_") and not hasattr(cls, m)]
        assert not missing, f"{cls.__name__} lacks {missing}"


def test_a_tinker_users_datum_trains_on_the_engine_unchanged(tmp_path):
    """Datum(model_input=ModelInput.from_ints(...), loss_fn_inputs={...}) as every tinker user writes it;
    the expected loss is plain PyTorch's cross-entropy over the same model's logits."""
    import torch

    from posttrain.types import Datum, ModelInput, TensorData
    from tests.engine_util import TINY

    tokens = [1, 5, 9, 13, 17, 21, 4]
    weights = [0.0, 0.0, 1.0, 1.0, 1.0, 0.5]
    datum = Datum(model_input=ModelInput.from_ints(tokens[:-1]),
                  loss_fn_inputs={"target_tokens": TensorData.from_numpy(np.array(tokens[1:])),
                                  "weights": np.array(weights, np.float32)})
    client = ServiceClient(tmp_path, device="cpu").create_lora_training_client(TINY, rank=4, seed=0)
    out = client.forward_backward([datum], "cross_entropy").result()
    with torch.no_grad():
        logits = client.model(input_ids=torch.tensor([tokens[:-1]])).logits[0].double()
    nll = torch.nn.functional.cross_entropy(logits, torch.tensor(tokens[1:]), reduction="none")
    expected = float((nll * torch.tensor(weights, dtype=torch.float64)).sum())
    assert abs(out.metrics["loss:sum"] - expected) < 1e-4
    assert client.optim_step(AdamParams(learning_rate=1e-3)).result().metrics["learning_rate:mean"] == 1e-3
