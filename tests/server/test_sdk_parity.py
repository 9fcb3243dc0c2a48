"""The unmodified tinker SDK against ``posttrain serve``: every call's result equals the in-process
engine's on the same calls (bit-identical where the computation is the same; 1e-5 where the SDK's
protocol changes the arithmetic: chunked calls, the custom loss's two passes, un-merged LoRA sampling)."""

from __future__ import annotations

import numpy as np
import pytest
import tinker
import torch
from safetensors.torch import load_file
from tinker import types

from posttrain.engine import AdamParams, SamplingClient, SamplingParams, ServiceClient
from tests.server.util import TINY, Server, batch, engine_datums, sdk_datums, tokens

ADAM = dict(learning_rate=1e-2, eps=1e-8, weight_decay=0.01, grad_clip_norm=1.0)
CHUNK = 2  # datums per forward_backward request: a 3-datum call goes as 2 chunks, in parallel


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server([TINY], tmp_path_factory.mktemp("serve") / "state", "--max-chunk-datums", str(CHUNK))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def trained(server, tmp_path_factory):
    """An SDK training client and the in-process engine client after the same 3 steps (2-datum batches:
    one request each, so the same computation)."""
    sdk = server.sdk()
    remote = sdk.create_lora_training_client(TINY, rank=4, seed=3).result()
    local = ServiceClient(tmp_path_factory.mktemp("ref"), device="cpu").create_lora_training_client(TINY, rank=4, seed=3)
    history = []
    for step in range(3):
        rows = batch(step, (12, 20))
        got, got_step = remote.forward_backward(sdk_datums(rows), "cross_entropy"), remote.optim_step(types.AdamParams(**ADAM))
        want = local.forward_backward(engine_datums(rows), "cross_entropy").result()
        want_step = local.optim_step(AdamParams(**ADAM)).result()
        history.append((got.result(), got_step.result(), want, want_step))
    return sdk, remote, local, history


def test_losses_logprobs_and_steps_are_bit_identical(trained):
    *_, history = trained
    for got, got_step, want, want_step in history:
        assert got.metrics["loss:sum"] == want.metrics["loss:sum"]
        assert got_step.metrics["grad_norm:mean"] == want_step.metrics["grad_norm:mean"]
        assert len(got.loss_fn_outputs) == 2
        for g, w in zip(got.loss_fn_outputs, want.logprobs(), strict=True):
            np.testing.assert_array_equal(g["logprobs"].to_numpy(), w)
    assert history[0][0].metrics["loss:sum"] > history[-1][0].metrics["loss:sum"]  # it trains


def test_forward_and_rl_losses_equal_the_engine(trained):
    _, remote, local, _ = trained
    rows = batch(7, (9, 15))
    assert remote.forward(sdk_datums(rows), "cross_entropy").result().metrics["loss:sum"] == \
        local.forward(engine_datums(rows), "cross_entropy").result().metrics["loss:sum"]
    rng = np.random.default_rng(0)
    extra = [{"logprobs": rng.normal(-11, 0.5, len(t) - 1).astype(np.float32),
              "advantages": rng.normal(0, 1, len(t) - 1).astype(np.float32),
              "sequence_ratio_mask": (rng.random(len(t) - 1) > 0.3).astype(np.float32)} for t, _ in rows]
    plain = [(t, None) for t, _ in rows]
    for loss, cfg in (("importance_sampling", None), ("ppo", {"clip_low_threshold": 0.9, "clip_high_threshold": 1.1}),
                      ("cispo", None), ("dro", {"beta": 0.1}), ("gspo", None)):
        got = remote.forward(sdk_datums(plain, extra), loss, cfg).result()
        want = local.forward(engine_datums(plain, extra), loss, cfg).result()
        assert got.metrics["loss:sum"] == want.metrics["loss:sum"], loss


def test_saved_weights_equal_the_engine(server, trained, tmp_path):
    _, remote, local, _ = trained
    state = remote.save_state("after3").result().path
    sampler = remote.save_weights_for_sampler("after3").result().path
    assert state.startswith("tinker://") and state.endswith("/weights/after3")
    model_id = state.removeprefix("tinker://").split("/")[0]
    folder = server.state_dir / "checkpoints" / model_id
    local.save_state(str(tmp_path / "state")).result()
    local.save_weights_for_sampler(str(tmp_path / "sampler")).result()
    for mine, theirs in (("weights/after3/weights.safetensors", "state/weights.safetensors"),
                         ("sampler_weights/after3/adapter_model.safetensors", "sampler/adapter_model.safetensors")):
        got, want = load_file(str(folder / mine)), load_file(str(tmp_path / theirs))
        assert got.keys() == want.keys() and len(got) > 10
        assert all(torch.equal(got[k], want[k]) for k in want)
    assert sampler.endswith("/sampler_weights/after3")


def test_sampling_equals_the_engine(server, trained):
    sdk, remote, local, _ = trained
    prompt = tokens(6, 42)[:6].tolist()
    params = dict(max_tokens=8, seed=5, temperature=1.0)
    want = local.save_weights_and_get_sampling_client().sample(prompt, 3, SamplingParams(**params),
                                                               include_prompt_logprobs=True).result()
    sdk_prompt = types.ModelInput.from_ints(prompt)
    snapshot = remote.save_weights_and_get_sampling_client().result()
    path = remote.save_weights_for_sampler("for-sampling").result().path
    from_path = sdk.create_sampling_client(model_path=path).result()
    for sampler in (snapshot, from_path):
        got = sampler.sample(sdk_prompt, 3, types.SamplingParams(**params), include_prompt_logprobs=True).result()
        assert [s.tokens for s in got.sequences] == [s.tokens for s in want.sequences]
        for g, w in zip(got.sequences, want.sequences, strict=True):
            np.testing.assert_allclose(g.logprobs, w.logprobs, rtol=0, atol=1e-5)  # un-merged vs merged LoRA
        assert got.prompt_logprobs[0] is None
        np.testing.assert_allclose(got.prompt_logprobs[1:], want.prompt_logprobs[1:], rtol=0, atol=1e-5)
    np.testing.assert_allclose(snapshot.compute_logprobs(sdk_prompt).result()[1:],
                               local.save_weights_and_get_sampling_client().compute_logprobs(prompt).result()[1:],
                               rtol=0, atol=1e-5)
    base = sdk.create_sampling_client(base_model=TINY).result()
    got = base.sample(sdk_prompt, 2, types.SamplingParams(**params)).result()
    want = SamplingClient.from_path(TINY, torch.device("cpu")).sample(prompt, 2, SamplingParams(**params)).result()
    assert [s.tokens for s in got.sequences] == [s.tokens for s in want.sequences]
    np.testing.assert_allclose([s.logprobs for s in got.sequences], [s.logprobs for s in want.sequences], atol=1e-5)


def test_chunked_call_and_custom_loss_accumulate_like_one_call(server, tmp_path):
    """5 datums go as 3 chunks (sent in parallel, the first last): their gradients add up to the
    single in-process call's; forward_backward_custom's forward + weighted backward equal the engine's."""
    sdk = server.sdk()
    remote = sdk.create_lora_training_client(TINY, rank=8, seed=11).result()
    local = ServiceClient(tmp_path, device="cpu").create_lora_training_client(TINY, rank=8, seed=11)
    rows = batch(3, (5, 17, 9, 30, 11))

    def custom(data, logprobs):
        seq = torch.stack([lp.sum() for lp in logprobs])
        loss = -torch.nn.functional.logsigmoid(0.1 * (seq[0] - seq[1])) + (seq ** 2).mean() * 1e-3
        return loss, {"custom:mean": float(loss.detach())}

    for call in ("chunked", "custom"):
        if call == "chunked":
            got = remote.forward_backward(sdk_datums(rows), "cross_entropy").result()
            want = local.forward_backward(engine_datums(rows), "cross_entropy").result()
        else:
            got = remote.forward_backward_custom(sdk_datums(rows), custom).result()
            want = local.forward_backward_custom(engine_datums(rows), custom).result()
            assert got.metrics["custom:mean"] == pytest.approx(want.metrics["custom:mean"], rel=1e-6)
        assert got.metrics["loss:sum"] == pytest.approx(want.metrics["loss:sum"], rel=1e-5)
        assert len(got.loss_fn_outputs) == 5
        step = remote.optim_step(types.AdamParams(**ADAM)).result().metrics["grad_norm:mean"]
        assert step == pytest.approx(local.optim_step(AdamParams(**ADAM)).result().metrics["grad_norm:mean"], rel=1e-5)
    after = remote.forward(sdk_datums(rows), "cross_entropy").result().metrics["loss:sum"]
    assert after == pytest.approx(local.forward(engine_datums(rows), "cross_entropy").result().metrics["loss:sum"],
                                  rel=1e-5)


def test_resume_from_state_with_optimizer_equals_going_on(server, trained):
    sdk, remote, local, _ = trained
    path = remote.save_state("resume-here").result().path
    resumed = sdk.create_training_client_from_state_with_optimizer(path).result()
    weights_only = sdk.create_training_client_from_state(path).result()
    rows = batch(20, (14, 6))
    got = resumed.forward_backward(sdk_datums(rows), "cross_entropy").result()
    resumed.optim_step(types.AdamParams(**ADAM)).result()
    want = local.forward_backward(engine_datums(rows), "cross_entropy").result()
    local.optim_step(AdamParams(**ADAM)).result()
    assert got.metrics["loss:sum"] == want.metrics["loss:sum"]
    check = batch(21, (10, 10))
    assert resumed.forward(sdk_datums(check), "cross_entropy").result().metrics["loss:sum"] == \
        local.forward(engine_datums(check), "cross_entropy").result().metrics["loss:sum"]
    assert weights_only.forward(sdk_datums(rows), "cross_entropy").result().metrics["loss:sum"] == \
        got.metrics["loss:sum"]  # same weights, before the step


def test_info_capabilities_and_tokenizer(server, trained):
    sdk, remote, _, _ = trained
    assert f"at {server.url}" in server.log_text()  # the CLI prints the base URL
    with pytest.warns(FutureWarning):  # deprecated in 0.38 in favour of RestClient, still served
        caps = sdk.get_server_capabilities()
    assert [m.model_name for m in caps.supported_models] == [TINY]
    info = remote.get_info()
    assert info.lora_rank == 4 and info.model_data.model_name == TINY
    tok = remote.get_tokenizer()  # AutoTokenizer on the folder get_info names: no hub
    from posttrain import get_tokenizer

    assert tok.encode("Hello, world", add_special_tokens=False) == get_tokenizer("posttrain:llama3").encode("Hello, world")
    assert isinstance(sdk, tinker.ServiceClient)
