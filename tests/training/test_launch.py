"""The torchrun process group's lifecycle: a recipe leaves the group it joined after a clean finish (a
gloo group alive at exit can abort the process), keeps it after an error, and never leaves a group its
caller created. One-rank gloo groups stand in for torchrun's (the two-process run is in test_sft.py)."""

from __future__ import annotations

import pytest
import torch.distributed as dist

from posttrain.training import launch


@pytest.fixture
def one_rank_group(monkeypatch, tmp_path):
    """WORLD_SIZE says torchrun; joining creates a one-rank gloo group (no second process to wait for)."""
    monkeypatch.setenv("WORLD_SIZE", "2")

    def create() -> None:
        store = dist.FileStore(str(tmp_path / "store"), 1)
        dist.init_process_group("gloo", store=store, rank=0, world_size=1)

    def join():
        if not dist.is_initialized():
            create()
        return launch.DistContext.current()

    monkeypatch.setattr(launch, "init_distributed", join)
    yield create
    if dist.is_initialized():
        dist.destroy_process_group()


def test_a_group_joined_for_the_run_is_left_after_a_clean_finish(one_rank_group):
    with launch.process_group() as context:
        assert dist.is_initialized() and context.rank == 0
    assert not dist.is_initialized()


def test_after_an_error_the_group_stays(one_rank_group):
    with pytest.raises(RuntimeError, match="boom"), launch.process_group():
        raise RuntimeError("boom")
    assert dist.is_initialized()


def test_a_group_the_caller_created_is_the_callers_to_leave(one_rank_group):
    one_rank_group()
    with launch.process_group():
        pass
    assert dist.is_initialized()


def test_a_single_process_run_creates_no_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with launch.process_group() as context:
        assert not context.active and not dist.is_initialized()
    assert not dist.is_initialized()
