"""The engine at scale changes no number: packed attention (per sequence, no mask), activation
checkpointing and the chunked output layer give what an independent per-sequence computation gives,
on batches mixing lengths from 1 to 2,000 tokens; models that cannot be packed are not."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from posttrain.engine import AdamParams, SamplingParams, ServiceClient
from posttrain.engine import forward as forward_module
from posttrain.engine.attention import can_pack
from posttrain.engine.forward import MemorySettings, PackedForward
from posttrain.engine.models import resolve_model
from posttrain.errors import PosttrainError
from posttrain.types import Datum
from tests.engine.test_losses import assert_grad_close, reference_loss
from tests.engine_util import TINY, plain_logprobs, plain_model, tokens_of

MIXED = (1, 2000, 37, 513, 2, 1200)
SMALL_MEMORY = dict(gradient_checkpointing=True, logprob_chunk_tokens=7, micro_batch_tokens=2600)


def mixed_datums(lengths=MIXED, rl: bool = False) -> list[Datum]:
    out = []
    for i, n in enumerate(lengths):
        toks = tokens_of(n, 100 + i)
        rng = np.random.default_rng(i)
        if rl:
            extra = {"logprobs": rng.normal(-10, 1, n).astype(np.float32),
                     "advantages": rng.normal(0, 1, n).astype(np.float32)}
            out.append(Datum.from_arrays((toks[:-1],), toks[1:], None, extra))
        else:
            out.append(Datum.from_arrays((toks[:-1],), toks[1:], rng.uniform(0, 2, n).astype(np.float32)))
    return out


@pytest.fixture(scope="module")
def reference():
    return plain_model()


@pytest.mark.parametrize("loss", ["cross_entropy", "ppo"])
def test_mixed_lengths_with_checkpointing_and_chunks_match_plain_pytorch(loss, reference, tmp_path):
    datums = mixed_datums(rl=loss == "ppo")
    client = ServiceClient(tmp_path, device="cpu", **SMALL_MEMORY).create_full_finetune_training_client(TINY, seed=0)
    out = client.forward_backward(datums, loss).result()

    reference.zero_grad(set_to_none=True)
    lps = [plain_logprobs(reference, d) for d in datums]
    total = sum(reference_loss(loss, lp, d, {}) for lp, d in zip(lps, datums, strict=True))
    total.backward()
    assert out.metrics["loss:sum"] == pytest.approx(float(total.detach()), rel=1e-5, abs=1e-3)
    for got, want in zip(out.logprobs(), lps, strict=True):
        np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-5, atol=1e-5)
    ref = dict(reference.named_parameters())
    for name, p in client.model.named_parameters():
        assert_grad_close(p.grad, ref[name].grad)


def test_lora_head_trained_inside_chunks_matches_peft_forward(tmp_path):
    """The adapted head runs inside each chunk; gradients equal those of the plain peft model run one
    sequence at a time with the same adapter weights."""
    from peft import LoraConfig, get_peft_model

    datums = mixed_datums((3, 300, 41, 1))
    client = ServiceClient(tmp_path, device="cpu", **SMALL_MEMORY).create_lora_training_client(TINY, rank=4, seed=1)
    client.forward_backward(datums, "cross_entropy")
    client.optim_step(AdamParams(learning_rate=1e-2)).result()  # B != 0 from here on
    out = client.forward_backward(datums, "cross_entropy").result()

    plain = get_peft_model(plain_model(), LoraConfig(r=4, lora_alpha=32, target_modules=client.lora.target_modules()))
    ours = dict(client.model.named_parameters())
    with torch.no_grad():
        for name, p in plain.named_parameters():
            p.copy_(ours[name])
    lps = [plain_logprobs(plain, d) for d in datums]
    sum(-(torch.from_numpy(d.weights) * lp).sum() for lp, d in zip(lps, datums, strict=True)).backward()
    head_lora = [n for n, p in ours.items() if p.requires_grad and "lm_head" in n]
    assert head_lora, "the head must be adapted in this test"
    for got, want in zip(out.logprobs(), lps, strict=True):
        np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-5, atol=1e-5)
    for name, p in plain.named_parameters():
        if p.requires_grad:
            assert_grad_close(ours[name].grad, p.grad)


def test_checkpointing_and_chunk_size_change_no_number(tmp_path):
    datums = mixed_datums((5, 400, 33))
    results = []
    for memory in ({"gradient_checkpointing": False}, {"gradient_checkpointing": True, "logprob_chunk_tokens": 13}):
        c = ServiceClient(tmp_path, device="cpu", **memory).create_lora_training_client(TINY, rank=4, seed=0)
        out = c.forward_backward(datums, "cross_entropy").result()
        grads = {n: p.grad.clone() for n, p in c.model.named_parameters() if p.requires_grad}
        results.append((out.metrics["loss:sum"], out.logprobs(), grads))
    (la, lpa, ga), (lb, lpb, gb) = results
    assert la == pytest.approx(lb, rel=1e-6)
    for a, b in zip(lpa, lpb, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    for name in ga:
        assert_grad_close(ga[name], gb[name])  # the head sums its chunks in another order


def test_packed_attention_is_per_sequence_and_builds_no_mask(tmp_path, monkeypatch):
    calls: list[tuple[int, bool]] = []
    real = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kw):
        calls.append((q.shape[2], attn_mask is not None))
        return real(q, k, v, attn_mask=attn_mask, **kw)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    client = ServiceClient(tmp_path, device="cpu").create_lora_training_client(TINY, rank=4, seed=0)
    calls.clear()
    lengths = (5, 17, 9, 30)
    client.forward_backward(mixed_datums(lengths), "cross_entropy").result()
    layers = client.base.model.config.num_hidden_layers
    assert sorted(calls) == sorted((n, False) for n in lengths for _ in range(layers))


def test_activation_checkpointing_turns_on_automatically_for_large_micro_batches(tmp_path, monkeypatch):
    client = ServiceClient(tmp_path, device="cpu").create_lora_training_client(TINY, rank=4, seed=0)
    fwd = client._forward
    per_token = forward_module.activation_bytes_per_token(fwd.config, torch.float32)
    assert per_token == 2 * (16 * 64 + 6 * 128) * 4  # 2 layers, hidden 64, intermediate 128, fp32
    wrapped: list[str] = []
    real = forward_module.checkpoint

    def spy(fn, *a, **k):
        wrapped.append(getattr(fn, "__qualname__", type(fn).__name__))
        return real(fn, *a, **k)

    monkeypatch.setattr(forward_module, "checkpoint", spy)
    datums = mixed_datums((20, 30))
    fwd.activation_budget = 50 * per_token + 1  # 49 tokens fit, 50 do not
    client.forward_backward(datums, "cross_entropy").result()
    assert not any("DecoderLayer" in w for w in wrapped)
    fwd.activation_budget = 50 * per_token - 1
    with torch.no_grad():
        assert not fwd.checkpoints(50)
    assert fwd.checkpoints(50)
    wrapped.clear()
    client.forward_backward(datums, "cross_entropy").result()
    assert sum("DecoderLayer" in w for w in wrapped) == 2  # each layer once


def test_memory_settings_are_checked_up_front():
    for kwargs, needle in (({"micro_batch_tokens": 0}, "micro_batch_tokens"),
                           ({"logprob_chunk_tokens": -3}, "logprob_chunk_tokens")):
        with pytest.raises(PosttrainError, match=needle):
            ServiceClient("unused", device="cpu", **kwargs)
    assert MemorySettings().micro_batch_tokens == 8192


def test_an_output_layer_the_chunks_do_not_reproduce_is_refused():
    model = plain_model()
    model.config.final_logit_softcapping = 1.0  # Llama's forward ignores it; the chunked head would not
    with pytest.raises(PosttrainError, match="output layer"):
        PackedForward(model)


# -- models that carry state along the row -----------------------------------------------------------------
def tiny_qwen3_next(folder):
    config = AutoConfig.for_model(
        "qwen3_next", vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, linear_num_value_heads=4, linear_num_key_heads=2,
        linear_key_head_dim=16, linear_value_head_dim=16, num_experts=4, num_experts_per_tok=2,
        moe_intermediate_size=32, shared_expert_intermediate_size=32, max_position_embeddings=2048,
        layer_types=["linear_attention", "full_attention"])
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(str(folder))
    tiny_folder, _ = resolve_model(TINY)
    for f in tiny_folder_files(tiny_folder):
        shutil.copy(f, folder)
    return config


def tiny_folder_files(folder):
    from pathlib import Path

    return [p for p in Path(folder).iterdir() if "token" in p.name]


def test_linear_attention_hybrid_is_not_packed(tmp_path):
    config = tiny_qwen3_next(tmp_path / "qwen3next")
    assert not can_pack(config)
    datums = mixed_datums((12, 9, 20))
    plain = AutoModelForCausalLM.from_pretrained(str(tmp_path / "qwen3next"), dtype=torch.float32).eval()
    with torch.no_grad():
        alone = [plain_logprobs(plain, d).numpy() for d in datums]
        # the hazard: packed into one row, the second sequence sees the first through the recurrent state
        ids = torch.from_numpy(np.concatenate([d.input_tokens for d in datums[:2]]))[None]
        pos = torch.cat([torch.arange(12), torch.arange(9)])[None]
        leaked = torch.log_softmax(plain(input_ids=ids, position_ids=pos).logits[0, 12:], -1)
        leaked = leaked.gather(-1, torch.from_numpy(datums[1].target_tokens)[:, None]).squeeze(-1).numpy()
    assert np.abs(leaked - alone[1]).max() > 1e-2

    client = ServiceClient(tmp_path / "ck", device="cpu").create_full_finetune_training_client(
        str(tmp_path / "qwen3next"), seed=0)
    got = client.forward(datums, "cross_entropy").result().logprobs()
    for g, want in zip(got, alone, strict=True):
        np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-5)


def test_attention_models_pack_and_the_others_do_not():
    assert can_pack(AutoConfig.for_model("llama"))
    assert can_pack(AutoConfig.for_model("qwen3"))
    assert can_pack(AutoConfig.for_model("mistral", sliding_window=8))
    assert not can_pack(AutoConfig.for_model("mamba"))
    assert not can_pack(AutoConfig.for_model("qwen3_next"))
    assert not can_pack(AutoConfig.for_model("llama", num_hidden_layers=2, layer_types=["full_attention", "conv"]))
    assert not can_pack(AutoConfig.for_model("llama", num_hidden_layers=2, layer_types=["chunked_attention", "full_attention"]))
    assert not can_pack(AutoConfig.for_model("gemma2"))  # soft-capped attention scores


def test_a_model_that_ignores_the_boundaries_is_caught_by_the_probe(tmp_path, monkeypatch):
    """If the architecture list let a recurrent model through, the packing probe at start-up would see
    the leak and run sequences one by one."""
    from posttrain.engine import forward

    tiny_qwen3_next(tmp_path / "qwen3next")
    model = AutoModelForCausalLM.from_pretrained(str(tmp_path / "qwen3next"), dtype=torch.float32).eval()
    monkeypatch.setattr(forward, "can_pack", lambda config: True)
    with pytest.warns(UserWarning, match="each sequence runs on its own"):
        runner = PackedForward(model)
    assert not runner.packs


def test_sliding_window_model_packed_matches_each_sequence_alone(tmp_path):
    """Mistral-style sliding window (8) with grouped-query heads: sequences longer than the window get
    the band, shorter ones plain causal attention; each equals transformers' own forward alone."""
    config = AutoConfig.for_model("mistral", vocab_size=49152, hidden_size=64, intermediate_size=128,
                                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                  max_position_embeddings=512, sliding_window=8, tie_word_embeddings=True)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(str(tmp_path / "mistral"))
    for f in tiny_folder_files(resolve_model(TINY)[0]):
        shutil.copy(f, tmp_path / "mistral")
    plain = AutoModelForCausalLM.from_pretrained(str(tmp_path / "mistral"), dtype=torch.float32).eval()
    datums = mixed_datums((30, 5, 8, 9, 41))
    with torch.no_grad():
        alone = [plain_logprobs(plain, d).numpy() for d in datums]
        whole = plain_logprobs(plain, datums[0]).numpy()
        causal = AutoModelForCausalLM.from_pretrained(str(tmp_path / "mistral"), dtype=torch.float32,
                                                      sliding_window=None).eval()
        assert np.abs(plain_logprobs(causal, datums[0]).numpy() - whole).max() > 1e-3  # the window matters
    client = ServiceClient(tmp_path / "ck", device="cpu").create_full_finetune_training_client(
        str(tmp_path / "mistral"), seed=0)
    assert client._forward.packs
    for got, want in zip(client.forward(datums, "cross_entropy").result().logprobs(), alone, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_no_attention_mask_is_built_for_a_packed_batch(tmp_path, monkeypatch):
    import transformers.masking_utils as masking

    client = ServiceClient(tmp_path, device="cpu").create_lora_training_client(TINY, rank=4, seed=0)
    built: list[tuple] = []
    real = masking.sdpa_mask
    monkeypatch.setattr(masking, "sdpa_mask", lambda *a, **k: built.append(a) or real(*a, **k))
    client.forward(mixed_datums((5, 17, 9)), "cross_entropy").result()
    assert built == []
    sampler = client.save_weights_and_get_sampling_client()
    sampler.sample_many([[5, 6, 7], [8, 9]], 1, SamplingParams(max_tokens=2, seed=0))[1].result()
    assert built  # generation with left padding still gets its padding mask


def test_recurrent_hybrid_samples_with_its_own_cache(tmp_path):
    tiny_qwen3_next(tmp_path / "qwen3next")
    sampler = ServiceClient(tmp_path / "ck", device="cpu").create_sampling_client(base_model=str(tmp_path / "qwen3next"))
    out = sampler.sample([5, 6, 7, 8], 2, SamplingParams(max_tokens=3, seed=0)).result()
    assert [len(s.tokens) for s in out.sequences] == [3, 3]
    full = [5, 6, 7, 8, *out.sequences[0].tokens]
    np.testing.assert_allclose(sampler.compute_logprobs(full).result()[4:], out.sequences[0].logprobs,
                               rtol=1e-4, atol=1e-4)
