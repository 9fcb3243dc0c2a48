"""The Loop's edges on a stand-in service (no model): a non-finite final evaluation stops in one line, and a
run recorded with the old dataset name `default` resumes under `posttrain:default`."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from posttrain.errors import NonFiniteError
from posttrain.runs.folder import RunFolder
from posttrain.runs.loop import Loop, LoopConfig


class _Done:
    def __init__(self, value):
        self.value = value

    def result(self, timeout=None):
        return self.value


class _Client:
    def save_state(self, name, ttl_seconds=None, overwrite=False):
        return _Done(SimpleNamespace(path=f"tinker://run/weights/{name}"))

    def save_weights_for_sampler(self, name):
        return _Done(SimpleNamespace(path=f"tinker://run/sampler_weights/{name}"))


class _Service:
    def create_lora_training_client(self, base_model, rank=32, seed=None):
        return _Client()


class _Loop(Loop):
    def batches_per_epoch(self):
        return 2

    def submit(self, client, at, lr):
        return lambda: {"loss": 1.0}

    @property
    def evaluates(self):
        return True

    def evaluate(self, client):
        return {"test/nll": float("nan")}


def test_a_non_finite_final_evaluation_stops_in_one_line(tmp_path):
    run = RunFolder.open(tmp_path / "run", {"recipe": "test"}, resume=False)
    with pytest.raises(NonFiniteError, match=r"^final evaluation: test/nll = nan; no checkpoint was kept$"):
        _Loop(LoopConfig(eval_every=0, save_every=0), _Service(), run).run()
    assert not (tmp_path / "run" / "checkpoints.jsonl").exists()  # nothing non-finite recorded


def test_a_run_recorded_with_the_old_default_name_resumes(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"recipe": "sft", "dataset": "default"}))
    (folder / "metrics.jsonl").write_text(json.dumps({"step": 0}) + "\n")
    RunFolder.open(folder, {"recipe": "sft", "dataset": "posttrain:default"}, resume=True)
    with pytest.raises(Exception, match="started with dataset='posttrain:default', not 'other'"):
        RunFolder.open(folder, {"recipe": "sft", "dataset": "other"}, resume=True)
