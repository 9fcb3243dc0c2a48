"""One run per run folder: a second run into a folder in use stops at once naming the holder; the lock
of a killed run is taken over; a refused run leaves no trace."""

from __future__ import annotations

import os
import subprocess
import sys

from posttrain.cli import main
from posttrain.default_data import default_dataset_path
from posttrain.runs.folder import LOCK, RunLock
from posttrain.runs.log import read_metrics


def _data(tmp_path):
    path = tmp_path / "conv.jsonl"
    path.write_text("".join(default_dataset_path().read_text().splitlines(keepends=True)[:12]))
    return path


def _args(data, out, steps=2):
    return ["train", "sft", "--model", "posttrain:tiny-smollm2", "--dataset", str(data), "--test-size", "0",
            "--batch-size", "4", "--max-length", "64", "--lora-rank", "4", "--max-steps", str(steps),
            "--eval-every", "0", "--save-every", "0", "--out", str(out), "--quiet"]


def test_a_run_folder_in_use_is_refused_naming_the_holder(tmp_path, capsys):
    data, out = _data(tmp_path), tmp_path / "run"
    holder = RunLock(out)
    try:
        assert main(_args(data, out)) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert f"{out} is in use by another run (pid {os.getpid()} on " in err
    finally:
        holder.release()
    assert main(_args(data, out)) == 0
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [0, 1]
    assert (out / LOCK).read_text() == ""  # released: no holder left behind


def test_two_concurrent_runs_into_one_folder_exactly_one_trains(tmp_path):
    data, out = _data(tmp_path), tmp_path / "run"
    cmd = [sys.executable, "-m", "posttrain.cli", *_args(data, out, steps=3)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = sorted((p.wait(timeout=600), p.communicate()[1], p.pid) for p in procs)
    (ok, _, winner), (refused, err, _) = outcomes
    assert (ok, refused) == (0, 2)
    assert f"is in use by another run (pid {winner} on " in err
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [0, 1, 2]


def test_the_lock_of_a_killed_run_is_taken_over(tmp_path, capsys):
    data, out = _data(tmp_path), tmp_path / "run"
    out.mkdir()
    (out / LOCK).write_text("pid 4242 on elsewhere since 2026-01-01 00:00:00: posttrain train sft")  # nobody holds it
    assert main(_args(data, out)) == 0
    assert "took over the lock of a run that ended without releasing it (pid 4242" in capsys.readouterr().err


def test_a_refused_run_leaves_no_folder(tmp_path, capsys):
    out = tmp_path / "never"
    assert main([*_args(tmp_path / "missing.jsonl", out)]) == 2
    assert "missing.jsonl" in capsys.readouterr().err
    assert not out.exists()
