"""``posttrain serve`` against the in-process engine: the HTTP layer's cost, concurrency, memory.

1. Overhead: one SFT step (``forward_backward`` + ``optim_step``, LoRA rank 32, SmolLM2-135M-Instruct,
   8 sequences x 256 tokens) through the unmodified tinker SDK and the server, against the same step
   on the in-process engine. Goal: at most 5 % slower.
2. Concurrency: 4 SDK clients training at once on one server against 1 client: total steps per second
   (clients take turns on the one base model, so the goal is no loss of throughput, not a speed-up).
3. Memory: the server's peak RSS with 4 LoRA clients against 1 (one base model for all). Goal: <= 1.3x.

Each measurement runs in a process of its own (and a fresh server)::

    python benchmarks/bench_server.py [--steps 3] [--model posttrain:smollm2-135m-instruct]

Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SEQS, TOKENS, RANK = 8, 256, 32
ADAM = dict(learning_rate=1e-4, eps=1e-8)
KEY = "tml-bench"


def rows(seed: int, vocab: int = 49152) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(3, vocab, size=TOKENS + 1).astype(np.int64) for _ in range(SEQS)]


def part_inprocess(model: str, steps: int) -> dict[str, float]:
    from posttrain.engine import AdamParams, Datum, ServiceClient

    client = ServiceClient(tempfile.mkdtemp(), device="cpu").create_lora_training_client(model, rank=RANK, seed=0)
    data = [Datum.from_arrays((t[:-1],), t[1:], np.ones(TOKENS, np.float32)) for t in rows(0)]

    def step() -> None:
        client.forward_backward(data, "cross_entropy")
        client.optim_step(AdamParams(**ADAM)).result()

    return {"step_s": timed(step, steps)}


def timed(step, steps: int) -> float:
    step()  # warm-up
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def sdk_step_fn(client, seed: int):
    from tinker import types

    data = [types.Datum(model_input=types.ModelInput.from_ints(t[:-1].tolist()),
                        loss_fn_inputs={"target_tokens": t[1:], "weights": np.ones(TOKENS, np.float32)})
            for t in rows(seed)]

    def step() -> None:
        fb = client.forward_backward(data, "cross_entropy")
        client.optim_step(types.AdamParams(**ADAM)).result()
        fb.result()

    return step


def part_server(model: str, steps: int, clients: int) -> dict[str, float]:
    os.environ["TINKER_TELEMETRY"] = "0"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    state = tempfile.mkdtemp()
    server = subprocess.Popen([sys.executable, "-m", "posttrain.cli", "serve", "--model", model, "--port", str(port),
                               "--device", "cpu", "--state-dir", state], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        return _drive(f"http://127.0.0.1:{port}", server, model, steps, clients)
    finally:
        server.terminate()
        server.wait(60)


def _drive(url: str, server: subprocess.Popen, model: str, steps: int, clients: int) -> dict[str, float]:
    import httpx
    import tinker

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    sdk = tinker.ServiceClient(base_url=url, api_key=KEY)
    trainers = [sdk.create_lora_training_client(model, rank=RANK, seed=i).result() for i in range(clients)]
    fns = [sdk_step_fn(c, i) for i, c in enumerate(trainers)]
    out: dict[str, float] = {}
    if clients == 1:
        out["step_s"] = timed(fns[0], steps)
    else:
        for fn in fns:
            fn()  # warm-up, one each
        start = time.perf_counter()
        threads = [threading.Thread(target=lambda fn=fn: [fn() for _ in range(steps)]) for fn in fns]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out["steps_per_s"] = clients * steps / (time.perf_counter() - start)
    out["server_peak_rss_gib"] = peak_rss_gib(server.pid)
    return out


def peak_rss_gib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def run_part(args: argparse.Namespace, *extra: str) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--model", args.model, "--steps", str(args.steps), *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="posttrain:smollm2-135m-instruct")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--part", choices=("inprocess", "server"))
    p.add_argument("--clients", type=int, default=1)
    args = p.parse_args()
    if args.part == "inprocess":
        print(json.dumps(part_inprocess(args.model, args.steps)))
        return
    if args.part == "server":
        print(json.dumps(part_server(args.model, args.steps, args.clients)))
        return
    local = run_part(args, "--part", "inprocess")
    one = run_part(args, "--part", "server", "--clients", "1")
    four = run_part(args, "--part", "server", "--clients", "4")
    report = {
        "machine": f"{platform.machine()} {os.cpu_count()} cpus", "model": args.model,
        "batch": f"{SEQS}x{TOKENS}", "rank": RANK,
        "step_inprocess_s": local["step_s"], "step_server_s": one["step_s"],
        "overhead_pct": 100 * (one["step_s"] / local["step_s"] - 1),
        "throughput_1_client_steps_per_s": 1 / one["step_s"], "throughput_4_clients_steps_per_s": four["steps_per_s"],
        "peak_rss_1_client_gib": one["server_peak_rss_gib"], "peak_rss_4_clients_gib": four["server_peak_rss_gib"],
        "memory_ratio_4_vs_1": four["server_peak_rss_gib"] / one["server_peak_rss_gib"],
    }
    width = max(len(k) for k in report)
    for key, value in report.items():
        print(f"{key:<{width}}  {value:.3f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
