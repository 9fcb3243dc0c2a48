"""TrainingClient behaviour: accumulation, LoRA initialisation, seeds, checkpoints, sampler folders,
async ordering, and bad input that changes nothing."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from posttrain.engine import AdamParams, DatumError, ModelInput, ServiceClient
from posttrain.engine.checkpoints import CheckpointError
from posttrain.engine.models import ModelLoadError
from posttrain.errors import PosttrainError
from posttrain.types import Datum
from tests.engine_util import TINY, ce_datums, plain_logprobs, plain_model

ADAM = AdamParams(learning_rate=5e-3, weight_decay=0.01, grad_clip_norm=1.0)


def lora_client(tmp_path, seed=0, **kw):
    return ServiceClient(tmp_path, device="cpu", **kw).create_lora_training_client(TINY, rank=4, seed=seed)


def weights(client) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in client.model.named_parameters()}


def test_two_calls_then_step_equal_one_concatenated_call(tmp_path):
    data = ce_datums()
    a, b = lora_client(tmp_path / "a"), lora_client(tmp_path / "b")
    a.forward_backward(data[:2], "cross_entropy")
    a.forward_backward(data[2:], "cross_entropy").result()
    b.forward_backward(data, "cross_entropy").result()
    grads_b = {n: p.grad for n, p in b.model.named_parameters() if p.requires_grad}
    for name, p in a.model.named_parameters():
        if p.requires_grad:  # the accumulated gradient is the concatenated batch's (summation order aside)
            assert float((p.grad - grads_b[name]).norm()) <= 1e-5 * float(grads_b[name].norm()) + 1e-12
    sa, sb = a.optim_step(ADAM).result(), b.optim_step(ADAM).result()
    assert sa.metrics["grad_norm:mean"] == pytest.approx(sb.metrics["grad_norm:mean"], rel=1e-5)
    la = a.forward(data, "cross_entropy").result().metrics["loss:sum"]
    lb = b.forward(data, "cross_entropy").result().metrics["loss:sum"]
    assert la == pytest.approx(lb, rel=1e-4)


def test_lora_at_initialisation_gives_the_base_models_logprobs(tmp_path):
    data = ce_datums()
    lora = lora_client(tmp_path).forward(data, "cross_entropy").result()
    full = ServiceClient(tmp_path, device="cpu").create_full_finetune_training_client(TINY).forward(
        data, "cross_entropy").result()
    plain = plain_model()
    for got, same_packing, d in zip(lora.logprobs(), full.logprobs(), data, strict=True):
        np.testing.assert_array_equal(got, same_packing)  # B = 0: the adapter adds exactly nothing
        np.testing.assert_allclose(got, plain_logprobs(plain, d).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_same_seed_same_adapter_and_losses(tmp_path):
    runs = []
    for seed in (3, 3, 4):
        c = lora_client(tmp_path, seed=seed)
        init = weights(c)
        losses = []
        for _ in range(2):
            losses.append(c.forward_backward(ce_datums(), "cross_entropy").result().metrics["loss:sum"])
            c.optim_step(ADAM)
        runs.append((init, losses))
    (w1, l1), (w2, l2), (w3, _) = runs
    lora_a = [n for n in w1 if "lora_A" in n]
    assert lora_a and all(torch.equal(w1[n], w2[n]) for n in w1) and l1 == l2
    assert not all(torch.equal(w1[n], w3[n]) for n in lora_a)
    assert l1[1] < l1[0]


def test_save_load_with_optimizer_resumes_exactly(tmp_path):
    data = ce_datums()
    steps = [data[:2], data[2:], data[1:3], data]
    straight = lora_client(tmp_path / "a")
    want = []
    for batch in steps:
        want.append(straight.forward_backward(batch, "cross_entropy").result().metrics["loss:sum"])
        straight.optim_step(ADAM)

    service = ServiceClient(tmp_path / "b", device="cpu")
    first = service.create_lora_training_client(TINY, rank=4, seed=0)
    got = []
    for batch in steps[:2]:
        got.append(first.forward_backward(batch, "cross_entropy").result().metrics["loss:sum"])
        first.optim_step(ADAM)
    path = first.save_state("step2").result().path
    assert json.loads((tmp_path / "b" / "step2" / "posttrain_checkpoint.json").read_text())["steps"] == 2
    resumed = service.create_training_client_from_state_with_optimizer(path)
    for batch in steps[2:]:
        got.append(resumed.forward_backward(batch, "cross_entropy").result().metrics["loss:sum"])
        resumed.optim_step(ADAM)
    assert got == want  # bit-identical on CPU

    weights_only = service.create_training_client_from_state(path)
    fresh_adam = weights_only.forward_backward(steps[2], "cross_entropy").result().metrics["loss:sum"]
    assert fresh_adam == want[2]  # same weights; the optimizer state is what differs
    weights_only.optim_step(ADAM)
    assert weights_only.forward(steps[3], "cross_entropy").result().metrics["loss:sum"] != want[3]


def test_sampler_folder_loads_with_plain_peft_and_transformers(tmp_path):
    from peft import PeftModel

    data = ce_datums()
    for make in ("lora", "full"):
        service = ServiceClient(tmp_path / make, device="cpu")
        c = (service.create_lora_training_client(TINY, rank=4, seed=0) if make == "lora"
             else service.create_full_finetune_training_client(TINY, seed=0))
        for _ in range(2):
            c.forward_backward(data, "cross_entropy")
            c.optim_step(ADAM)
        want = c.forward(data, "cross_entropy").result().logprobs()
        folder = c.save_weights_for_sampler("sampler").result().path
        if make == "lora":
            config = json.loads((tmp_path / make / "sampler" / "adapter_config.json").read_text())
            base = AutoModelForCausalLM.from_pretrained(config["base_model_name_or_path"])
            model = PeftModel.from_pretrained(base, folder).eval()
        else:
            model = AutoModelForCausalLM.from_pretrained(folder).eval()
        with torch.no_grad():
            for d, w in zip(data, want, strict=True):
                got = plain_logprobs(model, d)
                np.testing.assert_allclose(got.numpy(), w, rtol=1e-4, atol=1e-4)
        # and our own sampler reads the same folder
        sampler = service.create_sampling_client(model_path=folder)
        lp = sampler.compute_logprobs(ModelInput.from_ints([*data[3].input_tokens, data[3].target_tokens[-1]])).result()
        np.testing.assert_allclose(lp[1:], want[3], rtol=1e-4, atol=1e-4)


def test_async_calls_keep_submission_order(tmp_path):
    data = ce_datums()
    sync = lora_client(tmp_path / "s")
    want = []
    for _ in range(2):
        want.append(sync.forward_backward(data, "cross_entropy").result().metrics["loss:sum"])
        sync.optim_step(ADAM)

    async def pipelined() -> list[float]:
        c = lora_client(tmp_path / "a")
        futures = []
        for _ in range(2):  # submit both steps before reading anything, as the pipelined loops do
            futures.append(await c.forward_backward_async(data, "cross_entropy"))
            futures.append(await c.optim_step_async(ADAM))
        return [(await f.result_async()).metrics["loss:sum"] for f in futures[::2]]

    assert asyncio.run(pipelined()) == want


def _bad_datums() -> list[tuple[list, str]]:
    good = ce_datums()
    d = good[1]
    rl_ok = Datum.from_arrays(d.input_chunks, d.target_tokens, None, {"logprobs": np.zeros(len(d), np.float32),
                                                          "advantages": np.ones(len(d), np.float32)})
    rl = Datum.from_arrays(d.input_chunks, d.target_tokens, None, {"logprobs": np.zeros(len(d), np.float32)})
    oov = Datum.from_arrays((np.array([1, 2, 99999]),), np.array([2, 3, 4]), np.ones(3, np.float32))
    long = Datum.from_arrays((np.arange(3000) % 100,), np.arange(3000) % 100, np.ones(3000, np.float32))
    return [([rl_ok, rl], "datum 1: loss 'importance_sampling' needs loss input(s) ['advantages']"),
            ([oov], "datum 0: token id 99999 at model_input position 2 is outside the model's vocabulary (size 49152)"),
            ([good[0], long], "datum 1: 3000 tokens exceed the model's context length of 2048"),
            ([], "no datums")]


@pytest.mark.parametrize("case", range(4))
def test_bad_input_raises_at_once_and_changes_nothing(tmp_path, case):
    c = lora_client(tmp_path)
    before = weights(c)
    data, message = _bad_datums()[case]
    loss = "importance_sampling" if case == 0 else "cross_entropy"
    with pytest.raises(DatumError) as err:
        c.forward_backward(data, loss)
    assert message in str(err.value)
    c.optim_step(AdamParams(learning_rate=1.0)).result()  # nothing was accumulated
    after = weights(c)
    assert all(torch.equal(before[n], after[n]) for n in before)


def test_bad_arguments(tmp_path):
    c = lora_client(tmp_path)
    with pytest.raises(PosttrainError, match="unknown loss_fn 'crossentropy'; built-in losses: cross_entropy"):
        c.forward_backward(ce_datums(), "crossentropy")
    with pytest.raises(PosttrainError, match=r"loss_fn_config for 'ppo' has unknown keys \['clip'\]"):
        c.forward_backward(ce_datums(), "ppo", {"clip": 0.2})
    with pytest.raises(CheckpointError, match="no checkpoint at .*nowhere: the path does not exist"):
        c.load_state(str(tmp_path / "nowhere"))
    with pytest.raises(CheckpointError, match="is not a posttrain checkpoint"):
        c.load_state(str(tmp_path))
    with pytest.raises(ModelLoadError, match="unknown offline model 'posttrain:nope'"):
        ServiceClient(tmp_path).create_lora_training_client("posttrain:nope")
    with pytest.raises(PosttrainError, match="LoRA rank must be at least 1"):
        ServiceClient(tmp_path).create_lora_training_client(TINY, rank=0)


def test_checkpoint_from_another_base_model_is_refused(tmp_path):
    service = ServiceClient(tmp_path, device="cpu")
    other = service.create_lora_training_client("posttrain:tiny-llama3", rank=4, seed=0)
    path = other.save_state("llama").result().path
    c = service.create_lora_training_client(TINY, rank=4, seed=0)
    before = weights(c)
    with pytest.raises(CheckpointError, match="is from base model 'posttrain:tiny-llama3', but this client trains "
                                              "'posttrain:tiny-smollm2'"):
        c.load_state_with_optimizer(path)
    with pytest.raises(CheckpointError, match="already exists"):
        other.save_state("llama")
    assert all(torch.equal(before[n], p) for n, p in weights(c).items())


def test_corrupt_checkpoint_is_refused(tmp_path):
    c = lora_client(tmp_path)
    path = c.save_state("s").result().path
    (tmp_path / "s" / "weights.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="weights.safetensors: cannot read the weights"):
        c.load_state(path)


def test_interrupted_save_leaves_no_checkpoint(tmp_path, monkeypatch):
    c = lora_client(tmp_path)

    def crash(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        c.save_state("s").result()
    assert not (tmp_path / "s").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".s.tmp")]


def test_sampler_folder_carries_its_tokenizer_and_a_shareable_base_name(tmp_path):
    from transformers import AutoTokenizer

    from posttrain.engine.models import SMOLLM2, BaseModel

    c = lora_client(tmp_path)
    folder = c.save_weights_for_sampler("s").result().path
    tok = AutoTokenizer.from_pretrained(folder)  # the folder alone: no posttrain, no cache
    assert tok("Hello world", add_special_tokens=False)["input_ids"] == c.base.tokenizer.encode("Hello world")
    # an offline source is named by the hub id it comes from; a hub id by itself; a local folder by its path
    assert BaseModel(SMOLLM2, "/cache/smollm2", None, None).shareable_name == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert BaseModel("org/model", "org/model", None, None).shareable_name == "org/model"
    assert BaseModel(str(tmp_path), str(tmp_path), None, None).shareable_name == str(tmp_path)


def test_a_checkpoint_of_another_base_model_is_refused(tmp_path):
    from posttrain.recipes.sft import recipe_config, run_sft

    other = ServiceClient(tmp_path / "ck", device="cpu").create_lora_training_client("posttrain:tiny-llama3", rank=4,
                                                                                      seed=0)
    path = other.save_state("llama").result().path
    cfg = recipe_config("default", model_name=TINY, load_checkpoint_path=path, max_steps=1, test_size=4,
                        batch_size=4, max_length=64, lora_rank=4, log_path=str(tmp_path / "run"))
    with pytest.raises(CheckpointError, match="from base model 'posttrain:tiny-llama3', not 'posttrain:tiny-smollm2'"):
        run_sft(cfg)
