"""Schema checks for run-folder artifacts, so a malformed file ends in one line, never a traceback.

Errors read ``FILE: JSON.PATH: problem``, e.g.
``runs/port/parity/first_batch_payload.json: datums[2].loss_fn_inputs: missing``. Only types and
required fields are checked here; values that are well typed but disagree with each other (a
``token_count`` that is not ``len(all_tokens)``, targets that are not shifted) are findings of the diff.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from posttrain.errors import PosttrainError

ROOT = "(root)"


class ArtifactError(PosttrainError):
    """An artifact that does not have the documented schema."""


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object" if isinstance(value, dict) else type(value).__name__


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)  # JSON true is not a token id


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


class _Checker:
    def __init__(self, file: Path):
        self.file = file

    def fail(self, path: str, problem: str) -> ArtifactError:
        return ArtifactError(f"{self.file}: {path}: {problem}")

    def expect(self, value: Any, path: str, kind: str, ok: bool) -> None:
        if not ok:
            raise self.fail(path, f"expected {kind}, got {_json_type(value)}")

    def obj(self, value: Any, path: str) -> dict[str, Any]:
        self.expect(value, path, "an object", isinstance(value, dict))
        return value

    def arr(self, value: Any, path: str) -> list[Any]:
        self.expect(value, path, "an array", isinstance(value, list))
        return value

    def field(self, obj: dict[str, Any], key: str, path: str) -> Any:
        if key not in obj:
            raise self.fail(_join(path, key), "missing")
        return obj[key]

    def ints(self, value: Any, path: str) -> None:
        for i, x in enumerate(self.arr(value, path)):
            self.expect(x, f"{path}[{i}]", "an integer", _is_int(x))

    def token_ids(self, value: Any, path: str) -> None:
        self.ints(value, path)
        for i, x in enumerate(value):
            if x < 0:
                raise self.fail(f"{path}[{i}]", f"token ids are non-negative, got {x}")

    def nums(self, value: Any, path: str) -> None:
        for i, x in enumerate(self.arr(value, path)):
            self.expect(x, f"{path}[{i}]", "a number", _is_num(x))

    def optional(self, obj: dict[str, Any], key: str, path: str, kind: str) -> None:
        """``kind``: "int", "str" or "ints"; null is accepted for scalars (a port may write it)."""
        if key not in obj:
            return
        v, p = obj[key], _join(path, key)
        if kind == "ints":
            self.ints(v, p)
        elif kind == "int":
            self.expect(v, p, "an integer or null", v is None or _is_int(v))
        else:
            self.expect(v, p, "a string or null", v is None or isinstance(v, str))


def _join(path: str, key: str) -> str:
    return key if path == ROOT else f"{path}.{key}"


def check_config(value: Any, file: Path) -> dict[str, Any]:
    c = _Checker(file)
    obj = c.obj(value, ROOT)
    for key in ("bos_token_id", "max_length", "batch_size"):
        c.optional(obj, key, ROOT, "int")
    return obj


def check_snapshot(value: Any, file: Path) -> dict[str, Any]:
    c = _Checker(file)
    obj = c.obj(value, ROOT)
    c.optional(obj, "total_count", ROOT, "int")
    c.optional(obj, "n_snapshot", ROOT, "int")
    for i, s in enumerate(c.arr(c.field(obj, "samples", ROOT), "samples")):
        p = f"samples[{i}]"
        sample = c.obj(s, p)
        c.arr(c.field(sample, "messages", p), f"{p}.messages")
        c.optional(sample, "index", p, "int")
        c.optional(sample, "content_hash", p, "str")
    return obj


def check_rendered(value: Any, file: Path) -> dict[str, Any]:
    c = _Checker(file)
    obj = c.obj(value, ROOT)
    for i, s in enumerate(c.arr(c.field(obj, "samples", ROOT), "samples")):
        p = f"samples[{i}]"
        sample = c.obj(s, p)
        c.token_ids(c.field(sample, "all_tokens", p), f"{p}.all_tokens")
        c.nums(c.field(sample, "weights", p), f"{p}.weights")
        c.optional(sample, "token_count", p, "int")
        c.optional(sample, "decoded", p, "str")
    return obj


def _check_tensor(c: _Checker, lfi: dict[str, Any], key: str, path: str, integers: bool) -> None:
    p = _join(path, key)
    tensor = c.obj(c.field(lfi, key, path), p)
    data = c.field(tensor, "data", p)
    (c.token_ids if integers else c.nums)(data, f"{p}.data")
    c.optional(tensor, "shape", p, "ints")
    c.optional(tensor, "dtype", p, "str")


def _check_datum(c: _Checker, value: Any, path: str) -> None:
    datum = c.obj(value, path)
    mi = c.obj(c.field(datum, "model_input", path), f"{path}.model_input")
    chunks = c.arr(c.field(mi, "chunks", f"{path}.model_input"), f"{path}.model_input.chunks")
    for j, ch in enumerate(chunks):
        cp = f"{path}.model_input.chunks[{j}]"
        chunk = c.obj(ch, cp)
        if chunk.get("type", "encoded_text") == "encoded_text":  # other chunk types (images) carry no tokens
            c.token_ids(c.field(chunk, "tokens", cp), f"{cp}.tokens")
    lp = f"{path}.loss_fn_inputs"
    lfi = c.obj(c.field(datum, "loss_fn_inputs", path), lp)
    _check_tensor(c, lfi, "target_tokens", lp, integers=True)
    _check_tensor(c, lfi, "weights", lp, integers=False)


def check_first_batch(value: Any, file: Path) -> dict[str, Any]:
    c = _Checker(file)
    obj = c.obj(value, ROOT)
    c.optional(obj, "batch_size", ROOT, "int")
    c.optional(obj, "payload_hash", ROOT, "str")
    for i, d in enumerate(c.arr(c.field(obj, "datums", ROOT), "datums")):
        _check_datum(c, d, f"datums[{i}]")
    return obj


def check_metrics_line(value: Any, file: Path, line: int) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ArtifactError(f"{file}:{line}: expected a JSON object per line, got {_json_type(value)}")
    return value
