"""The engine at scale: packed attention, peak memory of long steps, throughput, shared-prefill sampling.

Every measurement runs in a process of its own (peak RSS is that process's ``ru_maxrss``), and the
table puts each path next to what it is compared with:

* ``attn-packed`` / ``attn-batched`` / ``attn-mask``: forward + backward of one attention layer with
  SmolLM2-135M's shapes on B sequences of L tokens: the engine's packed attention (per-sequence causal
  SDPA), a batched causal SDPA call on the same sequences (the floor), and the dense block-diagonal mask
  that ``transformers`` builds for a packed row (the engine before).
* ``step-8x2048``, ``seq-8192``, ``seq-2048``, ``seq-4096``: one LoRA-32 ``forward_backward`` +
  ``optim_step`` on SmolLM2-135M-Instruct; peak RSS, and from the single-sequence runs (activation
  checkpointing on at every length, as the default turns it on for the long ones) peak RSS per extra
  1k tokens. ``step-8x2048`` uses the default settings (micro-batches of 8,192 tokens).
* ``engine-8x1024`` / ``padded-8x1024`` (and ``padded-4x1024``, ``padded-2x1024``): tokens/s of a step on
  8 real conversations cut at 1,024 tokens, the engine against the usual right-padded HF + peft loop;
  ``engine-8x1024-nockpt`` is the engine with activation checkpointing off (more memory, no recompute).
* ``sample-shared`` / ``sample-each``: 8 samples of 64 tokens from one 512-token prompt, the prompt
  prefilled once and shared, against each sample prefilling it (the engine before).

    python benchmarks/bench_scale.py [--only NAME ...] [--steps 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _corpus import environment, load_corpus, peak_rss_mib

HEADS, KV_HEADS, HEAD_DIM = 9, 3, 64  # SmolLM2-135M
PATHS = ["attn-packed", "attn-batched", "attn-mask", "step-8x2048", "seq-2048", "seq-4096", "seq-8192",
         "engine-8x1024", "engine-8x1024-nockpt", "padded-8x1024", "sample-shared", "sample-each"]
FALLBACK = {"padded-8x1024": "padded-4x1024", "padded-4x1024": "padded-2x1024"}


# -- attention ------------------------------------------------------------------------------------------
def _qkv(batch: int, length: int, packed: bool) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    shapes = [(batch, HEADS, length), (batch, KV_HEADS, length), (batch, KV_HEADS, length)]
    out = [torch.randn(*s, HEAD_DIM, generator=g) for s in shapes]
    if packed:  # [B, H, L, D] -> [1, H, B*L, D]
        out = [t.transpose(0, 1).reshape(1, t.shape[1], batch * length, HEAD_DIM) for t in out]
    return [t.contiguous().requires_grad_(True) for t in out]


def attention(kind: str, batch: int, length: int, repeats: int = 3) -> dict:
    from transformers.integrations.sdpa_attention import repeat_kv

    from posttrain.engine.attention import boundaries, packed_attention

    q, k, v = _qkv(batch, length, packed=kind != "batched")
    module = torch.nn.Module()
    module.num_key_value_groups = HEADS // KV_HEADS
    cu = boundaries([length] * batch)
    if kind == "mask":
        seq = torch.arange(batch * length) // length
        pos = torch.arange(batch * length)
        mask = (seq[:, None] == seq[None, :]) & (pos[None, :] <= pos[:, None])

    def run() -> torch.Tensor:
        if kind == "packed":
            return packed_attention(module, q, k, v, None, **cu)[0]
        kr, vr = repeat_kv(k, HEADS // KV_HEADS), repeat_kv(v, HEADS // KV_HEADS)
        if kind == "batched":
            return torch.nn.functional.scaled_dot_product_attention(q, kr, vr, is_causal=True)
        return torch.nn.functional.scaled_dot_product_attention(q, kr, vr, attn_mask=mask[None, None])

    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        run().sum().backward()
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times[1:]), "tokens": batch * length}


# -- training ---------------------------------------------------------------------------------------------
def _token_stream(n_tokens: int, renderer) -> list[int]:
    out: list[int] = []
    for messages in load_corpus(2000, Path(tempfile.gettempdir())):
        out += list(renderer.build_generation_prompt(messages))  # the whole conversation, rendered
        if len(out) >= n_tokens:
            return out[:n_tokens]
    raise SystemExit("the corpus is too short")


def _exact_datums(client, batch: int, length: int) -> list:
    """``batch`` sequences of exactly ``length`` input tokens of real rendered text."""
    import numpy as np

    from posttrain import get_renderer
    from posttrain.types import Datum

    renderer = get_renderer("smollm2", client.base.tokenizer)
    stream = np.asarray(_token_stream(batch * (length + 1), renderer), dtype=np.int64)
    pieces = stream.reshape(batch, length + 1)
    return [Datum.from_arrays((p[:-1],), p[1:], np.ones(length, np.float32)) for p in pieces]


def _conversation_datums(client, batch: int, max_length: int) -> list:
    from posttrain import get_renderer
    from posttrain.data.supervised import conversation_to_datum

    renderer = get_renderer("smollm2", client.base.tokenizer)
    convs = load_corpus(2000, Path(tempfile.gettempdir()))[:batch]
    return [conversation_to_datum(m, renderer, max_length) for m in convs]


def _client(**memory):
    from posttrain.engine import SMOLLM2, ServiceClient

    return ServiceClient(tempfile.mkdtemp(), device="cuda" if torch.cuda.is_available() else "cpu", **memory) \
        .create_lora_training_client(SMOLLM2, rank=32, seed=0)


def engine_step(datums, client, steps: int) -> dict:
    from posttrain.engine import AdamParams

    times = []
    for _ in range(steps):
        start = time.perf_counter()
        client.forward_backward(datums, "cross_entropy")
        client.optim_step(AdamParams(learning_rate=1e-4)).result()
        times.append(time.perf_counter() - start)
    tokens = sum(len(d) for d in datums)
    return {"seconds": times[-1], "tokens": tokens, "tokens_per_s": tokens / times[-1],
            "checkpointing": client._forward.checkpoints(min(tokens, client.memory.micro_batch_tokens))}


def padded_step(batch: int, max_length: int, steps: int) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    from _padded import padded_batch, padded_logprobs
    from peft import LoraConfig, get_peft_model

    from posttrain.engine import SMOLLM2
    from posttrain.engine.lora import LoraSettings
    from posttrain.engine.models import load_base_model

    base = load_base_model(SMOLLM2)
    client_like = type("C", (), {"base": base})
    datums = _conversation_datums(client_like, batch, max_length)
    model = get_peft_model(base.model, LoraConfig(r=32, lora_alpha=32, target_modules=LoraSettings().target_modules()))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids, targets, weights, mask = padded_batch(datums, next(model.parameters()).device)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        (-(padded_logprobs(model, ids, targets, mask) * weights).sum()).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    tokens = sum(len(d) for d in datums)
    return {"seconds": times[-1], "tokens": tokens, "padded_tokens": int(ids.numel()),
            "tokens_per_s": tokens / times[-1]}


# -- sampling ---------------------------------------------------------------------------------------------
def sampling(share: bool, n: int = 8, prompt_tokens: int = 512, new_tokens: int = 64) -> dict:
    from posttrain import get_renderer
    from posttrain.engine import SMOLLM2, SamplingParams
    from posttrain.engine.generation import generate
    from posttrain.engine.models import load_base_model

    base = load_base_model(SMOLLM2)
    prompt = _token_stream(prompt_tokens, get_renderer("smollm2", base.tokenizer))
    params = SamplingParams(max_tokens=new_tokens, seed=0)
    times, produced = [], 0
    for _ in range(2):
        start = time.perf_counter()
        out = generate(base.model, [prompt] * n, params, base.max_context_length, base.tokenizer.decode,
                       share_prefill=share)
        times.append(time.perf_counter() - start)
        produced = sum(len(s.tokens) for s in out)
    return {"seconds": times[-1], "tokens": produced, "tokens_per_s": produced / times[-1]}


# -- driver -----------------------------------------------------------------------------------------------
def run_path(name: str, steps: int) -> dict:
    kind, _, shape = name.partition("-")
    if kind == "attn":
        return attention(shape, 8, 1024)
    if kind == "sample":
        return sampling(shape == "shared")
    if kind == "padded":
        b, length = (int(x) for x in shape.split("x"))
        return padded_step(b, length, steps)
    if kind == "seq":  # checkpointing on at every length, for the memory slope
        client = _client(gradient_checkpointing=True)
        return engine_step(_exact_datums(client, 1, int(shape)), client, 1)
    shape, _, variant = shape.partition("-")
    client = _client(gradient_checkpointing=False) if variant == "nockpt" else _client()
    b, length = (int(x) for x in shape.split("x"))
    if kind == "step":
        return engine_step(_exact_datums(client, b, length), client, 1)
    return engine_step(_conversation_datums(client, b, length), client, steps)


def child(name: str, steps: int) -> dict | None:
    proc = subprocess.run([sys.executable, __file__, "--child", name, "--steps", str(steps)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"{name}: exit {proc.returncode}\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(results: dict[str, dict]) -> None:
    print(f"{'path':<16}{'seconds':>10}{'tokens':>9}{'tokens/s':>11}{'peak RSS MiB':>14}")
    for name, r in results.items():
        print(f"{name:<16}{r['seconds']:>10.3f}{r['tokens']:>9}{r.get('tokens_per_s', r['tokens'] / r['seconds']):>11.1f}"
              f"{r['peak_rss_mib']:>14.0f}")
    def ratio(a: str, b: str, key: str = "seconds") -> str:
        return f"{results[a][key] / results[b][key]:.2f}x" if a in results and b in results else "n/a"
    print(f"attention, packed / batched causal: {ratio('attn-packed', 'attn-batched')}; "
          f"dense mask / batched causal: {ratio('attn-mask', 'attn-batched')}")
    padded = next((p for p in ("padded-8x1024", "padded-4x1024", "padded-2x1024") if p in results), None)
    if padded:
        print(f"tokens/s, engine-8x1024 / {padded}: {ratio('engine-8x1024', padded, 'tokens_per_s')}")
    print(f"sampling tokens/s, shared / each: {ratio('sample-shared', 'sample-each', 'tokens_per_s')}")
    seqs = [(results[f"seq-{n}"]["tokens"], results[f"seq-{n}"]["peak_rss_mib"]) for n in (2048, 4096, 8192)
            if f"seq-{n}" in results]
    if len(seqs) >= 2:
        (t0, m0), (t1, m1) = seqs[0], seqs[-1]
        print(f"peak RSS per extra 1k tokens (one sequence, {t0} -> {t1}): {(m1 - m0) / (t1 - t0) * 1000:.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=PATHS + list(FALLBACK.values()), default=PATHS)
    ap.add_argument("--steps", type=int, default=2, help="steps per throughput path; the last is timed")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        result = run_path(args.child, args.steps)
        print(json.dumps({**result, "peak_rss_mib": peak_rss_mib()}))
        return
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu x{torch.get_num_threads()}"
    print(f"{environment()}, torch {torch.__version__}, {device}")
    results: dict[str, dict] = {}
    for name in args.only:
        result = child(name, args.steps)
        while result is None and name in FALLBACK:  # the padded loop at the largest batch it fits
            name = FALLBACK[name]
            result = child(name, args.steps)
        if result is not None:
            results[name] = result
            print(f"  {name}: {json.dumps(result)}", flush=True)
    report(results)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
