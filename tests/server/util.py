"""A ``posttrain serve`` subprocess on a free local port, and the SDK pointed at it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np

TINY = "posttrain:tiny-llama3"
OTHER = "posttrain:tiny-smollm2"
VOCAB = 128256
KEY = "tml-posttrain-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, models: Sequence[str], state_dir: Path, *extra: str):
        self.models, self.state_dir, self.extra = list(models), state_dir, extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start()

    def start(self) -> None:
        args = [sys.executable, "-m", "posttrain.cli", "serve", "--port", str(self.port), "--device", "cpu",
                "--state-dir", str(self.state_dir), *self.extra]
        for m in self.models:
            args += ["--model", m]
        self.log = open(self.state_dir.parent / f"server-{self.port}.log", "a")  # noqa: SIM115
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/api/v1/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"server did not start: {self.log_text()[-2000:]}")

    def log_text(self) -> str:
        return (self.state_dir.parent / f"server-{self.port}.log").read_text()

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()

    def post(self, path: str, **kwargs) -> httpx.Response:
        return httpx.post(f"{self.url}/api/v1/{path}", headers={"X-API-Key": KEY, **kwargs.pop("headers", {})},
                          timeout=60, **kwargs)

    def sdk(self):
        import tinker

        return tinker.ServiceClient(base_url=self.url, api_key=KEY)


def quiet_sdk_env() -> None:
    os.environ["TINKER_TELEMETRY"] = "0"


def tokens(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(3, VOCAB, size=n + 1).astype(np.int64)


def batch(seed: int, lengths: Sequence[int] = (12, 7, 20)) -> list[tuple[np.ndarray, np.ndarray]]:
    """(tokens, weights) per sequence: a prefix left untrained, non-unit weights."""
    out = []
    for i, n in enumerate(lengths):
        w = np.zeros(n, np.float32)
        w[n // 3:] = 1.0 + 0.5 * (i % 2)
        out.append((tokens(n, 100 * seed + i), w))
    return out


def engine_datums(rows, extra=None) -> list:
    from posttrain.engine import Datum

    return [Datum.from_arrays((t[:-1],), t[1:], w, extra[i] if extra else None) for i, (t, w) in enumerate(rows)]


def sdk_datums(rows, extra=None) -> list:
    from tinker import types

    out = []
    for i, (t, w) in enumerate(rows):
        inputs = {"target_tokens": t[1:]}
        if w is not None:
            inputs["weights"] = w
        inputs.update(extra[i] if extra else {})
        out.append(types.Datum(model_input=types.ModelInput.from_ints(t[:-1].tolist()), loss_fn_inputs=inputs))
    return out
