"""Resume under faults a crash or a person leaves behind: torn log lines, a run folder named another
way, a corrupt or deleted checkpoint. Each resumes exactly or stops with a one-line reason."""

from __future__ import annotations

import json
import shutil
import stat

import pytest

from posttrain.errors import PosttrainError
from posttrain.recipes.sft import run_sft
from posttrain.runs.log import read_metrics, without_timings
from tests.training.test_sft import conversations, tiny_config  # noqa: F401 - the fixture is used by name

STEPS = dict(max_steps=4, save_every=1, eval_every=0)


@pytest.fixture(scope="module")
def straight(conversations, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("straight") / "run"
    run_sft(tiny_config(conversations, out, **STEPS))
    return without_timings(read_metrics(out / "metrics.jsonl"))


def crashed_after_step(conversations, out, step):  # noqa: F811
    """A finished run cut back to how a crash after ``step`` steps leaves it."""
    run_sft(tiny_config(conversations, out, **STEPS))
    records = (out / "checkpoints.jsonl").read_text().splitlines()
    (out / "checkpoints.jsonl").write_text("\n".join(records[:step]) + "\n")
    metrics = (out / "metrics.jsonl").read_text().splitlines()
    (out / "metrics.jsonl").write_text("\n".join(metrics[:step + 1]) + "\n")


def test_torn_last_lines_are_dropped_and_the_run_resumes_exactly(conversations, straight, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    crashed_after_step(conversations, out, 2)
    with open(out / "checkpoints.jsonl", "a") as f:
        f.write('{"name": "step_000003", "st')  # the crash cut this write short
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "train_mean_n')
    run_sft(tiny_config(conversations, out, resume=True, **STEPS))
    assert without_timings(read_metrics(out / "metrics.jsonl")) == straight
    assert all(json.loads(line) for line in (out / "checkpoints.jsonl").read_text().splitlines())


def test_a_damaged_line_inside_a_log_is_named(conversations, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    crashed_after_step(conversations, out, 2)
    lines = (out / "checkpoints.jsonl").read_text().splitlines()
    (out / "checkpoints.jsonl").write_text(lines[0] + "\n{oops\n" + lines[1] + "\n")
    with pytest.raises(PosttrainError, match=r"checkpoints.jsonl:2: not a JSON record"):
        run_sft(tiny_config(conversations, out, resume=True, **STEPS))


def test_a_corrupt_last_checkpoint_falls_back_to_the_one_before(conversations, straight, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "run"
    crashed_after_step(conversations, out, 2)
    (out / "checkpoints" / "step_000002" / "weights.safetensors").write_bytes(b"\0" * 10)
    run_sft(tiny_config(conversations, out, resume=True, **STEPS))
    assert without_timings(read_metrics(out / "metrics.jsonl")) == straight
    err = capsys.readouterr().err
    assert "resuming from step_000001 (step 1); passed over step_000002:" in err


def test_resume_with_every_checkpoint_deleted_stops(conversations, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    crashed_after_step(conversations, out, 2)
    shutil.rmtree(out / "checkpoints")
    with pytest.raises(PosttrainError, match=r"none of the 2 checkpoints in checkpoints.jsonl can be resumed: "
                                             r"their folders are gone"):
        run_sft(tiny_config(conversations, out, resume=True, **STEPS))


def test_resume_by_another_spelling_of_the_folder(conversations, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    run_sft(tiny_config(conversations, "run", max_steps=2, save_every=0, eval_every=0))
    done = run_sft(tiny_config(conversations, str(tmp_path / "run"), max_steps=2, save_every=0, eval_every=0,
                               resume=True))
    assert done.extra["note"] == "already complete"
    mode = stat.S_IMODE((tmp_path / "run" / "config.json").stat().st_mode)
    assert mode == 0o644
