"""Engine throughput: a LoRA cross-entropy step and sampling, against the usual way of doing the same.

1. Training: ``forward_backward`` + ``optim_step`` (LoRA rank 32, SmolLM2-135M-Instruct) on a batch of
   real chat conversations of mixed lengths, packed without padding, against the same step written
   the usual way: a right-padded batch through the HF model wrapped by ``peft``, AdamW. Both count only
   real (non-padding) tokens.
2. Sampling: ``SamplingClient.sample`` (KV cache, per-token logprobs) against ``model.generate`` with
   the same number of new tokens.

    python benchmarks/bench_engine.py [--batch 16] [--max-length 512] [--steps 3] [--model ...]

Prints a table and one JSON line. Peak RSS covers the whole process (both paths loaded).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time

import torch
from _padded import padded_batch, padded_logprobs

from posttrain import get_renderer
from posttrain.data.sources import load_conversations
from posttrain.data.supervised import conversation_to_datum
from posttrain.default_data import default_dataset_path
from posttrain.engine import SMOLLM2, AdamParams, ModelInput, SamplingParams, ServiceClient
from posttrain.engine.lora import LoraSettings
from posttrain.engine.models import load_base_model


def batch_of(renderer, n: int, max_length: int):
    rows = load_conversations(str(default_dataset_path())).select(range(n)).to_list()
    return [conversation_to_datum(r["messages"], renderer, max_length) for r in rows]


def time_engine_step(client, datums, steps: int) -> float:
    client.forward_backward(datums, "cross_entropy")
    client.optim_step(AdamParams(learning_rate=1e-4)).result()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        client.forward_backward(datums, "cross_entropy")
        client.optim_step(AdamParams(learning_rate=1e-4)).result()
    return (time.perf_counter() - start) / steps


def padded_step_fn(model_name: str, datums, device):
    """The usual way: right-padded batch, attention mask, HF model + peft LoRA, AdamW."""
    from peft import LoraConfig, get_peft_model

    base = load_base_model(model_name, device)
    lora = LoraSettings(rank=32)
    model = get_peft_model(base.model, LoraConfig(r=32, lora_alpha=32, target_modules=lora.target_modules()))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, betas=(0.9, 0.95))
    ids, targets, weights, mask = padded_batch(datums, device)

    def step() -> None:
        logp = padded_logprobs(model, ids, targets, mask)
        (-(logp * weights).sum()).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step, model


def time_fn(fn, steps: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def bench_sampling(client, hf_model, prompt: list[int], n: int, new_tokens: int, device) -> tuple[float, float]:
    sampler = client.save_weights_and_get_sampling_client()
    params = SamplingParams(max_tokens=new_tokens, seed=0)
    sampler.sample(ModelInput.from_ints(prompt), n, params).result()
    start = time.perf_counter()
    out = sampler.sample(ModelInput.from_ints(prompt), n, params).result()
    ours = sum(len(s.tokens) for s in out.sequences) / (time.perf_counter() - start)
    ids = torch.tensor([prompt] * n, device=device)
    gen = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=True, pad_token_id=0)
    hf_model.generate(ids, **gen)
    start = time.perf_counter()
    hf_out = hf_model.generate(ids, **gen)
    theirs = (hf_out.shape[1] - len(prompt)) * n / (time.perf_counter() - start)
    return ours, theirs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=SMOLLM2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=64)
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    client = ServiceClient("/tmp/posttrain-bench-ckpt", device=str(device)).create_lora_training_client(
        args.model, rank=32, seed=0)
    renderer = get_renderer("smollm2", client.base.tokenizer)
    datums = batch_of(renderer, args.batch, args.max_length)
    real_tokens = sum(len(d) for d in datums)
    padded_tokens = len(datums) * max(len(d) for d in datums)

    ours = time_engine_step(client, datums, args.steps)
    step, hf_model = padded_step_fn(args.model, datums, device)
    theirs = time_fn(step, args.steps)
    prompt = renderer.build_generation_prompt([{"role": "user", "content": "Write a short poem about the sea."}])
    s_ours, s_theirs = bench_sampling(client, hf_model.merge_and_unload(), prompt, args.samples, args.new_tokens,
                                      device)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu x{torch.get_num_threads()}",
        "python": platform.python_version(), "torch": torch.__version__, "model": args.model,
        "batch": args.batch, "real_tokens": real_tokens, "padded_tokens": padded_tokens,
        "engine_step_s": round(ours, 3), "padded_step_s": round(theirs, 3),
        "engine_tokens_per_s": round(real_tokens / ours, 1), "padded_tokens_per_s": round(real_tokens / theirs, 1),
        "speedup": round(theirs / ours, 2),
        "engine_sample_tokens_per_s": round(s_ours, 1), "hf_generate_tokens_per_s": round(s_theirs, 1),
        "peak_rss_mib": round(peak),
    }
    print(f"train step ({args.batch} conversations, {real_tokens} real tokens, {padded_tokens} padded):")
    print(f"  engine (packed)    {ours:7.2f} s/step  {real_tokens / ours:9.1f} tokens/s")
    print(f"  HF + peft (padded) {theirs:7.2f} s/step  {real_tokens / theirs:9.1f} tokens/s")
    print(f"sampling ({args.samples} x {args.new_tokens} tokens): engine {s_ours:.1f} tokens/s, "
          f"HF generate {s_theirs:.1f} tokens/s")
    print(f"peak RSS {peak:.0f} MiB on {result['device']}")
    print(json.dumps(result), file=sys.stderr if not sys.stdout.isatty() else sys.stdout)


if __name__ == "__main__":
    main()
