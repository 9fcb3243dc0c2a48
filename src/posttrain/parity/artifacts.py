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

from posttrain.errors import PosttrainError
from posttrain.parity.schema import (
    check_config,
    check_first_batch,
    check_metrics_line,
    check_rendered,
    check_snapshot,
)
from posttrain.types import Datum

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
        raise PosttrainError(f"{path}:{err.lineno}: invalid JSON: {err.msg} at column {err.colno}") from err


_CHECKS = {SNAPSHOT: check_snapshot, RENDERED: check_rendered, FIRST_BATCH: check_first_batch}


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    metrics = []
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise PosttrainError(f"{path}: not UTF-8: {err}") from err
    # Split on "\n" only: str.splitlines would also cut at U+2028 inside a JSON string.
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            try:
                value = json.loads(line)
            except json.JSONDecodeError as err:
                raise PosttrainError(f"{path}:{number}: invalid JSON: {err.msg} at column {err.colno}") from err
            metrics.append(check_metrics_line(value, path, number))
    return metrics


def read_run(path: str | Path) -> RunArtifacts:
    """Read a run folder (nested ``parity/`` or flat layout), checking each file's schema.

    Errors name the file and the JSON path (:mod:`posttrain.parity.schema`)."""
    run = Path(path)
    if not run.is_dir():
        raise PosttrainError(f"{run}: not a run folder")
    raw: dict[str, bytes] = {}
    cfg_path = _find(run, CONFIG)
    config = check_config(_load_json(cfg_path, raw), cfg_path) if cfg_path else {}
    parts: dict[str, Any] = {}
    for name, check in _CHECKS.items():
        p = _find(run, name)
        parts[name] = None if p is None else check(_load_json(p, raw), p)
    if all(v is None for v in parts.values()) and cfg_path is None:
        raise PosttrainError(f"{run}: no config.json or parity artifacts found (looked in {run} and {run / 'parity'})")
    m_path = _find(run, METRICS)
    metrics = _read_metrics(m_path) if m_path is not None else None
    return RunArtifacts(run, config, parts[SNAPSHOT], parts[RENDERED], parts[FIRST_BATCH], metrics, raw)
