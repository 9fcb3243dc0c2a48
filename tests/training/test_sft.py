"""The SFT loop end to end on a tiny model: loss falls, the run folder is complete, resume after a kill
is exact, batches follow tinker-cookbook's order, bad input stops before training, 2-process DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import datasets
import numpy as np
import pytest

from posttrain import get_renderer, get_tokenizer
from posttrain.data.supervised import conversation_to_datum
from posttrain.default_data import default_dataset_path
from posttrain.engine.training_client import TrainingClient
from posttrain.errors import PosttrainError
from posttrain.recipes.sft import recipe_config, run_sft
from posttrain.runs.log import read_metrics, without_timings

TINY = "posttrain:tiny-smollm2"
STEP_KEYS = {"step", "epoch", "progress", "learning_rate", "num_sequences", "num_tokens", "num_loss_tokens",
             "train_mean_nll", "optim/grad_norm", "time/step", "time/tokens_per_second"}


@pytest.fixture(scope="module")
def conversations(tmp_path_factory) -> Path:
    """24 shipped conversations (4 held out, 5 batches of 4 per epoch)."""
    path = tmp_path_factory.mktemp("data") / "conv.jsonl"
    path.write_text("".join(default_dataset_path().read_text().splitlines(keepends=True)[:24]))
    return path


def tiny_config(conversations: Path, out: Path, **kw):
    base = dict(model_name=TINY, dataset=str(conversations), log_path=str(out), batch_size=4, test_size=4,
                max_length=96, max_steps=5, eval_every=2, save_every=2, learning_rate=5e-3, lora_rank=8)
    return recipe_config("default", **{**base, **kw})


def test_loss_falls_and_the_run_folder_is_complete(conversations, tmp_path):
    out = tmp_path / "run"
    result = run_sft(tiny_config(conversations, out, max_steps=6, num_epochs=2))  # 5 batches per epoch
    rows = read_metrics(out / "metrics.jsonl")
    assert [(r["step"], r["epoch"]) for r in rows] == [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (5, 1)]
    assert all(set(r) >= STEP_KEYS for r in rows)
    assert [r["step"] for r in rows if "test/nll" in r] == [0, 2, 4]
    assert rows[-1]["train_mean_nll"] < rows[0]["train_mean_nll"]
    assert result.final_test_nll < rows[0]["test/nll"]
    assert [r["learning_rate"] for r in rows] == pytest.approx([5e-3 * (1 - s / 6) for s in range(6)])
    assert all(r["num_sequences"] == 4 and r["num_loss_tokens"] == pytest.approx(4.0) for r in rows)  # mean reduction
    records = [json.loads(line) for line in (out / "checkpoints.jsonl").read_text().splitlines()]
    assert [(r["name"], r["step"], r["epoch"], r["batch"]) for r in records] == [
        ("step_000002", 2, 0, 2), ("step_000004", 4, 0, 4), ("final", 6, 2, 0)]
    assert (out / "curves.png").stat().st_size > 1000 and result.plot_path == str(out / "curves.png")
    config = json.loads((out / "config.json").read_text())
    assert config["renderer"] == "smollm2" and config["reduction"] == "mean" and config["batch_size"] == 4
    payload = json.loads((out / "parity" / "first_batch_payload.json").read_text())
    assert payload["batch_size"] == 4 and len(payload["datums"]) == 4
    from posttrain.parity import diff_runs
    from posttrain.parity.artifacts import read_run

    assert diff_runs(read_run(out), read_run(out)).match


def _reference_batches(conversations: Path, epochs: int, batch_size: int, test_size: int) -> list[list[np.ndarray]]:
    """tinker-cookbook's order, from datasets directly: the builder shuffles with seed 0 and holds out
    the first rows; the loop calls set_epoch(seed=epoch) — a shuffle with that seed — at every epoch."""
    rows = [json.loads(line) for line in conversations.read_text().splitlines()]
    ds = datasets.Dataset.from_dict({"i": list(range(len(rows)))}).shuffle(seed=0)
    train = ds.select(range(test_size, len(ds)))
    renderer = get_renderer("smollm2", get_tokenizer("posttrain:smollm2"))
    batches = []
    for epoch in range(epochs):
        order = train.shuffle(seed=epoch)["i"]
        for b in range(len(order) // batch_size):
            batch = order[b * batch_size:(b + 1) * batch_size]
            batches.append([conversation_to_datum(rows[i]["messages"], renderer, 96).input_tokens for i in batch])
    return batches


def test_batches_follow_the_reference_order(conversations, tmp_path, monkeypatch):
    seen: list[list[np.ndarray]] = []
    original = TrainingClient.forward_backward

    def recording(self, data, loss_fn, loss_fn_config=None):
        seen.append([d.input_tokens for d in data])
        return original(self, data, loss_fn, loss_fn_config)

    monkeypatch.setattr(TrainingClient, "forward_backward", recording)
    run_sft(tiny_config(conversations, tmp_path / "run", max_steps=None, num_epochs=2, eval_every=0, save_every=0))
    want = _reference_batches(conversations, epochs=2, batch_size=4, test_size=4)
    assert len(seen) == len(want) == 10
    for step, (got, exp) in enumerate(zip(seen, want, strict=True)):
        assert [g.tolist() for g in got] == [e.tolist() for e in exp], f"step {step}"


KILL_SCRIPT = textwrap.dedent("""
    import sys
    from posttrain.recipes.sft import recipe_config, run_sft
    cfg = recipe_config("default", model_name="posttrain:tiny-smollm2", dataset=sys.argv[1], log_path=sys.argv[2],
                        batch_size=4, test_size=4, max_length=96, max_steps=None, num_epochs=2, eval_every=3,
                        save_every=3, learning_rate=5e-3, lora_rank=8, resume=True)
    run_sft(cfg)
""")


def test_resume_after_kill_mid_epoch_is_exact(conversations, tmp_path):
    straight = tmp_path / "straight"
    run_sft(tiny_config(conversations, straight, max_steps=None, num_epochs=2, eval_every=3, save_every=3))
    want = without_timings(read_metrics(straight / "metrics.jsonl"))
    assert len(want) == 10

    killed = tmp_path / "killed"
    script = tmp_path / "train.py"
    script.write_text(KILL_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(conversations), str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and len(read_metrics(killed / "metrics.jsonl")) < 4:
        assert proc.poll() is None, "the training process ended before it was killed"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)  # mid-epoch 0 (5 batches per epoch), after a checkpoint at step 3
    proc.wait()
    assert 4 <= len(read_metrics(killed / "metrics.jsonl")) < 10
    records = [json.loads(line) for line in (killed / "checkpoints.jsonl").read_text().splitlines()]
    assert records[0]["step"] == 3 and records[0]["batch"] == 3  # the next batch, not the one it just trained

    run_sft(tiny_config(conversations, killed, max_steps=None, num_epochs=2, eval_every=3, save_every=3,
                        resume=True))
    assert without_timings(read_metrics(killed / "metrics.jsonl")) == want
    from posttrain.parity import diff_runs
    from posttrain.parity.artifacts import read_run

    assert diff_runs(read_run(straight), read_run(killed)).match  # only timings and paths differ


def test_existing_folders_are_never_written_over(conversations, tmp_path):
    out = tmp_path / "run"
    run_sft(tiny_config(conversations, out, max_steps=2, save_every=0))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(PosttrainError, match="already holds a default run; pass --resume"):
        run_sft(tiny_config(conversations, out, max_steps=2, save_every=0))
    with pytest.raises(PosttrainError, match=r"--resume: the run in .* was started with learning_rate=0.005, not 0.001"):
        run_sft(tiny_config(conversations, out, max_steps=2, save_every=0, learning_rate=1e-3, resume=True))
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(PosttrainError, match="holds files that are not a posttrain training run"):
        run_sft(tiny_config(conversations, other))
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    done = run_sft(tiny_config(conversations, out, max_steps=2, save_every=0, resume=True))
    assert done.extra["note"] == "already complete"


def test_corrupt_checkpoint_on_resume(conversations, tmp_path):
    out = tmp_path / "run"
    run_sft(tiny_config(conversations, out, max_steps=2, save_every=1))
    (out / "checkpoints.jsonl").write_text((out / "checkpoints.jsonl").read_text().splitlines()[0] + "\n")
    (out / "checkpoints" / "step_000001" / "weights.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(PosttrainError, match="step_000001/weights.safetensors: cannot read the weights"):
        run_sft(tiny_config(conversations, out, max_steps=2, save_every=1, resume=True))


@pytest.mark.parametrize(("change", "message"), [
    ({"model_name": "posttrain:smollm2-135m-instruct", "renderer_name": "llama3"},
     "renderer 'llama3' does not fit model 'posttrain:smollm2-135m-instruct'"),
    ({"model_name": "posttrain:no-such-model"}, "unknown offline model 'posttrain:no-such-model'"),
    ({"batch_size": 64}, "batch size 64 is larger than the training set (20 conversations after the test split)"),
    ({"batch_size": 0}, "batch_size must be at least 1, got 0"),
    ({"test_size": 24}, "test_size 24 leaves no conversation to train on"),
    ({"dataset": "EMPTY_REPLIES", "test_size": 0}, "every assistant reply in"),
    # the first row in the builder's order (file line 5) names the file and line
    ({"train_on_what": "last_assistant_turn", "dataset": "USER_ONLY"}, "user_only.jsonl:5: train_on_what="
                                                                       "last_assistant_turn trains no token"),
])
def test_bad_input_stops_before_training(conversations, tmp_path, change, message):
    if change.get("dataset") == "USER_ONLY":
        user_only = tmp_path / "user_only.jsonl"
        user_only.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"}]}) + "\n"
                                     for i in range(10)))
        change = {**change, "dataset": str(user_only), "test_size": 0}
    if change.get("dataset") == "EMPTY_REPLIES":
        empty = tmp_path / "empty.jsonl"
        empty.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                                          {"role": "assistant", "content": " "}]}) + "\n"
                                 for i in range(10)))
        change = {**change, "dataset": str(empty)}
    out = tmp_path / "run"
    with pytest.raises(PosttrainError) as err:
        run_sft(tiny_config(conversations, out, **change))
    assert message in str(err.value)
    assert not out.exists()


def test_tinker_backend_needs_a_key_before_any_data(tmp_path, monkeypatch):
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    with pytest.raises(PosttrainError, match="needs TINKER_API_KEY"):
        run_sft(recipe_config("default", backend="tinker", dataset=str(tmp_path / "missing.jsonl"),
                              log_path=str(tmp_path / "run")))
    assert not (tmp_path / "run").exists()


DDP_SCRIPT = textwrap.dedent("""
    import sys
    from posttrain.recipes.sft import recipe_config, run_sft
    cfg = recipe_config("default", model_name="posttrain:tiny-smollm2", dataset=sys.argv[1], log_path=sys.argv[2],
                        batch_size=4, test_size=4, max_length=96, max_steps=3, eval_every=2, save_every=2,
                        learning_rate=5e-3, lora_rank=8)
    run_sft(cfg)
    import torch.distributed as dist
    assert not dist.is_initialized(), "run_sft left its process group alive"
""")


def test_two_process_gloo_run_equals_one_process(conversations, tmp_path):
    single = tmp_path / "single"
    run_sft(tiny_config(conversations, single, max_steps=3))
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    ddp = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # --standalone: torchrun picks a free local port itself (no window for another process to take it)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script), str(conversations), str(ddp)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    one, two = read_metrics(single / "metrics.jsonl"), read_metrics(ddp / "metrics.jsonl")
    assert [r["step"] for r in two] == [0, 1, 2]
    for a, b in zip(one, two, strict=True):
        for key in ("train_mean_nll", "optim/grad_norm", "num_tokens"):
            assert b[key] == pytest.approx(a[key], rel=1e-4), key
        if "test/nll" in a:
            assert b["test/nll"] == pytest.approx(a["test/nll"], rel=1e-4)


def test_a_divergent_run_stops_at_the_first_non_finite_step_and_saves_nothing_non_finite(conversations, tmp_path):
    import torch
    from safetensors.torch import load_file

    from posttrain.errors import NonFiniteError

    out = tmp_path / "run"
    with pytest.raises(NonFiniteError, match=r"step \d+: .*(nan|inf).*; the last good checkpoint is step_000001 "
                                             r"\(step 1\)"):
        run_sft(tiny_config(conversations, out, learning_rate=1e30, max_steps=5, save_every=1, eval_every=0))
    text = (out / "metrics.jsonl").read_text()
    rows = [json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in metrics.jsonl")) for line in text.splitlines()]
    assert rows and all(np.isfinite(r["train_mean_nll"]) for r in rows)
    tensors = [t for f in (out / "checkpoints").rglob("*.safetensors") for t in load_file(f).values()]
    assert tensors and all(bool(torch.isfinite(t).all()) for t in tensors)
    records = [json.loads(line) for line in (out / "checkpoints.jsonl").read_text().splitlines()]
    assert all(r["name"] != "final" for r in records)


def test_data_report_names_cut_and_empty_rows(tmp_path):
    rows = default_dataset_path().read_text().splitlines(keepends=True)[:10]
    long_reply = " ".join(f"word{i}" for i in range(300))  # far past max_length 96
    rows.append(json.dumps({"messages": [{"role": "user", "content": "long?"},
                                         {"role": "assistant", "content": long_reply}]}) + "\n")
    rows.append(json.dumps({"messages": [{"role": "user", "content": "empty?"},
                                         {"role": "assistant", "content": ""}]}) + "\n")
    data = tmp_path / "mixed.jsonl"
    data.write_text("".join(rows))
    out = tmp_path / "run"
    result = run_sft(tiny_config(data, out, test_size=2, max_steps=1, save_every=0, eval_every=0))
    report = json.loads((out / "data_report.json").read_text())
    assert result.extra["data"] == report
    assert (report["train_rows"], report["test_rows"], report["empty_replies"]) == (10, 2, 1)
    assert report["truncated"] >= 1 and report["trained_tokens_cut"] > 200
    assert any("(line 11): " in r and "tokens cut to 96" in r for r in report["rows"])
    assert any("(line 12): every assistant reply is empty" in r for r in report["rows"])
