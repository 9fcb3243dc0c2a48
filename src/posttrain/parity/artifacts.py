"""Run-folder artifacts: language-neutral JSON that any implementation of the pipeline can emit.

Layout (``posttrain prepare`` writes the nested form; the flat form, files directly in the run
folder, is read too)::

    RUN/config.json
    RUN/metrics.jsonl                    (optional, one JSON object per step)
    RUN/parity/dataset_snapshot.json     {"total_count", "n_snapshot", "samples": [{"index", "content_hash", "messages"}]}
    RUN/parity/rendered_samples.json     {"samples": [{"all_tokens", "weights", "token_count", "decoded"}]}
    RUN/parity/first_batch_payload.json  {"batch_size", "payload_hash", "datums": [tinker payload datum, ...]}

Hashes are ``"sha256:" + hex(sha256(canonical_json(value)))`` (readers also accept the bare hex).
Canonical JSON, chosen so any language can reproduce it byte for byte:

* UTF-8, object keys sorted (by code point), separators ``","`` and ``":"``, no whitespace, no
  trailing newline;
* non-ASCII characters written literally (``“``, never ``\\u201c``); only ``"``, ``\\`` and control
  characters are escaped (``\\n \\r \\t \\b \\f``, others as lower-case ``\\u00xx``);
* numbers: an integral float is written as an integer (``1.0`` → ``1``) because languages disagree
  on how to print it; other floats in shortest round-trip form.

``content_hash`` covers a snapshot sample's ``messages`` list exactly as written; ``payload_hash``
covers the first batch's ``datums`` list. The files themselves are written with sorted keys, literal
UTF-8 and an indent of 1, so a rerun is byte-identical; readers never depend on that formatting.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posttrain.datum import Datum
from posttrain.errors import PosttrainError

SNAPSHOT = "dataset_snapshot.json"
RENDERED = "rendered_samples.json"
FIRST_BATCH = "first_batch_payload.json"
CONFIG = "config.json"
METRICS = "metrics.jsonl"
HASH_PREFIX = "sha256:"


def canonical_json(obj: Any) -> bytes:
    """UTF-8 JSON with sorted keys, literal non-ASCII characters and no whitespace: the bytes hashes cover."""
    return json.dumps(_integral_floats_as_ints(obj), sort_keys=True, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def _integral_floats_as_ints(obj: Any) -> Any:
    if isinstance(obj, float) and obj.is_integer() and abs(obj) < 2**53:
        return int(obj)
    if isinstance(obj, list | tuple):
        return [_integral_floats_as_ints(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _integral_floats_as_ints(v) for k, v in obj.items()}
    return obj


def content_hash(obj: Any) -> str:
    return HASH_PREFIX + hashlib.sha256(canonical_json(obj)).hexdigest()


def hash_hex(value: str) -> str:
    """The hex digest of a stored hash, accepting ``"sha256:<hex>"`` and plain ``<hex>``."""
    return value[len(HASH_PREFIX):] if value.startswith(HASH_PREFIX) else value


def _write_json(path: Path, obj: Any) -> None:
    # Human-readable yet deterministic: sorted keys, UTF-8 literal characters, fixed indentation.
    # Bytes, not text mode: no platform newline translation.
    path.write_bytes((json.dumps(obj, sort_keys=True, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))


def write_run(
    run_dir: str | Path,
    *,
    config: dict[str, Any],
    total_count: int,
    snapshot: Sequence[tuple[int, list[dict[str, Any]]]],
    rendered: Sequence[tuple[Sequence[int], Sequence[float], str]],
    batch_size: int,
    datums: Sequence[Datum],
) -> Path:
    """Write ``config.json`` and ``parity/*.json``. Same inputs give byte-identical files."""
    run = Path(run_dir)
    parity = run / "parity"
    parity.mkdir(parents=True, exist_ok=True)
    _write_json(run / CONFIG, config)
    _write_json(parity / SNAPSHOT, {
        "total_count": total_count,
        "n_snapshot": len(snapshot),
        "samples": [{"index": i, "content_hash": content_hash(m), "messages": m} for i, m in snapshot],
    })
    _write_json(parity / RENDERED, {
        "samples": [
            {"all_tokens": list(t), "weights": [float(x) for x in w], "token_count": len(t), "decoded": d}
            for t, w, d in rendered
        ]
    })
    payload = [d.to_json() for d in datums]
    _write_json(parity / FIRST_BATCH, {"batch_size": batch_size, "payload_hash": content_hash(payload),
                                       "datums": payload})
    return run


@dataclass
class RunArtifacts:
    """A run folder as read back. ``raw`` keeps each file's bytes (for escaping diagnostics)."""

    path: Path
    config: dict[str, Any]
    snapshot: dict[str, Any] | None
    rendered: dict[str, Any] | None
    first_batch: dict[str, Any] | None
    metrics: list[dict[str, Any]] | None
    raw: dict[str, bytes] = field(default_factory=dict)


def _find(run: Path, name: str) -> Path | None:
    for candidate in (run / "parity" / name, run / name):
        if candidate.is_file():
            return candidate
    return None


def _load_json(path: Path, raw: dict[str, bytes]) -> Any:
    data = path.read_bytes()
    raw[path.name] = data
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise PosttrainError(f"{path}: not UTF-8: {err}") from err
    except json.JSONDecodeError as err:
        raise PosttrainError(f"{path}:{err.lineno}: invalid JSON: {err.msg}") from err


_KINDS: dict[str, tuple[type, ...]] = {
    "int": (int,), "str": (str,), "list": (list,), "object": (dict,), "number": (int, float),
}


def _get(obj: Any, key: str, kind: str, path: Path, where: str) -> Any:
    """``obj[key]``, checked; errors read ``FILE: WHERE: missing field 'KEY'``."""
    prefix = f"{path}: {where + ': ' if where else ''}"
    if not isinstance(obj, dict):
        raise PosttrainError(f"{prefix}expected a JSON object, got {type(obj).__name__}")
    if key not in obj:
        raise PosttrainError(f"{prefix}missing field '{key}'")
    value = obj[key]
    # bool is an int in Python but not a count or a token id.
    if not isinstance(value, _KINDS[kind]) or isinstance(value, bool):
        raise PosttrainError(f"{prefix}field '{key}' must be {kind}, got {type(value).__name__}")
    return value


def _check_ints(values: list[Any], path: Path, where: str) -> None:
    bad = next((k for k, v in enumerate(values) if not isinstance(v, int) or isinstance(v, bool)), None)
    if bad is not None:
        raise PosttrainError(f"{path}: {where}[{bad}]: token ids must be integers, got {values[bad]!r}")


def _check_snapshot(obj: Any, path: Path) -> None:
    _get(obj, "total_count", "int", path, "")
    _get(obj, "n_snapshot", "int", path, "")
    for i, s in enumerate(_get(obj, "samples", "list", path, "")):
        where = f"samples[{i}]"
        _get(s, "index", "int", path, where)
        _get(s, "content_hash", "str", path, where)
        _get(s, "messages", "list", path, where)


def _check_rendered(obj: Any, path: Path) -> None:
    for i, s in enumerate(_get(obj, "samples", "list", path, "")):
        where = f"samples[{i}]"
        tokens = _get(s, "all_tokens", "list", path, where)
        _check_ints(tokens, path, f"{where}.all_tokens")
        weights = _get(s, "weights", "list", path, where)
        if len(weights) != len(tokens):
            raise PosttrainError(f"{path}: {where}: {len(weights)} weights for {len(tokens)} all_tokens")
        if "token_count" in s and s["token_count"] != len(tokens):
            raise PosttrainError(f"{path}: {where}: token_count {s['token_count']} but {len(tokens)} all_tokens")
        if s.get("decoded") is not None and not isinstance(s["decoded"], str):
            raise PosttrainError(f"{path}: {where}: field 'decoded' must be str")


def _check_batch(obj: Any, path: Path) -> None:
    _get(obj, "batch_size", "int", path, "")
    for i, d in enumerate(_get(obj, "datums", "list", path, "")):
        where = f"datums[{i}]"
        chunks = _get(_get(d, "model_input", "object", path, where), "chunks", "list", path, f"{where}.model_input")
        n = 0
        for k, c in enumerate(chunks):
            cw = f"{where}.model_input.chunks[{k}]"
            toks = _get(c, "tokens", "list", path, cw)
            _check_ints(toks, path, f"{cw}.tokens")
            n += len(toks)
        lfi = _get(d, "loss_fn_inputs", "object", path, where)
        for name in ("target_tokens", "weights"):
            data = _get(_get(lfi, name, "object", path, f"{where}.loss_fn_inputs"), "data", "list", path,
                        f"{where}.loss_fn_inputs.{name}")
            if len(data) != n:
                raise PosttrainError(f"{path}: {where}: loss_fn_inputs.{name} has {len(data)} values for {n} "
                                     "model_input tokens")


_CHECKS = {SNAPSHOT: _check_snapshot, RENDERED: _check_rendered, FIRST_BATCH: _check_batch}


def read_run(path: str | Path) -> RunArtifacts:
    """Read a run folder (nested ``parity/`` or flat layout); errors name the file and field."""
    run = Path(path)
    if not run.is_dir():
        raise PosttrainError(f"{run}: not a run folder")
    raw: dict[str, bytes] = {}
    cfg_path = _find(run, CONFIG)
    config = _load_json(cfg_path, raw) if cfg_path else {}
    if not isinstance(config, dict):
        raise PosttrainError(f"{cfg_path}: expected a JSON object, got {type(config).__name__}")
    parts: dict[str, Any] = {}
    for name, check in _CHECKS.items():
        p = _find(run, name)
        if p is None:
            parts[name] = None
            continue
        obj = _load_json(p, raw)
        check(obj, p)
        parts[name] = obj
    if all(v is None for v in parts.values()) and cfg_path is None:
        raise PosttrainError(f"{run}: no config.json or parity artifacts found (looked in {run} and {run / 'parity'})")
    metrics = None
    m_path = _find(run, METRICS)
    if m_path is not None:
        metrics = []
        for number, line in enumerate(m_path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise PosttrainError(f"{m_path}:{number}: invalid JSON: {err.msg}") from err
                if not isinstance(row, dict):
                    raise PosttrainError(f"{m_path}:{number}: expected a JSON object per line")
                metrics.append(row)
    return RunArtifacts(run, config, parts[SNAPSHOT], parts[RENDERED], parts[FIRST_BATCH], metrics, raw)
