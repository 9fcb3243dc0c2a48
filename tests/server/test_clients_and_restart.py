"""Several clients on one server, and a server killed with SIGKILL and started again on its state folder.

Expected values come from the in-process engine, each client alone (its own base model copy)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from tinker import types

from posttrain.engine import AdamParams, TrainingClient, load_base_model
from posttrain.engine.lora import LoraSettings
from tests.server.util import TINY, Server, batch, engine_datums, sdk_datums

ADAM = dict(learning_rate=2e-2, eps=1e-8)
STEPS = 4


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server([TINY], tmp_path_factory.mktemp("serve") / "state")
    yield srv
    srv.stop()


def alone(rank: int, seed: int, steps: range, tmp_path, start=None) -> list[float]:
    """Losses of ``steps`` on an engine client with a base model of its own (``start``: a state to load)."""
    import torch

    client = TrainingClient(load_base_model(TINY, torch.device("cpu")), lora=LoraSettings(rank=rank), seed=seed,
                            checkpoint_dir=tmp_path)
    if start is not None:
        client.load_state_with_optimizer(str(start)).result()
    out = []
    for step in steps:
        out.append(client.forward_backward(engine_datums(batch(step + 10 * rank)), "cross_entropy").result().loss)
        client.optim_step(AdamParams(**ADAM)).result()
    return out


def train(client, rank: int, steps: range, out: list[float]) -> None:
    for step in steps:
        fb = client.forward_backward(sdk_datums(batch(step + 10 * rank)), "cross_entropy")
        client.optim_step(types.AdamParams(**ADAM))
        out.append(fb.result().metrics["loss:sum"])


def test_two_clients_with_different_ranks_train_at_once_as_alone(server, tmp_path):
    sdk = server.sdk()
    clients = {rank: sdk.create_lora_training_client(TINY, rank=rank, seed=rank).result() for rank in (2, 8)}
    got: dict[int, list[float]] = {2: [], 8: []}
    threads = [threading.Thread(target=train, args=(c, r, range(STEPS), got[r])) for r, c in clients.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for rank in (2, 8):
        assert got[rank] == alone(rank, rank, range(STEPS), tmp_path)  # bit-identical
    assert got[2] != got[8]


def test_sigkill_and_restart_resumes_exactly(tmp_path):
    """Train 2 steps, checkpoint, train on (that work is lost with the server), kill -9, start again,
    load the checkpoint with its optimizer: the remaining steps equal an uninterrupted run's."""
    srv = Server([TINY], tmp_path / "state")
    try:
        client = srv.sdk().create_lora_training_client(TINY, rank=4, seed=9).result()
        first: list[float] = []
        train(client, 4, range(2), first)
        path = client.save_state("step2").result().path
        client.forward_backward(sdk_datums(batch(2 + 40)), "cross_entropy")  # in flight when the server dies
        srv.kill9()
        srv.start()
        resumed = srv.sdk().create_training_client_from_state_with_optimizer(path).result()
        rest: list[float] = []
        train(resumed, 4, range(2, STEPS), rest)
    finally:
        srv.stop()
    assert first + rest == alone(4, 9, range(STEPS), tmp_path)
    assert np.isfinite(rest).all()
