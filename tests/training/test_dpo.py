"""The DPO loop and recipe on a tiny model: log 2 at the start, problem pairs screened and reported,
exact resume with the starting weights as reference, the full fine-tune reference path."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from posttrain.errors import PosttrainError
from posttrain.recipes.dpo import dpo_recipe_config, run_dpo
from posttrain.runs.log import read_metrics, without_timings

TINY = "posttrain:tiny-smollm2"


def _pair(i: int, good: str, bad: str, label: str = "A", prompt: str | None = None) -> dict:
    user = [{"role": "user", "content": prompt or f"Question {i}: what is {i} + {i}?"}]
    a, b = ([{"role": "assistant", "content": good}], [{"role": "assistant", "content": bad}])
    if label == "B":
        a, b = b, a
    return {"prompt_conversation": user, "completion_A": a, "completion_B": b, "label": label}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    """30 good pairs (labels mixed) and one of each problem the recipe must screen out."""
    rows = [_pair(i, f"{i} + {i} = {2 * i}.", f"{i} + {i} = {2 * i + 1}.", "AB"[i % 2]) for i in range(30)]
    rows += [
        _pair(100, "Same answer.", "Same answer."),
        _pair(101, "", "Something."),
        {**_pair(102, "Yes.", "No."), "label": "Tie"},
        _pair(103, "Fine.", "Bad.", prompt="word " * 400),  # longer than max_length
    ]
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n")
    return path


def config(pairs: Path, out: Path, **kw):
    base = dict(model_name=TINY, dataset=str(pairs), log_path=str(out), batch_size=4, test_size=6, max_length=128,
                max_steps=4, eval_every=2, save_every=2, learning_rate=2e-2, lora_rank=8, beta=0.5)
    return dpo_recipe_config("default", **{**base, **kw})


def test_start_is_log_2_and_training_moves_the_loss(pairs, tmp_path):
    out = tmp_path / "run"
    result = run_dpo(config(pairs, out))
    rows = read_metrics(out / "metrics.jsonl")
    first = rows[0]
    assert first["dpo_loss"] == pytest.approx(math.log(2), abs=1e-7)
    assert first["accuracy"] == 0.0 and first["margin"] == 0.0
    assert first["chosen_reward"] == 0.0 and first["rejected_reward"] == 0.0
    assert first["test/dpo_loss"] == pytest.approx(math.log(2), abs=1e-7) and first["test/accuracy"] == 0.0
    assert all(r["num_pairs"] == 4 for r in rows)
    assert {"dpo_loss", "accuracy", "margin", "chosen_reward", "rejected_reward", "num_pairs", "num_tokens",
            "learning_rate"} <= set(rows[-1])
    assert rows[-1]["dpo_loss"] < first["dpo_loss"]
    assert result.final_eval["test/dpo_loss"] < math.log(2)
    assert (out / "curves.png").is_file()


def test_problem_pairs_are_counted_and_named(pairs, tmp_path):
    out = tmp_path / "run"
    run_dpo(config(pairs, out, max_steps=1, test_size=0, eval_every=0))
    report = json.loads((out / "data_report.json").read_text())
    assert report["kept"] == 30
    assert report["skipped"] == {"empty completion": 1, "identical": 1, "prompt too long": 1, "tie": 1,
                                 "unreadable": 1}
    text = "\n".join(report["rows"])
    assert "chosen and rejected are the same" in text and "the chosen completion has no assistant text" in text
    assert "max_length is 128" in text and "pairs.jsonl:35" in text  # the unreadable row names its line


def test_truncation_that_leaves_no_trained_token_is_screened(tmp_path):
    long_answer = "This answer is long. " * 60
    rows = [_pair(i, f"Short {i}.", f"Other {i}.") for i in range(8)]
    rows.append(_pair(50, long_answer, "Short.", prompt="word " * 110))  # prompt fits, completion starts past 128
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run_dpo(config(path, tmp_path / "run", max_steps=1, test_size=0, eval_every=0))
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())
    assert report["kept"] == 8 and set(report["skipped"]) <= {"truncated", "prompt too long"}
    assert sum(report["skipped"].values()) == 1


def test_resume_is_exact_and_keeps_the_starting_reference(pairs, tmp_path):
    straight = tmp_path / "straight"
    run_dpo(config(pairs, straight, max_steps=4, save_every=2))
    want = without_timings(read_metrics(straight / "metrics.jsonl"))

    resumed = tmp_path / "resumed"
    run_dpo(config(pairs, resumed, max_steps=4, save_every=2))
    # Simulate a crash after the step-2 checkpoint: drop later records, metrics and checkpoints.
    records = (resumed / "checkpoints.jsonl").read_text().splitlines()
    (resumed / "checkpoints.jsonl").write_text(records[0] + "\n")
    metrics = (resumed / "metrics.jsonl").read_text().splitlines()
    (resumed / "metrics.jsonl").write_text("\n".join(metrics[:3]) + "\n")
    run_dpo(config(pairs, resumed, max_steps=4, save_every=2, resume=True))
    assert without_timings(read_metrics(resumed / "metrics.jsonl")) == want


def test_full_finetune_reference_is_a_saved_snapshot(pairs, tmp_path):
    out = tmp_path / "full"
    run_dpo(config(pairs, out, lora_rank=0, max_steps=2, learning_rate=1e-3, eval_every=0))
    first = read_metrics(out / "metrics.jsonl")[0]
    assert first["dpo_loss"] == pytest.approx(math.log(2), abs=1e-5)  # another packing: float-close, not exact
    reference = json.loads((out / "reference.json").read_text())["sampler_path"]
    assert Path(reference).name == "reference" and (Path(reference) / "config.json").is_file()


def test_bad_settings(pairs, tmp_path):
    with pytest.raises(PosttrainError, match="beta must be a positive finite number"):
        run_dpo(config(pairs, tmp_path / "a", beta=0.0))
    with pytest.raises(PosttrainError, match=r"batch size 64 pairs is larger than the 26 usable training pairs \(26 kept; skipped 1 empty completion, 1 tie, 1 unreadable: .*pairs.jsonl:35: unreadable: invalid JSON.*\); lower --batch-size"):
        run_dpo(config(pairs, tmp_path / "b", batch_size=64))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_bad_row_loses_no_pair_after_it(tmp_path):
    """A missing field, a malformed line and a bad label in the middle of the file: every other pair
    still trains, and each bad row is reported with its line and reason."""
    rows = [json.dumps(_pair(i, f"Right {i}.", f"Wrong {i}.")) for i in range(16)]
    broken = _pair(3, "x", "y")
    del broken["completion_B"]
    rows[3] = json.dumps(broken)
    rows[7] = "{not json"
    rows[11] = json.dumps({**_pair(11, "x", "y"), "label": "a"})
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(rows) + "\n")
    run_dpo(config(path, tmp_path / "run", max_steps=1, test_size=0, eval_every=0, batch_size=13))
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())
    assert report["kept"] == 13 and report["skipped"] == {"unreadable": 3}
    by_line = {r.split(": unreadable")[0].rsplit(":", 1)[1]: r for r in report["rows"]}
    assert set(by_line) == {"4", "8", "12"}
    assert "missing completion_B" in by_line["4"] and "invalid JSON" in by_line["8"]
    assert "label must be 'A', 'B' or 'Tie', got 'a'" in by_line["12"]


def test_prompt_chosen_rejected_layout_trains(tmp_path):
    rows = [{"prompt": f"What is {i} + {i}?", "chosen": f"{2 * i}.", "rejected": f"{2 * i + 1}."} for i in range(8)]
    rows.append({"prompt": [{"role": "user", "content": "Hi?"}], "chosen": [{"role": "assistant", "content": "Hello."}],
                 "rejected": "Go away."})
    path = tmp_path / "trl.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run_dpo(config(path, tmp_path / "run", max_steps=1, test_size=0, eval_every=0, batch_size=9))
    assert json.loads((tmp_path / "run" / "data_report.json").read_text())["kept"] == 9


def test_no_usable_pair_says_why(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"prompt": "Q?", "chosen": "A."}) + "\n")
    with pytest.raises(PosttrainError, match=r"0 usable training pairs \(0 kept; skipped 1 unreadable: "
                                             r".*bad.jsonl:1: unreadable: missing rejected \(a prompt/chosen/rejected row\)"):
        run_dpo(config(path, tmp_path / "run", batch_size=1, test_size=0))
