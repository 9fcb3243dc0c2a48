"""SFT throughput: ``posttrain train sft`` (the engine's packed steps, pipelined) against the same recipe
as a plain padded HF + peft loop, on the same batches and hyper-parameters.

    python benchmarks/bench_train.py [--steps 6] [--batch-size 8] [--max-length 256] [--model ...]

Both train SmolLM2-135M-Instruct with LoRA rank 32 on the shipped conversations (the builder's order,
set_epoch(0) as the loop does), linear decay from the same learning rate, AdamW(0.9, 0.95, 1e-8).
Reported: steps/s and real tokens/s of each, the share of the recipe's wall time spent outside the
engine's forward_backward/optim_step (data, rendering, logging, checkpoints), and both loss curves'
first and last values. Python and torch versions and the device are printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time

import torch
from _padded import padded_batch, padded_logprobs

from posttrain.data.builders import ChatDatasetConfig, FromConversationFileBuilder
from posttrain.default_data import default_dataset_path
from posttrain.engine import SMOLLM2
from posttrain.engine.lora import LoraSettings
from posttrain.engine.models import load_base_model
from posttrain.recipes.sft import recipe_config, run_sft
from posttrain.training.metrics import mean_nll


def recipe_run(args: argparse.Namespace) -> dict:
    out = tempfile.mkdtemp(prefix="bench-sft-")
    shutil.rmtree(out)
    cfg = recipe_config("default", model_name=args.model, log_path=out, max_steps=args.steps, batch_size=args.batch_size,
                        max_length=args.max_length, eval_every=0, save_every=0, test_size=0, learning_rate=args.lr)
    start = time.perf_counter()
    result = run_sft(cfg)
    wall = time.perf_counter() - start
    tokens = sum(r["num_tokens"] for r in result.metrics)
    return {"wall_s": wall, "tokens": tokens, "engine_s": result.extra.get("engine_seconds", 0.0),
            "nll": [result.metrics[0]["train_mean_nll"], result.metrics[-1]["train_mean_nll"]]}


def padded_run(args: argparse.Namespace) -> dict:
    """The usual loop: the same batches right-padded, HF model + peft, torch AdamW, the same schedule."""
    from peft import LoraConfig, get_peft_model

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    start = time.perf_counter()
    base = load_base_model(args.model, device)
    torch.manual_seed(0)
    model = get_peft_model(base.model, LoraConfig(r=32, lora_alpha=32, target_modules=LoraSettings().target_modules()))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, betas=(0.9, 0.95),
                            eps=1e-8, weight_decay=0.0)
    chat = ChatDatasetConfig(renderer_name="smollm2", tokenizer="posttrain:smollm2", max_length=args.max_length,
                             batch_size=args.batch_size)
    train, _ = FromConversationFileBuilder(str(default_dataset_path()), chat, test_size=0)()
    train.set_epoch(seed=0)
    tokens, nll = 0, []
    for step in range(args.steps):
        data = train.get_batch(step)
        for group in opt.param_groups:
            group["lr"] = args.lr * (1 - step / args.steps)
        ids, tgt, w, mask = padded_batch(data, device)
        logp = padded_logprobs(model, ids, tgt, mask)
        (-(logp * w).sum()).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        nll.append(mean_nll([lp.detach().cpu().numpy() for lp in logp], list(w.cpu().numpy())))
        tokens += sum(len(d) for d in data)
    return {"wall_s": time.perf_counter() - start, "tokens": tokens, "nll": [nll[0], nll[-1]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=SMOLLM2)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args()
    ours, theirs = recipe_run(args), padded_run(args)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu x{torch.get_num_threads()}"
    outside = 1 - ours["engine_s"] / ours["wall_s"]
    print(f"{args.steps} SFT steps, batch {args.batch_size}, max_length {args.max_length}, {device}, "
          f"Python {platform.python_version()}, torch {torch.__version__}")
    for name, r in (("posttrain train sft", ours), ("padded HF + peft loop", theirs)):
        print(f"  {name:22s} {args.steps / r['wall_s']:.3f} steps/s  {r['tokens'] / r['wall_s']:8.1f} tokens/s  "
              f"NLL {r['nll'][0]:.3f} → {r['nll'][1]:.3f}  (wall {r['wall_s']:.1f} s incl. model load)")
    print(f"  share of the recipe's wall time outside forward_backward/optim_step: {outside:.1%}")
    print(json.dumps({"device": device, "steps": args.steps, "recipe": ours, "padded": theirs,
                      "outside_engine_share": round(outside, 4)}))


if __name__ == "__main__":
    main()
