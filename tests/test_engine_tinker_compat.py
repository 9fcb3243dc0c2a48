"""The local engine and the installed ``tinker`` SDK expose the same calls, and our types convert.

No network: the SDK's classes are inspected, and its pydantic types are built from ours."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import tinker

from posttrain.datum import Datum
from posttrain.engine import (
    AdamParams,
    ModelInput,
    SamplingClient,
    SamplingParams,
    ServiceClient,
    TrainingClient,
)
from posttrain.engine.hosted import SDK_METHODS, Backend, hosted_backend, to_tinker_model_input
from posttrain.errors import PosttrainError

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
    d = Datum((np.array([1, 2, 3]),), np.array([2, 3, 4]), np.array([0, 1, 1], np.float32))
    t = d.to_tinker()
    assert isinstance(t, tinker.Datum)
    assert t.model_input.to_ints() == [1, 2, 3]
    assert t.loss_fn_inputs["weights"].tolist() == [0.0, 1.0, 1.0]
    rl = Datum((np.array([1, 2]),), np.array([2, 3]), None,
               {"logprobs": np.array([-1.0, -2.0], np.float32), "advantages": np.array([0.0, 1.5], np.float32)})
    assert set(rl.to_tinker().loss_fn_inputs) == {"target_tokens", "logprobs", "advantages"}
    hosted = Backend(service=None, hosted=True)
    adam = hosted.adam(AdamParams(learning_rate=2e-4, grad_clip_norm=1.0))
    assert isinstance(adam, tinker.AdamParams) and adam.learning_rate == 2e-4 and adam.grad_clip_norm == 1.0
    sp = hosted.sampling_params(SamplingParams(max_tokens=5, stop=[2], temperature=0.7))
    assert isinstance(sp, tinker.SamplingParams) and sp.stop == [2] and sp.max_tokens == 5
    assert to_tinker_model_input(ModelInput.from_ints([5, 6])).to_ints() == [5, 6]


def test_sdk_datums_feed_the_local_engine(tmp_path):
    """A loop that builds tinker.Datum objects can train locally as is."""
    from tests.engine_util import TINY, ce_datums

    client = ServiceClient(tmp_path, device="cpu").create_lora_training_client(TINY, rank=4, seed=0)
    ours = ce_datums()
    a = client.forward(ours, "cross_entropy").result()
    b = client.forward([d.to_tinker() for d in ours], "cross_entropy").result()
    assert a.metrics == b.metrics
    assert client.optim_step(tinker.AdamParams(learning_rate=1e-3)).result().metrics["learning_rate:mean"] == 1e-3


def test_hosted_backend_needs_a_key(monkeypatch):
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    with pytest.raises(PosttrainError, match="needs TINKER_API_KEY"):
        hosted_backend()
