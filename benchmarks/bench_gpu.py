"""One GPU measurement, in a process of its own: a LoRA SFT step or sampling on a real-size model.

    python benchmarks/bench_gpu.py train --model posttrain:random-llama3-8b --seq-len 32768
    python benchmarks/bench_gpu.py sample --model posttrain:random-llama3-8b

``train``: LoRA rank 32 ``forward_backward`` + ``optim_step`` on ``--batch`` sequences of ``--seq-len``
tokens, default memory settings; prints tokens/s, MFU and peak GPU memory. MFU counts the FLOPs a LoRA
step needs, recomputation excluded: ``4·N`` per token for the frozen weights (forward and the input
gradient; no weight gradient), plus causal attention ``6·L·S·d`` per token (``L`` layers, ``S`` sequence
length, ``d`` = heads × head dim), over the GPU's dense bf16 peak (``--peak-tflops``, else from its name).
``sample``: 8 samples of 256 new tokens from one 512-token prompt; prints new tokens/s.

The ``posttrain:random-*`` models have the published architectures and random weights, so nothing is
downloaded; speed and memory do not depend on the weights' values. ``benchmarks/gpu.sh`` runs the set.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from posttrain.engine import AdamParams, SamplingParams, ServiceClient
from posttrain.types import Datum

PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0,
                    "4090": 165.0}


def peak_tflops(name: str, given: float | None) -> float | None:
    return given if given is not None else next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def flops_per_token(model: torch.nn.Module, seq_len: int) -> float:
    config = model.config
    embed = model.get_input_embeddings().weight
    params = sum(p.numel() for p in model.parameters() if p is not embed)
    if config.tie_word_embeddings:
        params += embed.numel()  # the tied head is a matmul even though the lookup is not
    heads_dim = config.num_attention_heads * getattr(config, "head_dim", config.hidden_size // config.num_attention_heads)
    return 4 * params + 6 * config.num_hidden_layers * seq_len * heads_dim


def train(args: argparse.Namespace) -> dict:
    service = ServiceClient("/tmp/posttrain-bench-gpu", micro_batch_tokens=max(8192, args.batch * args.seq_len))
    client = service.create_lora_training_client(args.model, rank=32, seed=0)
    rng = np.random.default_rng(0)
    vocab = client.base.vocab_size
    datums = [Datum.from_arrays((rng.integers(0, vocab, args.seq_len),), rng.integers(0, vocab, args.seq_len),
                    np.ones(args.seq_len, np.float32)) for _ in range(args.batch)]
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.steps):
        torch.cuda.synchronize()
        start = time.perf_counter()
        client.forward_backward(datums, "cross_entropy")
        client.optim_step(AdamParams(learning_rate=1e-4)).result()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    seconds = float(np.median(times[1:] if len(times) > 1 else times))
    tokens = args.batch * args.seq_len
    peak = peak_tflops(torch.cuda.get_device_name(), args.peak_tflops)
    achieved = flops_per_token(client.base.model, args.seq_len) * tokens / seconds / 1e12
    return {"mode": "train", "model": args.model, "batch": args.batch, "seq_len": args.seq_len,
            "step_s": round(seconds, 3), "tokens_per_s": round(tokens / seconds),
            "tflops": round(achieved, 1), "mfu": round(achieved / peak, 3) if peak else None,
            "checkpointing": client._forward.checkpoints(tokens),
            "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}


def sample(args: argparse.Namespace) -> dict:
    sampler = ServiceClient("/tmp/posttrain-bench-gpu").create_sampling_client(base_model=args.model)
    prompt = np.random.default_rng(0).integers(0, sampler.base.vocab_size, 512).tolist()
    params = SamplingParams(max_tokens=256, seed=0, stop=[-1])  # a stop id that never comes: full length
    sampler.sample(prompt, 8, params).result()  # warm-up
    torch.cuda.reset_peak_memory_stats()
    torch.cuda.synchronize()
    start = time.perf_counter()
    out = sampler.sample(prompt, 8, params).result()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    produced = sum(len(s.tokens) for s in out.sequences)
    return {"mode": "sample", "model": args.model, "samples": 8, "prompt": 512, "new_tokens": produced,
            "tokens_per_s": round(produced / seconds, 1), "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["train", "sample"])
    ap.add_argument("--model", default="posttrain:random-llama3-1b")
    ap.add_argument("--seq-len", type=int, default=8192)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3, help="the first is warm-up; the median of the rest counts")
    ap.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, if its name is not known here")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu.py measures a CUDA GPU and none is visible")
    result = train(args) if args.mode == "train" else sample(args)
    print(json.dumps({**result, "gpu": torch.cuda.get_device_name(), "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
