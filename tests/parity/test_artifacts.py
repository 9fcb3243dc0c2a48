"""Parity artifacts: canonical JSON and hashes another language can reproduce, deterministic files,
and reading errors that name the file and the field."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from posttrain import PosttrainError, datum_from_tokens_weights
from posttrain.parity.artifacts import canonical_json, content_hash, hash_hex, read_run, write_run
from posttrain.parity.diff import diff_runs

MESSAGES = [{"role": "user", "content": "“hi” naïve\n\t\x01"}, {"role": "assistant", "content": "ok 😀"}]


def _write(run: Path, config: dict | None = None) -> Path:
    datums = [datum_from_tokens_weights([1, 2, 3, 4], [0.0, 0.0, 1.0, 1.0]),
              datum_from_tokens_weights([1, 5, 6], [0.0, 1.0, 1.0])]
    return write_run(run, config=config or {"renderer": "llama3", "seed": 0}, total_count=10,
                     snapshot=[(7, MESSAGES)], rendered=[([1, 2, 3, 4], [0.0, 0.0, 1.0, 1.0], "abcd")],
                     batch_size=2, datums=datums)


def test_canonical_json_is_the_documented_byte_form():
    # Written out by hand from the documented rules: sorted keys, compact, literal UTF-8,
    # control characters escaped, integral floats as integers.
    expected = ('[{"content":"“hi” naïve\\n\\t\\u0001","role":"user"},{"content":"ok 😀","role":"assistant"}]'
                ).encode()
    assert canonical_json(MESSAGES) == expected
    assert canonical_json({"b": [1.0, 0.5, 0.0], "a": 2}) == b'{"a":2,"b":[1,0.5,0]}'
    assert content_hash(MESSAGES) == "sha256:" + hashlib.sha256(expected).hexdigest()
    assert hash_hex(content_hash(MESSAGES)) == hash_hex(hashlib.sha256(expected).hexdigest())


def test_write_run_layout_and_fields(tmp_path):
    run = _write(tmp_path / "run")
    snap = json.loads((run / "parity" / "dataset_snapshot.json").read_text(encoding="utf-8"))
    assert snap == {"total_count": 10, "n_snapshot": 1,
                    "samples": [{"index": 7, "content_hash": content_hash(MESSAGES), "messages": MESSAGES}]}
    rendered = json.loads((run / "parity" / "rendered_samples.json").read_text(encoding="utf-8"))
    assert rendered["samples"] == [{"all_tokens": [1, 2, 3, 4], "weights": [0.0, 0.0, 1.0, 1.0], "token_count": 4,
                                    "decoded": "abcd"}]
    batch = json.loads((run / "parity" / "first_batch_payload.json").read_text(encoding="utf-8"))
    assert batch["batch_size"] == 2 and len(batch["datums"]) == 2
    assert batch["datums"][0]["model_input"]["chunks"] == [{"type": "encoded_text", "tokens": [1, 2, 3]}]
    assert batch["datums"][0]["loss_fn_inputs"]["target_tokens"]["data"] == [2, 3, 4]
    assert batch["datums"][0]["loss_fn_inputs"]["weights"]["data"] == [0.0, 1.0, 1.0]
    assert batch["payload_hash"] == content_hash(batch["datums"])
    # Literal UTF-8 in the files, never \u escapes of non-ASCII characters.
    raw = (run / "parity" / "dataset_snapshot.json").read_bytes()
    assert "“hi”".encode() in raw and b"\\u201c" not in raw


def test_rerun_is_byte_identical(tmp_path):
    a, b = _write(tmp_path / "a"), _write(tmp_path / "b")
    for name in ("config.json", "parity/dataset_snapshot.json", "parity/rendered_samples.json",
                 "parity/first_batch_payload.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_read_run_nested_and_flat(tmp_path):
    run = _write(tmp_path / "run")
    nested = read_run(run)
    flat = tmp_path / "flat"
    flat.mkdir()
    for f in [run / "config.json", *(run / "parity").iterdir()]:
        (flat / f.name).write_bytes(f.read_bytes())
    got = read_run(flat)
    assert got.snapshot == nested.snapshot and got.rendered == nested.rendered
    assert got.first_batch == nested.first_batch and got.config == {"renderer": "llama3", "seed": 0}
    assert got.metrics is None and got.raw["dataset_snapshot.json"] == nested.raw["dataset_snapshot.json"]


def _broken(tmp_path: Path, name: str, edit: Callable[[Any], Any], run_name: str | None = None) -> Path:
    """A fresh run (folder ``run_name``, default ``name``) whose ``parity/{name}.json`` went through ``edit``."""
    run = _write(tmp_path / (run_name or name))
    path = run / "parity" / f"{name}.json"
    obj = json.loads(path.read_text(encoding="utf-8"))
    edit(obj)
    path.write_text(json.dumps(obj), encoding="utf-8")
    return run


# Missing or mistyped fields are read errors naming the file and the JSON path (more cases:
# tests/parity/test_values.py::MALFORMED).
@pytest.mark.parametrize("name, edit, message", [
    ("dataset_snapshot", lambda o: o.pop("samples"), r"dataset_snapshot\.json: samples: missing$"),
    ("dataset_snapshot", lambda o: o["samples"][0].pop("messages"),
     r"dataset_snapshot\.json: samples\[0\]\.messages: missing$"),
    ("dataset_snapshot", lambda o: o["samples"][0].update(index="7"),
     r"dataset_snapshot\.json: samples\[0\]\.index: expected an integer or null, got string$"),
    ("rendered_samples", lambda o: o["samples"][0].pop("all_tokens"),
     r"rendered_samples\.json: samples\[0\]\.all_tokens: missing$"),
    ("rendered_samples", lambda o: o["samples"][0]["all_tokens"].__setitem__(2, 3.5),
     r"rendered_samples\.json: samples\[0\]\.all_tokens\[2\]: expected an integer, got number$"),
    ("rendered_samples", lambda o: o["samples"][0]["all_tokens"].__setitem__(1, True),
     r"rendered_samples\.json: samples\[0\]\.all_tokens\[1\]: expected an integer, got boolean$"),
    ("first_batch_payload", lambda o: o["datums"][1]["loss_fn_inputs"].pop("weights"),
     r"first_batch_payload\.json: datums\[1\]\.loss_fn_inputs\.weights: missing$"),
    ("first_batch_payload", lambda o: o["datums"][0]["model_input"]["chunks"][0].pop("tokens"),
     r"first_batch_payload\.json: datums\[0\]\.model_input\.chunks\[0\]\.tokens: missing$"),
])
def test_read_errors_name_file_and_json_path(tmp_path, name, edit, message):
    with pytest.raises(PosttrainError, match=message):
        read_run(_broken(tmp_path, name, edit))


def test_contradicting_values_are_findings_not_read_errors(tmp_path):
    # Well-typed values that disagree with each other are read, then reported by the diff.
    good = _write(tmp_path / "good")
    bad = _broken(tmp_path, "rendered_samples", lambda o: (o["samples"][0]["weights"].pop(),
                                                          o["samples"][0].update(token_count=9)))
    (f,) = diff_runs(read_run(good), read_run(bad)).find("inconsistent_sample")
    assert f.evidence["side"] == "B"
    assert f.evidence["items"][0]["problems"] == ["token_count 9 but all_tokens has 4 tokens",
                                                  "weights has 3 values for 4 tokens"]
    bad = _broken(tmp_path, "first_batch_payload",
                  lambda o: o["datums"][0]["loss_fn_inputs"]["target_tokens"]["data"].pop())
    (f,) = diff_runs(read_run(good), read_run(bad)).find("inconsistent_datum")
    assert f.evidence["items"][0]["problems"][0] == "loss_fn_inputs.target_tokens has 2 values for 3 model_input tokens"


def test_read_errors_for_bad_files(tmp_path):
    with pytest.raises(PosttrainError, match="not a run folder"):
        read_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PosttrainError, match="no config.json or parity artifacts found"):
        read_run(tmp_path / "empty")
    run = _write(tmp_path / "run")
    (run / "parity" / "rendered_samples.json").write_text('{"samples": [\n  {oops}\n]}', encoding="utf-8")
    with pytest.raises(PosttrainError, match=r"rendered_samples\.json:2: invalid JSON: .* at column 4$"):
        read_run(run)
    run = _write(tmp_path / "run2")
    (run / "metrics.jsonl").write_text('{"step": 0}\n{oops\n', encoding="utf-8")
    with pytest.raises(PosttrainError, match=r"metrics\.jsonl:2: invalid JSON: .* at column 2$"):
        read_run(run)


def test_payload_hash_as_bare_hex_or_another_recipe(tmp_path):
    good = _write(tmp_path / "good")
    path = good / "parity" / "first_batch_payload.json"
    datums = json.loads(path.read_text(encoding="utf-8"))["datums"]
    # Written out by hand: the canonical form of these datums (weights 0.0/1.0 as 0/1).
    canonical = (
        '[{"loss_fn_inputs":{"target_tokens":{"data":[2,3,4],"dtype":"int64","shape":[3]},'
        '"weights":{"data":[0,1,1],"dtype":"float32","shape":[3]}},'
        '"model_input":{"chunks":[{"tokens":[1,2,3],"type":"encoded_text"}]}},'
        '{"loss_fn_inputs":{"target_tokens":{"data":[5,6],"dtype":"int64","shape":[2]},'
        '"weights":{"data":[1,1],"dtype":"float32","shape":[2]}},'
        '"model_input":{"chunks":[{"tokens":[1,5],"type":"encoded_text"}]}}]'
    )
    assert canonical_json(datums) == canonical.encode()
    bare = hashlib.sha256(canonical.encode()).hexdigest()

    def with_hash(run_name: str, value: str) -> Path:
        return _broken(tmp_path, "first_batch_payload", lambda o: o.update(payload_hash=value), run_name)

    assert diff_runs(read_run(good), read_run(with_hash("bare", bare))).findings == []
    spaced = hashlib.sha256(json.dumps(datums, sort_keys=True).encode()).hexdigest()
    report = diff_runs(read_run(good), read_run(with_hash("spaced", spaced)))
    (note,) = report.findings
    assert report.match and (note.layer, note.cause, note.severity) == ("first_batch", "serialization_only", "note")
    assert note.evidence["hash_method"] == {"a": "canonical", "b": "ASCII-escaped JSON with spaces"}
