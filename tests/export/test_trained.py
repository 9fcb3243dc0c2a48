"""Resolving what to use after training: a run folder, a checkpoint folder (sampler or training
state) or a model name, to weights, base model and renderer."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from posttrain.errors import PosttrainError
from posttrain.trained import load_sampler, resolve
from tests.tiny_run import TINY


def test_a_run_resolves_to_its_final_sampler_checkpoint(run_folder):
    trained = resolve(str(run_folder))
    assert trained.checkpoint == run_folder / "checkpoints" / "final_sampler" and trained.kind == "sampler"
    assert (trained.base_model, trained.renderer, trained.lora["rank"]) == (TINY, "smollm2", 8)
    inside = resolve(str(run_folder / "checkpoints" / "final"))
    assert (inside.kind, inside.renderer, inside.run_config["model_name"]) == ("state", "smollm2", TINY)


def test_a_training_state_samples_as_its_sampler_checkpoint(run_folder):
    tokens = [1, 520, 33, 2, 198, 1, 9520, 198]
    lp_state = load_sampler(resolve(str(run_folder / "checkpoints" / "final")), "cpu").compute_logprobs(tokens)
    lp_sampler = load_sampler(resolve(str(run_folder)), "cpu").compute_logprobs(tokens)
    assert np.allclose(lp_state.result()[1:], lp_sampler.result()[1:], atol=1e-5)


def test_a_moved_run_finds_its_checkpoints(run_folder, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(run_folder, moved, ignore=shutil.ignore_patterns("step_*", "final", ".lock"))
    assert resolve(str(moved)).checkpoint == moved / "checkpoints" / "final_sampler"


def test_names_and_bad_folders(tmp_path):
    assert resolve(TINY).renderer == "smollm2" and resolve(TINY).checkpoint is None
    assert resolve("posttrain:tiny-llama3").renderer == "llama3"
    (tmp_path / "config.json").write_text(json.dumps({"model_name": TINY}))
    with pytest.raises(PosttrainError, match="no checkpoint yet"):
        resolve(str(tmp_path))
    with pytest.raises(PosttrainError, match="not a run folder"):
        resolve(str(tmp_path / "config.json"))
    with pytest.raises(PosttrainError, match="no recommended renderer"):
        resolve("some-org/unknown-model")
