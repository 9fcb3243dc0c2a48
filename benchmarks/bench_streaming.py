"""Streaming memory and throughput: render a large JSONL file through StreamingSupervisedDataset.

    python benchmarks/bench_streaming.py --n 1000000

Streams ``--n`` conversations from the deterministic corpus (benchmarks/corpus.py) through the shuffle buffer,
builds every datum (llama3 by default), and prints conversations/s and resident memory at
checkpoints, so flat memory as data grows is visible (peak RSS includes the tokenizer, ~0.5 GB).
``--no-render`` replaces rendering with a constant datum, to time the stream itself (read, JSON
parse, validation, shuffle buffer, batching).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _corpus import corpus_file, environment, peak_rss_mib  # noqa: E402

from posttrain import Datum, datum_from_tokens_weights, get_renderer, get_tokenizer  # noqa: E402
from posttrain.data.sources import stream_conversations  # noqa: E402
from posttrain.data.streaming import StreamingSupervisedDataset  # noqa: E402
from posttrain.data.supervised import conversation_to_datum  # noqa: E402
from posttrain.renderers import default_tokenizer_for  # noqa: E402


def current_rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--renderer", default="llama3")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--buffer", type=int, default=10_000, help="shuffle buffer rows (default: %(default)s)")
    ap.add_argument("--max-length", type=int, default=4096)
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "posttrain-bench"))
    ap.add_argument("--no-render", action="store_true", help="time the stream alone (constant datums)")
    args = ap.parse_args()
    Path(args.cache).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    path = corpus_file(args.n, Path(args.cache))
    print(f"{environment()}; corpus {path} ({path.stat().st_size / 2**30:.2f} GiB, written in "
          f"{time.perf_counter() - t0:.0f} s)", flush=True)
    if args.no_render:
        constant = datum_from_tokens_weights([1, 2], [0, 1])
        map_fn: Callable[[dict[str, Any]], Datum] = lambda row: constant  # noqa: E731
    else:
        renderer = get_renderer(args.renderer, get_tokenizer(default_tokenizer_for(args.renderer)))
        map_fn = lambda row: conversation_to_datum(row["messages"], renderer, args.max_length)  # noqa: E731
    ds = StreamingSupervisedDataset(stream_conversations(str(path)), args.batch_size, length=args.n,
                                    buffer_size=args.buffer, map_fn=map_fn)
    start = time.perf_counter()
    rows = tokens = 0
    checkpoints = {10_000, 100_000, 300_000, 1_000_000, args.n}
    for b in range(len(ds)):
        batch = ds.get_batch(b)
        rows += args.batch_size
        tokens += sum(len(d) for d in batch)
        if any(rows - args.batch_size < c <= rows for c in checkpoints):
            secs = time.perf_counter() - start
            print(f"{rows:>9,} conversations  {rows / secs:>7,.0f} conv/s  {tokens / secs:>10,.0f} target tokens/s  "
                  f"RSS {current_rss_mib():,.0f} MiB", flush=True)
    secs = time.perf_counter() - start
    print(f"done: {rows:,} conversations in {secs:,.0f} s = {rows / secs:,.0f} conv/s; peak RSS {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
