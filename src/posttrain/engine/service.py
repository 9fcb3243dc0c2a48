"""ServiceClient: makes training and sampling clients, as ``tinker.ServiceClient`` does, on this machine.

Loop code takes a service client and calls only methods the SDK also has, so the same loop runs here
or against the hosted service (``posttrain.engine.hosted.hosted_service_client``).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import torch

from posttrain.engine import checkpoints as ckpt
from posttrain.engine.forward import MemorySettings
from posttrain.engine.lora import LoraSettings
from posttrain.engine.models import load_base_model, resolve_device
from posttrain.engine.sampling import SamplingClient
from posttrain.engine.shared import SharedBase
from posttrain.engine.training_client import TrainingClient
from posttrain.errors import PosttrainError


class ServiceClient:
    """``checkpoint_dir``: where checkpoints saved by bare name go (default ``./checkpoints``).
    ``device``: default CUDA when present, else CPU. Memory (results equal up to floating-point summation order):
    ``micro_batch_tokens``, the most tokens packed into one forward pass (larger batches are split and
    their gradients accumulated); ``gradient_checkpointing``, True, False or None (on for micro-batches
    whose activations would take over a quarter of free memory); ``logprob_chunk_tokens``, tokens per
    output-layer chunk (default: 2²⁵ logits' worth)."""

    def __init__(self, checkpoint_dir: str | os.PathLike[str] = "checkpoints", device: str | None = None,
                 micro_batch_tokens: int = 8192, gradient_checkpointing: bool | None = None,
                 logprob_chunk_tokens: int | None = None, **_ignored: Any):
        self.memory = MemorySettings(micro_batch_tokens, gradient_checkpointing, logprob_chunk_tokens)
        self.checkpoint_dir = Path(checkpoint_dir)
        self.device = resolve_device(device)
        self._bases: dict[str, SharedBase] = {}
        self._bases_lock = threading.Lock()

    def create_lora_training_client(self, base_model: str, rank: int = 32, seed: int | None = None,
                                    train_mlp: bool = True, train_attn: bool = True, train_unembed: bool = True,
                                    user_metadata: dict[str, str] | None = None) -> TrainingClient:
        """LoRA on ``base_model``; same ``seed`` ⇒ same initial adapter weights."""
        settings = LoraSettings(rank, train_mlp, train_attn, train_unembed)  # checked before loading
        return self._training_client(base_model, settings, seed)

    def create_full_finetune_training_client(self, base_model: str, seed: int | None = None) -> TrainingClient:
        """Every weight trained (local engine only; the hosted service trains LoRA)."""
        return self._training_client(base_model, None, seed)

    def _training_client(self, base_model: str, lora: LoraSettings | None, seed: int | None) -> TrainingClient:
        chosen = seed if seed is not None else int.from_bytes(os.urandom(4), "little")
        if lora is None:  # a full fine-tune changes the base weights: it gets a copy of its own
            return TrainingClient(load_base_model(base_model, self.device), lora=None, seed=chosen,
                                  checkpoint_dir=self.checkpoint_dir, memory=self.memory)
        shared = self.shared_base(base_model)
        return TrainingClient(shared.base, lora=lora, seed=chosen, checkpoint_dir=self.checkpoint_dir,
                              memory=self.memory, shared=shared)

    def shared_base(self, base_model: str) -> SharedBase:
        """``base_model`` loaded once for every LoRA client of this service (one base + N adapters)."""
        with self._bases_lock:
            if base_model not in self._bases:
                self._bases[base_model] = SharedBase(load_base_model(base_model, self.device))
            return self._bases[base_model]

    def create_training_client_from_state(self, path: str, base_model: str | None = None) -> TrainingClient:
        """Weights from a training-state checkpoint, fresh optimizer."""
        client = self._client_for_state(path, base_model)
        client.load_state(path).result()
        return client

    def create_training_client_from_state_with_optimizer(self, path: str, base_model: str | None = None) -> TrainingClient:
        client = self._client_for_state(path, base_model)
        client.load_state_with_optimizer(path).result()
        return client

    def _client_for_state(self, path: str, base_model: str | None) -> TrainingClient:
        meta = ckpt.read_meta(path)
        if base_model is not None and base_model != meta.get("base_model"):
            raise ckpt.CheckpointError(f"checkpoint {path} is from base model {meta.get('base_model')!r}, not {base_model!r}")
        lora = LoraSettings(**meta["lora"]) if meta.get("lora") else None
        return self._training_client(meta["base_model"], lora, seed=0)

    def create_sampling_client(self, model_path: str | None = None, base_model: str | None = None) -> SamplingClient:
        if (model_path is None) == (base_model is None):
            raise PosttrainError("create_sampling_client needs exactly one of model_path or base_model")
        return SamplingClient.from_path(model_path or str(base_model), self.device)

    # async variants, as in the SDK
    async def create_lora_training_client_async(self, base_model: str, rank: int = 32, seed: int | None = None,
                                                train_mlp: bool = True, train_attn: bool = True,
                                                train_unembed: bool = True,
                                                user_metadata: dict[str, str] | None = None) -> TrainingClient:
        return self.create_lora_training_client(base_model, rank, seed, train_mlp, train_attn, train_unembed)

    async def create_training_client_from_state_async(self, path: str, base_model: str | None = None) -> TrainingClient:
        return self.create_training_client_from_state(path, base_model)

    async def create_training_client_from_state_with_optimizer_async(
            self, path: str, base_model: str | None = None) -> TrainingClient:
        return self.create_training_client_from_state_with_optimizer(path, base_model)

    async def create_sampling_client_async(self, model_path: str | None = None,
                                           base_model: str | None = None) -> SamplingClient:
        return self.create_sampling_client(model_path, base_model)

    def close(self) -> None:
        """Nothing to release: the engine holds no session, and its worker threads are daemons."""

    @staticmethod
    def cuda_available() -> bool:
        return torch.cuda.is_available()
