"""Deterministic benchmark corpus: N chat conversations built from real text.

Paragraphs come from Python's standard-library docstrings (real English
technical prose, present on every machine with Python). Shapes follow
no_robots-like SFT data: optional system prompt, 1-3 user/assistant turns,
user turns ~40-400 chars, assistant turns ~200-3000 chars.
Usage: python benchmarks/corpus.py N > corpus.jsonl

Copied from the project's shared ``bench_corpus.py`` so benchmarks run from a plain clone; keep the
generator unchanged, or figures stop being comparable with earlier ones.
"""
import ast
import json
import pathlib
import random
import sys
import sysconfig


def paragraphs():
    out = []
    lib = pathlib.Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(lib.glob("*.py"))[:400]:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except Exception:  # noqa: BLE001 - a stdlib file this Python cannot parse is simply left out
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Module):
                doc = ast.get_docstring(node)
                if doc and len(doc) > 40:
                    out.extend(p.strip() for p in doc.split("\n\n") if len(p.strip()) > 30)
    return out


def take(rng, paras, lo, hi):
    target = rng.randint(lo, hi)
    s = []
    while sum(map(len, s)) < target:
        s.append(rng.choice(paras))
    return "\n\n".join(s)[:hi]


def main(n):
    rng = random.Random(0)
    paras = paragraphs()
    for _ in range(n):
        msgs = []
        if rng.random() < 0.3:
            msgs.append({"role": "system", "content": take(rng, paras, 30, 200)})
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            msgs.append({"role": "user", "content": take(rng, paras, 40, 400)})
            msgs.append({"role": "assistant", "content": take(rng, paras, 200, 3000)})
        sys.stdout.write(json.dumps({"messages": msgs}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10000)
