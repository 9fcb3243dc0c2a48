"""The loop mirrors metrics.jsonl to the trackers named by --log-with, and a resumed run continues them."""

from __future__ import annotations

import json

import pytest

from posttrain.cli import main
from posttrain.runs.log import read_metrics

RUN = ["train", "sft", "--model", "posttrain:tiny-smollm2", "--lora-rank", "4", "--batch-size", "4",
       "--max-length", "64", "--test-size", "4", "--eval-every", "2", "--save-every", "2", "--lr", "5e-3"]


def _scalars(folder) -> dict[str, dict[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}


def test_tensorboard_mirrors_every_step_and_resume_continues_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*RUN, "--max-steps", "2", "--out", str(out), "--log-with", "tensorboard"]) == 0
    assert "mean of first / last" not in capsys.readouterr().out  # two steps: a window of one, values as they are
    # the same run, longer: resume from its final checkpoint is refused, so start a longer one and resume it
    longer = tmp_path / "longer"
    assert main([*RUN, "--max-steps", "4", "--out", str(longer)]) == 0  # no tracker at first
    assert main([*RUN, "--max-steps", "4", "--out", str(longer), "--log-with", "tensorboard", "--resume"]) == 0
    rows = read_metrics(longer / "metrics.jsonl")
    scalars = _scalars(longer / "tensorboard")
    # replayed, each step once (TensorBoard keeps float32)
    assert scalars["train_mean_nll"] == pytest.approx({r["step"]: r["train_mean_nll"] for r in rows}, rel=1e-6)
    final = [json.loads(line) for line in (longer / "checkpoints.jsonl").read_text().splitlines()][-1]
    assert scalars["test/nll"][4] == pytest.approx(final["eval"]["test/nll"], rel=1e-6)  # the final evaluation too
    assert set(_scalars(out / "tensorboard")["train_mean_nll"]) == {0, 1}
