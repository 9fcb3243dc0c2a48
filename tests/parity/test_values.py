"""Issue 12: the diff compares every value, checks each run against itself, and reads malformed
artifacts into one-line errors (file and JSON path), never tracebacks."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from posttrain import to_messages
from posttrain.cli import main
from posttrain.parity.artifacts import content_hash, read_run
from posttrain.parity.schema import ArtifactError
from tests.parity.runs import (
    N_ROWS,
    Faults,
    build_pipeline_run,
    conversation,
    diff,
    reshuffled,
    write_rows,
)


def edited(run: Path, dest: Path, name: str, edit: Callable[[Any], Any], rehash: bool = True) -> Path:
    """A copy of ``run`` whose ``name`` artifact went through ``edit``; payload_hash recomputed (as a port would)."""
    shutil.copytree(run, dest)
    path = next(p for p in (dest / "parity" / name, dest / name) if p.is_file())
    obj = edit(json.loads(path.read_text(encoding="utf-8")))
    if rehash and isinstance(obj, dict) and isinstance(obj.get("datums"), list):
        obj["payload_hash"] = content_hash(obj["datums"])
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return dest


def each_datum(fn: Callable[[dict[str, Any]], None]) -> Callable[[Any], Any]:
    def edit(batch: dict[str, Any]) -> dict[str, Any]:
        for d in batch["datums"]:
            fn(d)
        return batch
    return edit


def _inputs(d: dict[str, Any]) -> list[int]:
    return [t for c in d["model_input"]["chunks"] for t in c["tokens"]]


def _trained_targets(renderer, k: int) -> int:
    """Trained target tokens of the reference's datum k, from the renderer directly."""
    msgs = to_messages(conversation(reshuffled(N_ROWS, 0)[k]))
    return int(sum(renderer.build_supervised_example(msgs).weights[1:]))


def test_weights_scaled_by_half(reference, tmp_path):
    def halve(d: dict[str, Any]) -> None:
        d["loss_fn_inputs"]["weights"]["data"] = [w * 0.5 for w in d["loss_fn_inputs"]["weights"]["data"]]

    bad = edited(reference, tmp_path / "b", "first_batch_payload.json", each_datum(halve))
    report = diff(reference, bad)
    assert not report.match and main(["parity", "diff", str(reference), str(bad)]) == 1
    (f,) = report.find("weight_difference")
    assert (f.evidence["kind"], f.evidence["factor"]) == ("scaled", 0.5)
    assert f.summary.startswith("weights scaled by 0.5 in B in 4 of 4 datums")
    assert report.causes() == ["weight_difference"]
    (cause,) = report.root_causes
    assert (cause.title, cause.stage) == ("Weights differ", "datum building") and "without scaling" in cause.fix


@pytest.mark.parametrize("in_config", [True, False])
def test_weights_normalised_per_datum(reference, rows_file, renderer, tmp_path, in_config):
    a = reference if in_config else build_pipeline_run(tmp_path / "a", rows_file, renderer, Faults(write_reduction=False))
    b = build_pipeline_run(tmp_path / "b", rows_file, renderer, Faults(reduction="mean", write_reduction=in_config))
    report = diff(a, b)
    (f,) = report.find("weight_difference")
    assert f.evidence["kind"] == "normalised_b"
    assert "weights normalised per datum (sum 1) vs 0/1 (normalised in B) in 4 of 4 datums" in f.summary
    assert [item["sum_a"] for item in f.evidence["items"]] == [_trained_targets(renderer, k) for k in range(4)]
    assert [item["sum_b"] for item in f.evidence["items"]] == [1.0] * 4
    (cause,) = [r for r in report.root_causes if r.title == "Weights differ"]
    if in_config:
        assert report.find("config_difference")[0].evidence["fields"] == {"reduction": ["none", "mean"]}
        assert "config reduction 'none' vs 'mean' is the cause" in f.summary
        assert cause.fix == "use reduction 'none' in run B"
        assert [r.title for r in report.root_causes] == ["Weights differ"]  # the config difference is this one
    else:
        assert f.evidence["config_cause"] is False and "reduction" not in f.summary


def test_targets_not_shifted(reference, tmp_path):
    def unshift(d: dict[str, Any]) -> None:
        d["loss_fn_inputs"]["target_tokens"]["data"] = _inputs(d)

    report = diff(reference, edited(reference, tmp_path / "b", "first_batch_payload.json", each_datum(unshift)))
    (f,) = report.find("targets_not_shifted")
    assert f.evidence["side"] == "B" and [i["index"] for i in f.evidence["items"]] == [0, 1, 2, 3]
    assert "run B: 4 datum(s) contradict themselves" in f.summary
    assert "targets not shifted: target[i] == input[i]" in f.summary
    assert report.causes() == ["targets_not_shifted"]  # the inputs are equal: nothing else differs
    assert report.root_causes[0].fix == "build datums as input = tokens[:-1], target_tokens = tokens[1:]"


def test_target_that_does_not_follow_the_input(reference, tmp_path):
    def bump(batch: dict[str, Any]) -> dict[str, Any]:
        batch["datums"][1]["loss_fn_inputs"]["target_tokens"]["data"][5] += 1
        return batch

    report = diff(reference, edited(reference, tmp_path / "b", "first_batch_payload.json", bump))
    (f,) = report.find("inconsistent_datum")
    (item,) = f.evidence["items"]
    inputs = _inputs(json.loads((reference / "parity" / "first_batch_payload.json").read_text())["datums"][1])
    assert item["index"] == 1
    assert item["problems"] == [f"targets do not follow the inputs: target[5] = {inputs[6] + 1} but input[6] = {inputs[6]}"]


def test_loss_fn_inputs_disagree_with_model_input(reference, tmp_path):
    def break_two(batch: dict[str, Any]) -> dict[str, Any]:
        lfi = batch["datums"][2]["loss_fn_inputs"]
        lfi["weights"]["shape"] = [lfi["weights"]["shape"][0] + 1]
        batch["datums"][3]["loss_fn_inputs"]["target_tokens"]["data"].pop()
        return batch

    report = diff(reference, edited(reference, tmp_path / "b", "first_batch_payload.json", break_two))
    (f,) = report.find("inconsistent_datum")
    batch = json.loads((reference / "parity" / "first_batch_payload.json").read_text())
    n2, n3 = len(_inputs(batch["datums"][2])), len(_inputs(batch["datums"][3]))
    assert [(i["index"], i["problems"]) for i in f.evidence["items"]] == [
        (2, [f"loss_fn_inputs.weights.shape is [{n2 + 1}] but data has {n2} values"]),
        (3, [f"loss_fn_inputs.target_tokens has {n3 - 1} values for {n3} model_input tokens",
             f"loss_fn_inputs.target_tokens.shape is [{n3}] but data has {n3 - 1} values"]),
    ]
    assert not report.match


def test_token_count_that_disagrees_with_all_tokens(reference, tmp_path):
    def miscount(rendered: dict[str, Any]) -> dict[str, Any]:
        rendered["samples"][3]["token_count"] += 1
        return rendered

    report = diff(reference, edited(reference, tmp_path / "b", "rendered_samples.json", miscount))
    (f,) = report.find("inconsistent_sample")
    n = len(json.loads((reference / "parity" / "rendered_samples.json").read_text())["samples"][3]["all_tokens"])
    assert f.evidence["items"][0]["problems"] == [f"token_count {n + 1} but all_tokens has {n} tokens"]
    assert f.evidence["side"] == "B" and not report.match


def test_duplicate_conversations_match_themselves(renderer, tmp_path):
    rows = write_rows(tmp_path / "dups.jsonl", [conversation(i % 5) for i in range(20)])  # every row 4 times
    run = build_pipeline_run(tmp_path / "a", rows, renderer, Faults())
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    report = diff(run, copy)
    assert report.match and report.findings == []
    assert main(["parity", "diff", str(run), str(copy)]) == 0


def test_timing_metrics_do_not_make_runs_differ(reference, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(reference, a)
    shutil.copytree(reference, b)
    line = '{{"step": {s}, "loss": 2.5, "time": {t}, "step_time": {t}, "time/total": {t}, "tokens_per_sec": {t}}}\n'
    (a / "metrics.jsonl").write_text(line.format(s=0, t=1.5) + line.format(s=1, t=3.0), encoding="utf-8")
    (b / "metrics.jsonl").write_text(line.format(s=0, t=2.25) + line.format(s=1, t=4.0), encoding="utf-8")
    report = diff(a, b)
    assert report.match and report.find("metrics_difference") == []
    (note,) = report.find("timing_difference")
    assert note.evidence["timing_fields"] == ["step_time", "time", "time/total", "tokens_per_sec"]
    assert main(["parity", "diff", str(a), str(b)]) == 0


@pytest.mark.parametrize("key", ["reduction", "train_on_what"])
def test_reduction_and_train_on_what_are_compared(reference, tmp_path, key):
    def change(cfg: dict[str, Any]) -> dict[str, Any]:
        cfg[key] = "mean" if key == "reduction" else "all_messages"
        return cfg

    report = diff(reference, edited(reference, tmp_path / "b", "config.json", change))
    (f,) = report.find("config_difference")
    assert f.data_difference and list(f.evidence["fields"]) == [key]


def _set(path: tuple[Any, ...], value: Any) -> Callable[[Any], Any]:
    def edit(obj: Any) -> Any:
        if not path:
            return value
        target = obj
        for k in path[:-1]:
            target = target[k]
        target[path[-1]] = value
        return obj
    return edit


def _drop(path: tuple[Any, ...]) -> Callable[[Any], Any]:
    def edit(obj: Any) -> Any:
        target = obj
        for k in path[:-1]:
            target = target[k]
        del target[path[-1]]
        return obj
    return edit


MALFORMED = [
    ("rendered_samples.json", _set(("samples",), {}), "samples: expected an array, got object"),
    ("rendered_samples.json", _set(("samples",), "abc"), "samples: expected an array, got string"),
    ("rendered_samples.json", _set(("samples", 0, "all_tokens"), None), "samples[0].all_tokens: expected an array, got null"),
    ("rendered_samples.json", _set(("samples", 1, "all_tokens", 3), "7"),
     "samples[1].all_tokens[3]: expected an integer, got string"),
    ("rendered_samples.json", _set(("samples", 0, "weights"), "1,0"), "samples[0].weights: expected an array, got string"),
    ("dataset_snapshot.json", _set(("samples",), {"0": {}}), "samples: expected an array, got object"),
    ("dataset_snapshot.json", _drop(("samples", 1, "messages")), "samples[1].messages: missing"),
    ("first_batch_payload.json", _drop(("datums", 2, "loss_fn_inputs")), "datums[2].loss_fn_inputs: missing"),
    ("first_batch_payload.json", _set(("datums",), None), "datums: expected an array, got null"),
    ("first_batch_payload.json", _set(("datums", 0, "loss_fn_inputs", "weights", "data"), "0.5"),
     "datums[0].loss_fn_inputs.weights.data: expected an array, got string"),
    ("first_batch_payload.json", _set(("datums", 0, "loss_fn_inputs", "target_tokens", "data"), "abc"),
     "datums[0].loss_fn_inputs.target_tokens.data: expected an array, got string"),
    ("first_batch_payload.json", _set(("datums", 1, "model_input", "chunks", 0, "tokens"), None),
     "datums[1].model_input.chunks[0].tokens: expected an array, got null"),
    ("config.json", _set((), ["llama3"]), "(root): expected an object, got array"),
    ("config.json", _set(("bos_token_id",), "128000"), "bos_token_id: expected an integer or null, got string"),
]


@pytest.mark.parametrize(("name", "edit", "message"), MALFORMED, ids=[m[2].split(":")[0] + "-" + m[0] for m in MALFORMED])
def test_malformed_artifact_is_one_line_error(reference, tmp_path, capsys, name, edit, message):
    bad = edited(reference, tmp_path / "bad", name, edit, rehash=False)
    path = bad / ("config.json" if name == "config.json" else f"parity/{name}")
    with pytest.raises(ArtifactError) as err:
        read_run(bad)
    assert str(err.value) == f"{path}: {message}"
    capsys.readouterr()
    assert main(["parity", "diff", str(reference), str(bad)]) == 2
    out, errors = capsys.readouterr()
    assert out == "" and errors == f"posttrain parity: error: {path}: {message}\n"
