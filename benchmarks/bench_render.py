"""Rendering throughput: ``build_supervised_example`` vs tokenizer-only baselines on the same data.

    python benchmarks/bench_render.py --n 3000                                  # llama3
    python benchmarks/bench_render.py --n 3000 --renderer llama3 --renderer qwen3 --json

Methods, per renderer, on the same conversations (from benchmarks/corpus.py):
  posttrain        Renderer.build_supervised_example (tokens + weights + chunk map), one call per conversation
  apply_template   HF apply_chat_template(tokenize=True), only where the tokenizer carries a chat template
  encode_batch     tokenizers' encode_batch of the already-rendered text (decoded once, untimed): the upper
                   bound for any renderer built on this tokenizer (no formatting, no masks)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _corpus import environment, load_corpus, peak_rss_mib  # noqa: E402

from posttrain import get_renderer, get_tokenizer  # noqa: E402
from posttrain.renderers import default_tokenizer_for  # noqa: E402

T = TypeVar("T")
Row = dict[str, Any]


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def _row(name: str, method: str, n_convs: int, n_tokens: int, secs: float) -> Row:
    return {"renderer": name, "method": method, "conversations": n_convs, "tokens": n_tokens, "seconds": secs,
            "conv_per_s": n_convs / secs, "tokens_per_s": n_tokens / secs, "peak_rss_mib": peak_rss_mib()}


def _n_ids(x: Any) -> int:
    """apply_chat_template(tokenize=True) returns a list of ids or, in newer transformers, a BatchEncoding."""
    return len(x["input_ids"] if hasattr(x, "keys") else x)


def bench(name: str, convs: list[list[dict[str, Any]]]) -> list[Row]:
    tok = get_tokenizer(default_tokenizer_for(name))
    renderer = get_renderer(name, tok)
    renderer.build_supervised_example(convs[0])  # warm lazy caches outside the timed region
    examples, secs = timed(lambda: [renderer.build_supervised_example(c) for c in convs])
    rows = [_row(name, "posttrain", len(convs), sum(len(e.tokens) for e in examples), secs)]

    hf = tok.hf_tokenizer
    if hf is not None and getattr(hf, "chat_template", None):
        hf.apply_chat_template(convs[0], tokenize=True)  # compiles the Jinja template
        out, secs = timed(lambda: [hf.apply_chat_template(c, tokenize=True) for c in convs])
        rows.append(_row(name, "apply_template", len(convs), sum(map(_n_ids, out)), secs))

    texts = [tok.decode(e.tokens) for e in examples]
    tok.backend.encode_batch(texts[:8], add_special_tokens=False)  # starts the thread pool
    enc, secs = timed(lambda: tok.backend.encode_batch(texts, add_special_tokens=False))
    rows.append(_row(name, "encode_batch", len(convs), sum(len(e.ids) for e in enc), secs))
    return rows


def print_table(rows: list[Row]) -> None:
    head = f"{'renderer':<24} {'method':<15} {'conversations':>13} {'tokens':>11} {'conv/s':>9} {'tokens/s':>11}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['renderer']:<24} {r['method']:<15} {r['conversations']:>13,} {r['tokens']:>11,} "
              f"{r['conv_per_s']:>9,.0f} {r['tokens_per_s']:>11,.0f}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3000, help="conversations (default: %(default)s)")
    ap.add_argument("--renderer", action="append", help="renderer to measure, repeatable (default: llama3)")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "posttrain-bench"),
                    help="folder for the generated corpus (default: %(default)s)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = ap.parse_args(argv)
    Path(args.cache).mkdir(parents=True, exist_ok=True)
    convs = load_corpus(args.n, Path(args.cache))
    rows = [r for name in (args.renderer or ["llama3"]) for r in bench(name, convs)]
    if args.json:
        print(json.dumps({"environment": environment(), "corpus": "benchmarks/corpus.py", "n": args.n,
                          "peak_rss_mib": peak_rss_mib(), "rows": rows}, indent=1))
        return
    print(f"{environment()}; {args.n} conversations from benchmarks/corpus.py")
    print_table(rows)
    print(f"peak RSS {peak_rss_mib():.0f} MiB (whole process: corpus, tokenizers, results)")


if __name__ == "__main__":
    main()
