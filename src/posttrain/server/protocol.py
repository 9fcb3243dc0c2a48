"""The wire formats the ``tinker`` SDK speaks, converted to and from the engine's types.

``forward_backward`` requests arrive as the SDK's public protobuf (``tinker.proto.tinker_public_pb2``),
optionally zstd-compressed; ``ForwardBackwardOutput`` and ``SampleResponse`` results go back in the same
protobuf, because the SDK accepts them in no other form. Everything else is JSON in the shape of the
SDK's pydantic request and response types, which parse and build it here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from tinker.proto import tinker_public_pb2 as pb

from posttrain.engine import Datum, ForwardBackwardOutput, SampleResponse
from posttrain.errors import PosttrainError

PROTOBUF = "application/x-protobuf"
_DTYPES = {pb.DTYPE_FLOAT32: np.float32, pb.DTYPE_INT64: np.int64, pb.DTYPE_INT32: np.int32}
_STOP = {"stop": pb.STOP_REASON_STOP, "length": pb.STOP_REASON_LENGTH}
MAX_DECOMPRESSED = 1 << 30  # a request body may expand to 1 GiB, no more


class ApiError(PosttrainError):
    """A request the server refuses: ``status`` is the HTTP status, the message says why (one line)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class FwdBwdRequest:
    """A decoded ``/api/v1/forward_backward`` body: one chunk of one call."""

    def __init__(self, msg: Any):
        self.model_id: str = msg.model_id
        self.seq_id: int = int(msg.seq_id)
        self.loss_fn: str = msg.loss_fn
        self.forward_only: bool = bool(msg.forward_only)
        self.loss_fn_config = _loss_config(msg)
        self.datums = [_datum(d, i) for i, d in enumerate(msg.data)]


def decode_forward_backward(body: bytes, encoding: str | None) -> FwdBwdRequest:
    if encoding == "zstd":
        body = _unzstd(body)
    elif encoding not in (None, "", "identity"):
        raise ApiError(415, f"forward_backward: unsupported Content-Encoding {encoding!r} (zstd or none)")
    msg = pb.ForwardBackwardRequest()
    try:
        msg.ParseFromString(body)
    except Exception as err:  # protobuf raises DecodeError and others for garbage
        raise ApiError(400, f"forward_backward: the body is not a ForwardBackwardRequest protobuf ({err})") from err
    if not msg.model_id:
        raise ApiError(400, "forward_backward: the request names no model_id")
    return FwdBwdRequest(msg)


def _unzstd(body: bytes) -> bytes:
    import zstandard

    try:
        return zstandard.ZstdDecompressor().decompress(body, max_output_size=MAX_DECOMPRESSED)
    except zstandard.ZstdError as err:
        raise ApiError(400, f"forward_backward: the zstd body cannot be decompressed ({err})") from err


def _loss_config(msg: Any) -> dict[str, float] | None:
    config: dict[str, float] = {}
    for key, value in msg.loss_fn_config_v2.items():
        if value.WhichOneof("value") == "text":
            raise ApiError(400, f"loss_fn_config[{key!r}]: text values are not supported, give a number")
        config[key] = float(value.number)
    for key, number in msg.loss_fn_config.items():  # the legacy map, mirrored by the SDK
        config.setdefault(key, float(number))
    return config or None


def _datum(msg: Any, index: int) -> Datum:
    chunks = []
    for chunk in msg.model_input:
        if chunk.WhichOneof("chunk") != "encoded_text":
            raise ApiError(400, f"datum {index}: model_input chunk of type {chunk.WhichOneof('chunk')!r} is not "
                                "supported (text tokens only)")
        chunks.append(np.frombuffer(chunk.encoded_text.tokens, dtype=np.int32).astype(np.int64))
    arrays = {name: _tensor(t, f"datum {index}: loss input {name!r}") for name, t in msg.loss_fn_inputs.items()}
    if "target_tokens" not in arrays:
        raise ApiError(400, f"datum {index}: loss_fn_inputs has no 'target_tokens'")
    targets = arrays.pop("target_tokens").astype(np.int64)
    weights = arrays.pop("weights", None)
    try:
        return Datum.from_arrays(tuple(chunks), targets, None if weights is None else weights.astype(np.float32),
                                 {k: v.astype(np.float32) for k, v in arrays.items()})
    except PosttrainError as err:
        raise ApiError(400, f"datum {index}: {err}") from err


def _tensor(msg: Any, where: str) -> np.ndarray:
    dtype = _DTYPES.get(msg.dtype)
    if dtype is None:
        raise ApiError(400, f"{where}: unsupported tensor dtype {msg.dtype}")
    if msg.HasField("sparse_csr"):
        return _dense_from_csr(msg, dtype, where)
    if len(msg.dense) % np.dtype(dtype).itemsize:
        raise ApiError(400, f"{where}: {len(msg.dense)} bytes is not a whole number of {np.dtype(dtype).name}")
    return np.frombuffer(msg.dense, dtype=dtype).reshape(-1)


def _dense_from_csr(msg: Any, dtype: Any, where: str) -> np.ndarray:
    shape = list(msg.shape)
    if len(shape) != 2:
        raise ApiError(400, f"{where}: a sparse tensor must be 2-D, got shape {shape}")
    values = np.frombuffer(msg.sparse_csr.values, dtype=dtype)
    crow = np.frombuffer(msg.sparse_csr.crow_indices, dtype=np.int64)
    cols = np.frombuffer(msg.sparse_csr.col_indices, dtype=np.int64)
    if len(crow) != shape[0] + 1 or len(cols) != len(values) or (len(cols) and cols.max() >= shape[1]):
        raise ApiError(400, f"{where}: inconsistent sparse CSR indices for shape {shape}")
    dense = np.zeros(shape, dtype=dtype)
    rows = np.repeat(np.arange(shape[0]), np.diff(crow))
    dense[rows, cols] = values
    return dense.reshape(-1)


# -- results --------------------------------------------------------------------------------------
def _batched(arrays: Sequence[np.ndarray], dtype: Any) -> Any:
    sizes = np.cumsum([0, *(a.nbytes for a in arrays)], dtype=np.int64)
    return pb.BatchedTensor(data=b"".join(a.tobytes() for a in arrays), offsets=sizes.tobytes(), dtype=dtype)


def encode_forward_backward(out: ForwardBackwardOutput) -> bytes:
    """The engine's output as the SDK's ``ForwardBackwardOutput`` protobuf (one record per call)."""
    msg = pb.ForwardBackwardOutput(loss_fn_output_type=out.loss_fn_output_type)
    for key, value in out.metrics.items():
        msg.metrics[key] = float(value)
    record = msg.loss_fn_outputs.add(num_datums=len(out.loss_fn_outputs))
    names = out.loss_fn_outputs[0].keys() if out.loss_fn_outputs else ()
    for name in names:
        arrays = [np.ascontiguousarray(o[name].to_numpy().reshape(-1), dtype=np.float32) for o in out.loss_fn_outputs]
        record.fields[name].CopyFrom(_batched(arrays, pb.DTYPE_FLOAT32))
    return msg.SerializeToString()


def encode_sample(out: SampleResponse) -> bytes:
    msg = pb.SampleResponse()
    for seq in out.sequences:
        msg.sequences.add(stop_reason=_STOP[seq.stop_reason], tokens=np.asarray(seq.tokens, np.int32).tobytes(),
                          logprobs=np.asarray(seq.logprobs, np.float32).tobytes())
    if out.prompt_logprobs is not None:
        values = [np.nan if v is None else v for v in out.prompt_logprobs]
        msg.prompt_logprobs = np.asarray(values, np.float32).tobytes()
    return msg.SerializeToString()
