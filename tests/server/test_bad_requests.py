"""Bad requests get a 4xx with a one-line reason, change nothing, and the server goes on serving: a
client's steps after them equal the in-process engine's steps without them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tinker
from tinker import types
from tinker.proto import tinker_public_pb2 as pb
from tinker.proto.request_conv import forward_backward_request_to_proto
from tinker.proto.response_conv import deserialize_forward_backward_output

from posttrain.engine import AdamParams, ServiceClient
from tests.server.util import OTHER, TINY, VOCAB, Server, batch, engine_datums, sdk_datums

ADAM = dict(learning_rate=1e-2, eps=1e-8)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server([TINY, OTHER], tmp_path_factory.mktemp("serve") / "state")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def clients(server, tmp_path_factory):
    sdk = server.sdk()
    remote = sdk.create_lora_training_client(TINY, rank=4, seed=1).result()
    local = ServiceClient(tmp_path_factory.mktemp("ref"), device="cpu").create_lora_training_client(TINY, rank=4, seed=1)
    return sdk, remote, local


def step_both(remote, local, seed: int) -> None:
    rows = batch(seed, (10, 6))
    got = remote.forward_backward(sdk_datums(rows), "cross_entropy").result().metrics["loss:sum"]
    remote.optim_step(types.AdamParams(**ADAM)).result()
    want = local.forward_backward(engine_datums(rows), "cross_entropy").result().loss
    local.optim_step(AdamParams(**ADAM)).result()
    assert got == want


def detail(response) -> str:
    body = response.json()
    assert set(body) >= {"detail"} and "\n" not in body["detail"]
    return body["detail"]


def test_raw_bad_requests_get_4xx_with_a_reason(server, clients):
    _, remote, _ = clients
    fb = server.post("forward_backward", content=b"\x08\xff\xff garbage", headers={"Content-Type": "application/x-protobuf"})
    assert fb.status_code == 400 and "not a ForwardBackwardRequest protobuf" in detail(fb)
    zstd = server.post("forward_backward", content=b"not zstd", headers={"Content-Encoding": "zstd"})
    assert zstd.status_code == 400 and "zstd" in detail(zstd)
    msg = pb.ForwardBackwardRequest(model_id="session-x:train:0", seq_id=1, loss_fn="cross_entropy")
    unknown = server.post("forward_backward", content=msg.SerializeToString())
    assert unknown.status_code == 404 and "unknown model 'session-x:train:0'" in detail(unknown)
    step = server.post("optim_step", json={"model_id": "nope", "adam_params": {"learning_rate": 0.1}, "seq_id": 1})
    assert step.status_code == 404 and "unknown model 'nope'" in detail(step)
    malformed = server.post("optim_step", json={"model_id": remote.model_id})
    assert malformed.status_code == 400 and "malformed" in detail(malformed) and "optim_params" in detail(malformed)
    future = server.post("retrieve_future", json={"request_id": "req-nope"})
    assert future.status_code == 404 and "unknown future 'req-nope'" in detail(future)
    cancel = server.post("cancel_future", json={"request_id": "req-nope"})
    assert cancel.status_code == 404 and "unknown future 'req-nope'" in detail(cancel)
    sampler = server.post("asample", json={"sampling_session_id": "sampler-x", "seq_id": 0, "num_samples": 1,
                                           "prompt": {"chunks": [{"type": "encoded_text", "tokens": [1, 2]}]},
                                           "sampling_params": {"max_tokens": 2}})
    assert sampler.status_code == 404 and "unknown sampling session" in detail(sampler)
    heartbeat = server.post("session_heartbeat", json={"session_id": "session-gone"})
    assert heartbeat.status_code == 410 and "unknown session 'session-gone'" in detail(heartbeat)
    import httpx

    no_key = httpx.post(f"{server.url}/api/v1/optim_step", json={})
    assert no_key.status_code == 401 and "X-API-Key" in detail(no_key)


def test_sdk_surfaces_refusals_and_the_client_goes_on(server, clients):
    sdk, remote, local = clients
    step_both(remote, local, 0)
    rows = batch(1, (10, 6))
    bad = [(t.copy(), w) for t, w in rows]
    bad[1][0][3] = VOCAB + 5  # an input token outside the vocabulary
    with pytest.raises(tinker.BadRequestError, match=r"datum 1: token id 128261 at model_input position 3 is outside"):
        remote.forward_backward(sdk_datums(bad), "cross_entropy").result()
    with pytest.raises(tinker.BadRequestError, match=r"needs loss input\(s\) \['logprobs', 'advantages'\]"):
        remote.forward_backward(sdk_datums(rows), "ppo").result()
    with pytest.raises(tinker.BadRequestError, match="'stable_reinforce' is not supported"):
        remote.forward_backward(sdk_datums(rows), "stable_reinforce").result()
    with pytest.raises(tinker.NotFoundError, match="base model 'no/such-model' is not served here"):
        sdk.create_lora_training_client("no/such-model", rank=4).result()
    with pytest.raises(tinker.NotFoundError, match="no checkpoint at tinker://x:train:0/weights/missing"):
        sdk.create_training_client_from_state("tinker://x:train:0/weights/missing").result()
    step_both(remote, local, 2)  # nothing changed: the same losses as the engine that never saw them


def test_a_checkpoint_of_another_base_model_is_refused(server, clients):
    sdk, remote, local = clients
    other = sdk.create_lora_training_client(OTHER, rank=4, seed=1).result()
    other.forward_backward(sdk_datums([(t % 49152, w) for t, w in batch(5, (8,))]), "cross_entropy").result()
    path = other.save_state("other-base").result().path
    with pytest.raises(tinker.BadRequestError, match=r"is from base model 'posttrain:tiny-smollm2', but this client "
                                                     r"trains 'posttrain:tiny-llama3'"), pytest.warns(FutureWarning):
        remote.load_state(path).result()  # deprecated in the SDK, still served
    step_both(remote, local, 3)
    sampler = sdk.create_sampling_client(model_path=path.replace("/weights/", "/sampler_weights/"))
    with pytest.raises(tinker.NotFoundError, match="no checkpoint at"):
        sampler.result()
    logprobs = np.asarray(remote.forward(sdk_datums(batch(4, (9,))), "cross_entropy").result()
                          .loss_fn_outputs[0]["logprobs"].to_numpy())
    np.testing.assert_array_equal(logprobs, local.forward(engine_datums(batch(4, (9,))), "cross_entropy").result()
                                  .logprobs()[0])


def test_old_snapshot_samplers_are_dropped_and_say_so(server, clients):
    """An RL loop makes a sampler per step; a training model keeps its 8 newest (each is an adapter)."""
    from posttrain.server.host import MAX_SNAPSHOTS

    _, remote, _ = clients
    samplers = [remote.save_weights_and_get_sampling_client().result() for _ in range(MAX_SNAPSHOTS + 1)]
    prompt = types.ModelInput.from_ints([5, 6, 7])
    params = types.SamplingParams(max_tokens=2, seed=0)
    assert len(samplers[-1].sample(prompt, 1, params).result().sequences[0].tokens) == 2
    with pytest.raises(tinker.NotFoundError, match="unknown sampling session .* keeps its 8 newest snapshot"):
        samplers[0].sample(prompt, 1, params).result()


def _answer(server: Server, response) -> Any:
    """The result of the request a POST answered with a request id (protobuf or JSON)."""
    assert response.status_code == 200, response.text
    done = server.post("retrieve_future", json={"request_id": response.json()["request_id"]})
    assert done.status_code == 200, done.text
    if done.headers["content-type"] == "application/x-protobuf":
        return deserialize_forward_backward_output(done.content)
    return done.json()


def test_a_resent_request_runs_once_and_gets_the_first_answer(server, tmp_path):
    """What the SDK does when an answer does not come within 60 s: it sends the request again, with the
    same seq_id and body. The resend gets the first request's id, so the step runs once and the model
    goes on; another request under a used seq_id is refused."""
    remote = server.sdk().create_lora_training_client(TINY, rank=4, seed=1).result()  # its next seq_id is 1
    local = ServiceClient(tmp_path, device="cpu").create_lora_training_client(TINY, rank=4, seed=1)

    def fwd_bwd(seq_id: int, rows) -> bytes:
        request = types.ForwardBackwardRequest(forward_backward_input=types.ForwardBackwardInput(
            data=sdk_datums(rows), loss_fn="cross_entropy"), model_id=remote.model_id, seq_id=seq_id)
        return forward_backward_request_to_proto(request).SerializeToString()

    step = types.OptimStepRequest(optim_params=types.AdamParams(**ADAM), model_id=remote.model_id, seq_id=2)
    sent = [server.post("forward_backward", content=fwd_bwd(1, batch(7, (10, 6)))) for _ in range(2)]
    sent += [server.post("optim_step", json=step.model_dump(mode="json")) for _ in range(2)]
    assert sent[0].json()["request_id"] == sent[1].json()["request_id"]
    assert sent[2].json()["request_id"] == sent[3].json()["request_id"]
    want = local.forward_backward(engine_datums(batch(7, (10, 6))), "cross_entropy").result().loss
    local.optim_step(AdamParams(**ADAM)).result()
    assert _answer(server, sent[1]).metrics["loss:sum"] == want
    _answer(server, sent[3])
    after = _answer(server, server.post("forward_backward", content=fwd_bwd(3, batch(8, (9,)))))
    assert after.metrics["loss:sum"] == local.forward_backward(engine_datums(batch(8, (9,))), "cross_entropy").result().loss

    other = server.post("forward_backward", content=fwd_bwd(1, batch(9, (5,))))
    assert other.status_code == 400
    assert detail(other) == f"seq_id 1 of {remote.model_id} was already used by a different request"
