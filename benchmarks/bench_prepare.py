"""End-to-end ``prepare`` throughput against the tokenizer-only ceiling, on the in-repo corpus.

    python benchmarks/bench_prepare.py --n 20000 [--workers N] [--renderer llama3]

Rows, on the same conversations:
  prepare        run_prepare end to end (load JSONL, check and count every row, shuffle, first batch, run
                 folder) with --workers processes (default: every available core), and with 1 worker
  encode_batch   tokenizers' encode_batch of the already-rendered text of every conversation, on all cores
                 (its own thread pool): the ceiling for any pipeline that has to tokenize the same text
Loading the tokenizer (1.5 s for llama3: parse tokenizer.json and build posttrain's text-only copy)
is timed once, on its own line, and is in neither row: encode_batch's row never included it, and
prepare's rows used to include it only in whichever run came first in the process.
The ratio prepare / encode_batch is the figure of merit (target: >= 0.8 with all cores). Each row
also gives CPU seconds (this process, its threads and its worker processes): on a machine whose
cores are shared with other work, wall-clock throughput says little and conversations per CPU
second say how efficiently each pipeline uses the cores it gets.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _corpus import corpus_file, environment, load_corpus, peak_rss_mib  # noqa: E402

from posttrain import get_renderer, get_tokenizer  # noqa: E402
from posttrain.parallel import available_cores  # noqa: E402
from posttrain.recipes.prepare import PrepareConfig, run_prepare  # noqa: E402
from posttrain.renderers import default_tokenizer_for  # noqa: E402


def cpu_seconds() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def bench_prepare(path: Path, renderer: str, workers: int, out: Path) -> dict:
    cfg = PrepareConfig(input=str(path), out=str(out), renderer=renderer, workers=workers, batch_size=8)
    start, cpu = time.perf_counter(), cpu_seconds()
    summary = run_prepare(cfg, show_progress=False)
    secs = time.perf_counter() - start
    return {"method": f"prepare --workers {workers}", "conversations": summary.examples, "tokens": summary.tokens,
            "seconds": secs, "cpu_seconds": cpu_seconds() - cpu}


def load_tokenizer(renderer_name: str) -> float:
    """Load (and cache in this process) the tokenizer every row uses; seconds taken."""
    start = time.perf_counter()
    get_renderer(renderer_name, get_tokenizer(default_tokenizer_for(renderer_name)))
    return time.perf_counter() - start


def bench_encode_batch(path: Path, renderer_name: str, n: int) -> dict:
    tok = get_tokenizer(default_tokenizer_for(renderer_name))
    renderer = get_renderer(renderer_name, tok)
    texts = [tok.decode(renderer.build_supervised_example(c).tokens) for c in load_corpus(n, path.parent)]
    backend = tok.backend
    backend.encode_batch(texts[:100], add_special_tokens=False)  # start the thread pool
    start, cpu = time.perf_counter(), cpu_seconds()
    enc = backend.encode_batch(texts, add_special_tokens=False)
    secs = time.perf_counter() - start
    return {"method": "encode_batch (all cores)", "conversations": len(texts), "tokens": sum(len(e.ids) for e in enc),
            "seconds": secs, "cpu_seconds": cpu_seconds() - cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000, help="conversations (default: %(default)s)")
    ap.add_argument("--workers", type=int, default=available_cores(), help="prepare workers (default: all cores)")
    ap.add_argument("--renderer", default="llama3", help="renderer (default: %(default)s)")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "posttrain-bench"), help="corpus folder")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    path = corpus_file(args.n, cache)
    load = os.getloadavg()
    tokenizer_seconds = load_tokenizer(args.renderer)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [bench_prepare(path, args.renderer, args.workers, Path(tmp) / "multi")]
        if args.workers != 1:
            rows.append(bench_prepare(path, args.renderer, 1, Path(tmp) / "single"))
    rows.append(bench_encode_batch(path, args.renderer, args.n))
    for r in rows:
        r["conv_per_s"] = r["conversations"] / r["seconds"]
        r["tokens_per_s"] = r["tokens"] / r["seconds"]
        r["conv_per_cpu_s"] = r["conversations"] / r["cpu_seconds"]
    ratio = rows[0]["conv_per_s"] / rows[-1]["conv_per_s"]
    cpu_ratio = rows[0]["conv_per_cpu_s"] / rows[-1]["conv_per_cpu_s"]
    if args.json:
        print(json.dumps({"environment": environment(), "cores": available_cores(), "load": os.getloadavg(),
                          "rows": rows, "ratio": ratio, "cpu_ratio": cpu_ratio,
                          "tokenizer_load_seconds": tokenizer_seconds}, indent=1))
        return
    print(f"{environment()}; {available_cores()} cores; {args.n} conversations from benchmarks/corpus.py; "
          f"renderer {args.renderer}; load average before {load[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    print(f"{'method':<26} {'conv/s':>9} {'tokens/s':>12} {'seconds':>8} {'CPU s':>7} {'conv/CPU s':>10}")
    for r in rows:
        print(f"{r['method']:<26} {r['conv_per_s']:>9,.0f} {r['tokens_per_s']:>12,.0f} {r['seconds']:>8.2f} "
              f"{r['cpu_seconds']:>7.2f} {r['conv_per_cpu_s']:>10,.0f}")
    print(f"tokenizer load, in no row: {tokenizer_seconds:.2f} s")
    print(f"prepare (--workers {args.workers}) / encode_batch: {ratio:.2f} (wall clock), {cpu_ratio:.2f} (per CPU "
          f"second); peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
