#!/usr/bin/env bash
# The engine on one CUDA GPU: LoRA SFT steps on the Llama 3 1B and 8B architectures at 8k and 32k tokens
# (tokens/s, MFU, peak GPU memory) and sampling tokens/s, each measurement in a process of its own.
# Random-initialised models (posttrain:random-*): nothing is downloaded.
#   bash benchmarks/gpu.sh            # uses .venv/bin/python, or PYTHON=...
# Prints one JSON line per measurement, then a table.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
"$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else "gpu.sh needs a CUDA GPU")'
out=$(mktemp)
for model in posttrain:random-llama3-1b posttrain:random-llama3-8b; do
  for seq in 8192 32768; do
    "$PYTHON" benchmarks/bench_gpu.py train --model "$model" --seq-len "$seq" | tee -a "$out" \
      || echo "{\"mode\": \"train\", \"model\": \"$model\", \"seq_len\": $seq, \"failed\": true}" | tee -a "$out"
  done
  "$PYTHON" benchmarks/bench_gpu.py sample --model "$model" | tee -a "$out" \
    || echo "{\"mode\": \"sample\", \"model\": \"$model\", \"failed\": true}" | tee -a "$out"
done
"$PYTHON" - "$out" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
print(f"{'model':<28}{'mode':<8}{'tokens':>8}{'tokens/s':>11}{'MFU':>7}{'peak GiB':>10}")
for r in rows:
    tokens = r.get("seq_len", r.get("new_tokens", ""))
    if r.get("failed"):
        print(f"{r['model']:<28}{r['mode']:<8}{tokens:>8}{'failed':>11}")
        continue
    mfu = f"{r['mfu']:.2f}" if r.get("mfu") is not None else "-"
    print(f"{r['model']:<28}{r['mode']:<8}{tokens:>8}{r['tokens_per_s']:>11}{mfu:>7}{r['peak_gpu_gib']:>10}")
EOF
