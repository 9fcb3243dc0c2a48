"""``posttrain train`` from the command line, and the learning-rate schedules against their formulas."""

from __future__ import annotations

import json
import math

import pytest

from posttrain.cli import main
from posttrain.default_data import default_dataset_path
from posttrain.errors import PosttrainError
from posttrain.runs.schedule import lr_multiplier


@pytest.mark.parametrize(("schedule", "formula"), [
    ("linear", lambda s, t: 1 - s / t),
    ("cosine", lambda s, t: 0.5 * (1 + math.cos(math.pi * s / t))),
    ("constant", lambda s, t: 1.0),
])
def test_schedules(schedule, formula):
    for step in range(10):
        assert lr_multiplier(schedule, step, 10) == pytest.approx(formula(step, 10))
    # warmup: (s + 1) / w of the scheduled value during the first w steps
    assert lr_multiplier(schedule, 1, 10, warmup_steps=4) == pytest.approx(formula(1, 10) * 2 / 4)
    assert lr_multiplier(schedule, 4, 10, warmup_steps=4) == pytest.approx(formula(4, 10))
    with pytest.raises(PosttrainError, match="unknown learning-rate schedule 'step'"):
        lr_multiplier("step", 0, 10)


def test_train_sft_command(tmp_path, capsys):
    data = tmp_path / "conv.jsonl"
    data.write_text("".join(default_dataset_path().read_text().splitlines(keepends=True)[:12]))
    out = tmp_path / "run"
    code = main(["train", "sft", "--model", "posttrain:tiny-smollm2", "--dataset", str(data), "--test-size", "4",
                 "--batch-size", "4", "--max-length", "96", "--lr", "5e-3", "--lr-schedule", "cosine",
                 "--lora-rank", "4", "--eval-every", "1", "--save-every", "0", "--out", str(out),
                 "--micro-batch-tokens", "100", "--gradient-checkpointing", "on"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "train NLL" in printed and "test NLL" in printed and "plot" in printed  # rich may wrap the paths
    config = json.loads((out / "config.json").read_text())
    assert config["lr_schedule"] == "cosine" and config["batch_size"] == 4 and config["recipe"] == "default"
    assert config["micro_batch_tokens"] == 100 and config["gradient_checkpointing"] is True
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1] and all("test/nll" in r for r in rows)
    assert rows[1]["learning_rate"] == pytest.approx(5e-3 * 0.5 * (1 + math.cos(math.pi / 2)))


def test_train_errors_are_one_line(tmp_path, capsys):
    code = main(["train", "sft", "--model", "posttrain:smollm2-135m-instruct", "--renderer", "llama3",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("posttrain train: error: renderer 'llama3' does not fit model")
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "dpo", "--batch-size", "0"])
    assert exit_info.value.code == 2
    assert "argument --batch-size: must be at least 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "sft", "--lr", "inf"])
    assert "argument --lr: must be a positive finite number, got inf" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "sft", "--gradient-checkpointing", "sometimes"])
    assert "argument --gradient-checkpointing: expected auto, on or off, got 'sometimes'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def _sft(tmp_path, *extra):
    data = tmp_path / "conv.jsonl"
    if not data.exists():
        data.write_text("".join(default_dataset_path().read_text().splitlines(keepends=True)[:12]))
    return ["train", "sft", "--dataset", str(data), "--test-size", "0", "--batch-size", "4", "--max-length", "64",
            "--max-steps", "1", "--eval-every", "0", "--save-every", "0", "--quiet", "--out", str(tmp_path / "run"),
            *extra]


@pytest.mark.parametrize(("extra", "message"), [
    (["--renderer", "nope"], "unknown renderer 'nope'; known renderers: deepseekv3,"),
    (["--model", "someorg/not-a-model"], "no recommended renderer for model 'someorg/not-a-model'"),
    (["--model", "someorg/not-a-model", "--renderer", "llama3"], "could not load tokenizer 'someorg/not-a-model'"),
    (["--model", "posttrain:tiny-smollm2", "--lora-rank", "100000000"],
     "LoRA rank 100000000 exceeds posttrain:tiny-smollm2's hidden size 64"),
    (["--model", "posttrain:tiny-smollm2", "--out", "/proc/none/run"], "cannot create the run folder /proc/none/run"),
])
def test_ordinary_mistakes_are_one_line_errors(extra, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no network here: an unknown hub id must fail cleanly
    assert main(_sft(tmp_path, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_a_run_the_engine_refused_can_be_rerun_with_corrected_settings(tmp_path, capsys):
    data = tmp_path / "long.jsonl"
    long_reply = " ".join(f"word{i}" for i in range(2500))  # past tiny-smollm2's context of 2048
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                                     {"role": "assistant", "content": long_reply}]}) + "\n"
                            for i in range(4)))
    args = ["train", "sft", "--model", "posttrain:tiny-smollm2", "--dataset", str(data), "--test-size", "0",
            "--batch-size", "2", "--lora-rank", "4", "--max-steps", "1", "--eval-every", "0", "--save-every", "0",
            "--quiet", "--out", str(tmp_path / "run")]
    assert main([*args, "--max-length", "4000"]) == 2
    assert "exceed the model's context length of 2048" in capsys.readouterr().err
    assert main([*args, "--max-length", "512"]) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["max_length"] == 512


def test_a_full_disk_while_checkpointing_is_one_line(tmp_path, capsys, monkeypatch):
    import errno

    from posttrain.engine import checkpoints

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints, "save_tensors", full)
    assert main(_sft(tmp_path, "--model", "posttrain:tiny-smollm2", "--lora-rank", "4", "--max-steps", "2",
                     "--save-every", "1")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "cannot write checkpoint" in err and "No space left on device; nothing was replaced" in err


def test_sft_skip_invalid_leaves_out_and_lists_bad_rows(tmp_path, capsys):
    rows = default_dataset_path().read_text().splitlines(keepends=True)[:10]
    rows.insert(3, "{not json\n")  # file line 4
    rows.insert(6, json.dumps({"messages": [{"role": "user", "content": "only a question"}]}) + "\n")  # line 7
    data = tmp_path / "mixed.jsonl"
    data.write_text("".join(rows))
    args = ["train", "sft", "--model", "posttrain:tiny-smollm2", "--dataset", str(data), "--test-size", "0",
            "--batch-size", "4", "--max-length", "64", "--lora-rank", "4", "--max-steps", "1", "--eval-every", "0",
            "--save-every", "0", "--out", str(tmp_path / "run")]
    assert main(args) == 2
    assert "mixed.jsonl:4: invalid JSON" in capsys.readouterr().err
    assert main([*args, "--skip-invalid"]) == 0
    assert "2 skipped as invalid" in capsys.readouterr().out
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())
    assert sum(report["skipped"].values()) == 2 and report["train_rows"] == 10
    assert any("mixed.jsonl:4: invalid JSON" in r for r in report["rows"])
    assert any("mixed.jsonl:7:" in r for r in report["rows"])
