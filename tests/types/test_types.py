"""posttrain.types: the SDK's spelling, torch-free."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from posttrain.errors import PosttrainError
from posttrain.types import Datum, ModelInput, TensorData


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize("statement", ["import posttrain.types", "import posttrain.engine.hosted",
                                       "from posttrain.engine import Datum, ModelInput, AdamParams"])
def test_the_types_and_the_hosted_path_load_no_torch(statement):
    loaded = _modules_after(statement)
    assert "torch" not in loaded and "transformers" not in loaded


def test_datum_as_a_tinker_user_builds_it():
    tokens = np.array([5, 6, 7, 8])
    d = Datum(model_input=ModelInput.from_ints(tokens[:-1].tolist()),
              loss_fn_inputs={"target_tokens": TensorData.from_numpy(tokens[1:]), "weights": [0.0, 1.0, 1.0],
                              "advantages": np.array([0.5, -1.0, 2.0])})
    assert d.input_tokens.tolist() == [5, 6, 7] and d.target_tokens.tolist() == [6, 7, 8]
    assert d.weights.dtype == np.float32 and d.weights.tolist() == [0.0, 1.0, 1.0]
    assert d.extra["advantages"].tolist() == [0.5, -1.0, 2.0]
    assert d.model_input.to_ints() == [5, 6, 7]
    assert d == Datum.from_arrays((np.array([5, 6, 7]),), np.array([6, 7, 8]), np.array([0, 1, 1], np.float32),
                                  {"advantages": np.array([0.5, -1.0, 2.0], np.float32)})


def test_datum_needs_target_tokens_and_equal_lengths():
    with pytest.raises(PosttrainError, match="loss_fn_inputs needs 'target_tokens'"):
        Datum(model_input=ModelInput.from_ints([1, 2]), loss_fn_inputs={"weights": [1.0, 1.0]})
    with pytest.raises(PosttrainError, match="datum lengths disagree: input 2, target_tokens 3"):
        Datum(model_input=ModelInput.from_ints([1, 2]), loss_fn_inputs={"target_tokens": [2, 3, 4]})
