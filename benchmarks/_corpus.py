"""Shared benchmark input: the deterministic corpus of ``benchmarks/corpus.py`` (figures are comparable
across changes; they depend on the Python version, which every benchmark prints)."""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
from pathlib import Path

GENERATOR = Path(__file__).resolve().parent / "corpus.py"


def corpus_file(n: int, out_dir: Path) -> Path:
    """Write (once) ``n`` conversations from the generator; return the JSONL path."""
    path = out_dir / f"bench_corpus_{n}.jsonl"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            subprocess.run([sys.executable, str(GENERATOR), str(n)], stdout=f, check=True)
        tmp.rename(path)
    return path


def load_corpus(n: int, out_dir: Path) -> list[list[dict]]:
    with corpus_file(n, out_dir).open(encoding="utf-8") as f:
        return [json.loads(line)["messages"] for line in f]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def environment() -> str:
    return f"Python {platform.python_version()} on {platform.machine()}, {platform.system()}"
