from __future__ import annotations

import json

import numpy as np
import pytest

from posttrain import Datum, PosttrainError, datum_from_tokens_weights


def test_shift_and_alignment():
    d = datum_from_tokens_weights([10, 11, 12, 13], [0, 0, 1, 1])
    assert d.input_tokens.tolist() == [10, 11, 12]
    assert d.target_tokens.tolist() == [11, 12, 13]
    assert d.weights.tolist() == [0.0, 1.0, 1.0]  # weight of each target
    assert d.input_tokens.dtype == np.int64 and d.weights.dtype == np.float32


def test_truncation_keeps_the_start():
    d = datum_from_tokens_weights(list(range(10)), [1.0] * 10, max_length=4)
    assert d.input_tokens.tolist() == [0, 1, 2] and d.target_tokens.tolist() == [1, 2, 3]


def test_json_payload_shape_and_round_trip():
    d = datum_from_tokens_weights([1, 2, 3], [0, 1, 1])
    obj = d.to_json()
    assert obj == {
        "model_input": {"chunks": [{"type": "encoded_text", "tokens": [1, 2]}]},
        "loss_fn_inputs": {
            "target_tokens": {"data": [2, 3], "dtype": "int64", "shape": [2]},
            "weights": {"data": [1.0, 1.0], "dtype": "float32", "shape": [2]},
        },
    }
    assert Datum.from_json(json.loads(json.dumps(obj))) == d


@pytest.mark.parametrize(
    ("tokens", "weights", "max_length", "pattern"),
    [
        ([1], [1], None, "at least 2 tokens"),
        ([1, 2], [1], None, "equal length"),
        ([1, 2, 3], [1, 1, 1], 1, "max_length must be at least 2"),
    ],
)
def test_bad_datum_inputs(tokens, weights, max_length, pattern):
    with pytest.raises(PosttrainError, match=pattern):
        datum_from_tokens_weights(tokens, weights, max_length)


def test_from_json_names_missing_field():
    with pytest.raises(PosttrainError, match="missing 'loss_fn_inputs'"):
        Datum.from_json({"model_input": {"chunks": []}})


def test_to_tinker():
    import tinker  # part of the test extra

    d = datum_from_tokens_weights([5, 6, 7, 8], [0, 0, 1, 1])
    from posttrain.engine.hosted import to_tinker_datum

    td = to_tinker_datum(d)
    assert isinstance(td, tinker.Datum)
    assert td.model_input.to_ints() == [5, 6, 7]
    assert td.loss_fn_inputs["target_tokens"].tolist() == [6, 7, 8]
    assert td.loss_fn_inputs["weights"].tolist() == [0.0, 1.0, 1.0]
