"""Rendering throughput: ``build_supervised_example`` vs tokenizer-only baselines on the same data.

    python benchmarks/bench_render.py --n 3000 --renderer llama3 --renderer qwen3

Methods, per renderer, on the same conversations:
  posttrain        Renderer.build_supervised_example (tokens + weights + chunk map), one call per conversation
  apply_template   HF apply_chat_template(tokenize=True) where the tokenizer carries a chat template (tokens only)
  encode_batch     tokenizers' encode_batch of the already-rendered text: the upper bound (no formatting, no masks)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _corpus import environment, load_corpus, peak_rss_mib  # noqa: E402

from posttrain import get_renderer, get_tokenizer  # noqa: E402
from posttrain.renderers import default_tokenizer_for  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def bench(name: str, convs: list[list[dict]]) -> list[dict]:
    tok = get_tokenizer(default_tokenizer_for(name))
    renderer = get_renderer(name, tok)
    renderer.build_supervised_example(convs[0])  # warm caches
    examples, secs = timed(lambda: [renderer.build_supervised_example(c) for c in convs])
    n_tokens = sum(len(e.tokens) for e in examples)
    rows = [{"renderer": name, "method": "posttrain", "conversations": len(convs), "tokens": n_tokens, "seconds": secs}]
    if tok.hf_tokenizer is not None and getattr(tok.hf_tokenizer, "chat_template", None):
        hf = tok.hf_tokenizer
        out, secs = timed(lambda: [hf.apply_chat_template(c, tokenize=True) for c in convs])
        count = sum(len(x["input_ids"] if isinstance(x, dict) or hasattr(x, "keys") else x) for x in out)
        rows.append({"renderer": name, "method": "apply_template", "conversations": len(convs), "tokens": count,
                     "seconds": secs})
    texts = [tok.decode(e.tokens) for e in examples]
    backend = tok.backend
    enc, secs = timed(lambda: backend.encode_batch(texts, add_special_tokens=False))
    rows.append({"renderer": name, "method": "encode_batch", "conversations": len(convs),
                 "tokens": sum(len(e.ids) for e in enc), "seconds": secs})
    for r in rows:
        r["conv_per_s"] = r["conversations"] / r["seconds"]
        r["tokens_per_s"] = r["tokens"] / r["seconds"]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3000, help="conversations (default: %(default)s)")
    ap.add_argument("--renderer", action="append", help="renderer(s) to measure (default: llama3 and qwen3)")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "posttrain-bench"), help="corpus folder")
    ap.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    args = ap.parse_args()
    Path(args.cache).mkdir(parents=True, exist_ok=True)
    convs = load_corpus(args.n, Path(args.cache))
    rows = [r for name in (args.renderer or ["llama3", "qwen3"]) for r in bench(name, convs)]
    if args.json:
        print(json.dumps({"environment": environment(), "peak_rss_mib": peak_rss_mib(), "rows": rows}, indent=1))
        return
    print(f"{environment()}; {args.n} conversations from benchmarks/corpus.py")
    print(f"{'renderer':<10} {'method':<15} {'conv/s':>10} {'tokens/s':>12} {'tokens':>11}")
    for r in rows:
        print(f"{r['renderer']:<10} {r['method']:<15} {r['conv_per_s']:>10,.0f} {r['tokens_per_s']:>12,.0f} {r['tokens']:>11,}")
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
