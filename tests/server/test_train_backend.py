"""posttrain's own loops on a Tinker-compatible server: `posttrain train sft --backend tinker --base-url URL`
against `posttrain serve` logs the same per-step NLL as the local engine, and resumes through the server's
tinker:// checkpoints."""

from __future__ import annotations

import json

import pytest

from posttrain.cli import main
from posttrain.runs.log import read_metrics
from tests.server.util import KEY, Server

TINY = "posttrain:tiny-smollm2"
RUN = ["train", "sft", "--model", TINY, "--lora-rank", "4", "--batch-size", "4", "--max-length", "64",
       "--test-size", "4", "--eval-every", "2", "--save-every", "2", "--max-steps", "4", "--lr", "5e-3", "--quiet"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    s = Server([TINY], folder / "state")
    yield s
    s.stop()


def _nll(run) -> list[float]:
    return [r["train_mean_nll"] for r in read_metrics(run / "metrics.jsonl")]


def test_sft_through_the_server_equals_the_local_engine(server, tmp_path, monkeypatch):
    monkeypatch.setenv("TINKER_API_KEY", KEY)
    assert main([*RUN, "--out", str(tmp_path / "local")]) == 0
    assert main([*RUN, "--out", str(tmp_path / "served"), "--backend", "tinker", "--base-url", server.url]) == 0
    assert _nll(tmp_path / "served") == pytest.approx(_nll(tmp_path / "local"), abs=1e-5)
    records = [json.loads(line) for line in (tmp_path / "served" / "checkpoints.jsonl").read_text().splitlines()]
    assert [r["name"] for r in records] == ["step_000002", "final"]
    assert all(r["state_path"].startswith("tinker://") for r in records)


def test_a_served_run_resumes_from_its_tinker_checkpoint(server, tmp_path, monkeypatch):
    monkeypatch.setenv("TINKER_API_KEY", KEY)
    served = [*RUN, "--backend", "tinker", "--base-url", server.url]
    assert main([*served, "--out", str(tmp_path / "straight")]) == 0
    cut = tmp_path / "cut"
    assert main([*served, "--out", str(cut)]) == 0
    lines = (cut / "checkpoints.jsonl").read_text().splitlines()
    (cut / "checkpoints.jsonl").write_text(lines[0] + "\n")  # as if killed after the step-2 checkpoint
    assert main([*served, "--out", str(cut), "--resume"]) == 0
    assert _nll(cut) == _nll(tmp_path / "straight")
