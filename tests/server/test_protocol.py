"""The wire conversions on their own: what the SDK's own encoder writes decodes to the same datums, and
what the server writes the SDK's own decoder reads back to the same values (no server process)."""

from __future__ import annotations

import numpy as np
import pytest
import zstandard
from tinker import types
from tinker.proto.request_conv import forward_backward_request_to_proto
from tinker.proto.response_conv import deserialize_forward_backward_output, deserialize_sample_response

from posttrain.engine import ForwardBackwardOutput, SampledSequence, SampleResponse, TensorData
from posttrain.server.protocol import (
    ApiError,
    decode_forward_backward,
    encode_forward_backward,
    encode_sample,
)


def sdk_body(data: list, loss_fn: str = "cross_entropy", config=None) -> bytes:
    request = types.ForwardBackwardRequest(
        forward_backward_input=types.ForwardBackwardInput(data=data, loss_fn=loss_fn, loss_fn_config=config),
        model_id="m", seq_id=3)
    return forward_backward_request_to_proto(request).SerializeToString()


def test_the_sdks_request_decodes_to_the_same_datums_compressed_or_not():
    tokens = np.arange(10, 20)
    weights = np.linspace(0, 1, 9).astype(np.float32)
    datum = types.Datum(model_input=types.ModelInput.from_ints(tokens[:-1].tolist()),
                        loss_fn_inputs={"target_tokens": tokens[1:], "weights": weights})
    body = sdk_body([datum], "ppo", {"clip_low_threshold": 0.7})
    for raw, encoding in ((body, None), (zstandard.ZstdCompressor().compress(body), "zstd")):
        got = decode_forward_backward(raw, encoding)
        assert (got.model_id, got.seq_id, got.loss_fn, got.forward_only) == ("m", 3, "ppo", False)
        assert got.loss_fn_config == {"clip_low_threshold": pytest.approx(0.7)}
        (d,) = got.datums
        np.testing.assert_array_equal(d.input_tokens, tokens[:-1])
        np.testing.assert_array_equal(d.target_tokens, tokens[1:])
        np.testing.assert_array_equal(d.weights, weights)


def test_a_sparse_loss_input_is_expanded():
    dense = np.zeros((4, 3), np.float32)
    dense[1, 2], dense[3, 0] = 2.5, -1.0
    sparse = types.TensorData(data=[2.5, -1.0], dtype="float32", shape=[4, 3], sparse_crow_indices=[0, 0, 1, 1, 2],
                              sparse_col_indices=[2, 0])
    datum = types.Datum(model_input=types.ModelInput.from_ints(list(range(12))),
                        loss_fn_inputs={"target_tokens": np.arange(1, 13), "advantages": sparse})
    (d,) = decode_forward_backward(sdk_body([datum]), None).datums
    np.testing.assert_array_equal(d.extra["advantages"], dense.reshape(-1))


def test_garbage_is_a_400_naming_the_problem():
    with pytest.raises(ApiError, match="not a ForwardBackwardRequest protobuf") as err:
        decode_forward_backward(b"\x0a\xff\xff\xff", None)
    assert err.value.status == 400
    with pytest.raises(ApiError, match="unsupported Content-Encoding 'br'"):
        decode_forward_backward(b"", "br")


def test_the_sdk_reads_back_what_the_server_writes():
    lps = [np.array([-1.5, -0.25], np.float32), np.array([-3.0], np.float32)]
    out = ForwardBackwardOutput("cross_entropy", [{"logprobs": TensorData.from_numpy(a)} for a in lps],
                                {"loss:sum": 4.75})
    back = deserialize_forward_backward_output(encode_forward_backward(out))
    assert back.metrics == {"loss:sum": 4.75} and back.loss_fn_output_type == "cross_entropy"
    for got, want in zip(back.loss_fn_outputs, lps, strict=True):
        np.testing.assert_array_equal(got["logprobs"].to_numpy(), want)
    sample = SampleResponse([SampledSequence("stop", [5, 9], [-0.5, -1.25]), SampledSequence("length", [7], [-2.0])],
                            [None, -4.5, -0.75])
    read = deserialize_sample_response(encode_sample(sample))
    assert [(s.stop_reason, s.tokens, s.logprobs) for s in read.sequences] == \
        [("stop", [5, 9], [-0.5, -1.25]), ("length", [7], [-2.0])]
    assert read.prompt_logprobs == [None, -4.5, -0.75]
