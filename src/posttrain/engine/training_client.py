"""TrainingClient: the SDK's training API on a local PyTorch model.

Calls return futures and run in submission order on one worker thread (see :mod:`.futures`); the
``*_async`` variants are coroutines returning the same futures. Arguments and datums are checked when a
call is made, before it is queued, so bad input raises at once and changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from posttrain.engine import checkpoints as ckpt
from posttrain.engine.distributed import DistContext
from posttrain.engine.forward import MemorySettings, PackedForward
from posttrain.engine.futures import EngineFuture, OrderedExecutor
from posttrain.engine.lora import LoraSettings, add_lora, save_adapter
from posttrain.engine.losses import get_loss
from posttrain.engine.models import BaseModel
from posttrain.engine.packing import PackedDatum, as_packed, check_datums, input_tensors
from posttrain.engine.shared import SharedBase, adapter_params
from posttrain.errors import NonFiniteError, PosttrainError
from posttrain.types import (
    AdamParams,
    ForwardBackwardOutput,
    GetInfoResponse,
    LoadWeightsResponse,
    OptimStepResponse,
    SaveWeightsForSamplerResponse,
    SaveWeightsResponse,
    TensorData,
)
from posttrain.types.clients import CustomLossFn


class TrainingClient:
    """``memory``: micro-batch size, activation checkpointing and output-layer chunking
    (:class:`~posttrain.engine.forward.MemorySettings`); results equal up to floating-point summation order."""

    def __init__(self, base: BaseModel, *, lora: LoraSettings | None, seed: int, checkpoint_dir: Path,
                 memory: MemorySettings | None = None, shared: SharedBase | None = None):
        """``shared``: a LoRA client puts its adapter on that base model (shared with other clients)
        instead of wrapping ``base.model`` alone."""
        self.base = base
        self.lora = lora
        self.seed = seed
        self.checkpoint_dir = Path(checkpoint_dir)
        self.memory = memory or MemorySettings()
        self.dist = DistContext.current()
        self.device = next(base.model.parameters()).device
        self.shared = shared if lora is not None else None
        self.adapter: str | None = None
        if lora is not None:
            hidden = int(getattr(base.model.config.get_text_config(), "hidden_size", lora.rank))
            if lora.rank > hidden:  # an adapter wider than the layers it adapts: a typo, and maybe gigabytes
                raise PosttrainError(f"LoRA rank {lora.rank} exceeds {base.name}'s hidden size {hidden}; use a rank "
                                     f"of at most {hidden} (typically 8 to 128), or a full fine-tune")
            if self.shared is not None:
                self.adapter = self.shared.new_adapter(lora, seed)
                self.model = self.shared.model
            else:
                self.model = add_lora(base.model, lora, seed, base.shareable_name)
        else:
            self.model = base.model
            self.model.requires_grad_(True)
        if self.shared is not None:
            with self.shared.turn(self.adapter):  # the start-up probes run the shared model
                self._setup()
            self._executor: OrderedExecutor = self.shared.executor(self.adapter, "posttrain-train")
        else:
            self._setup()
            self._executor = OrderedExecutor("posttrain-train")
        self.optimizer = torch.optim.AdamW(list(self._params.values()), lr=0.0, foreach=False)
        self.steps = 0

    def _setup(self) -> None:
        self.model.eval()  # no dropout: a step's loss is a function of the weights and the batch
        if self.adapter is not None:
            self._params = adapter_params(self.model, self.adapter)
        else:
            self._params = {n: p for n, p in self.model.named_parameters() if p.requires_grad}
        self._forward = PackedForward(self.model, self.memory)

    # -- forward / backward ---------------------------------------------------------------------
    def forward(self, data: Sequence[Any], loss_fn: str,
                loss_fn_config: Mapping[str, float] | None = None) -> EngineFuture[ForwardBackwardOutput]:
        """Loss and target logprobs under the current weights; no gradients."""
        datums, spec, config = self._prepare(data, loss_fn, loss_fn_config)
        return self._executor.submit(self._run_loss, datums, spec, config, False)

    def forward_backward(self, data: Sequence[Any], loss_fn: str,
                         loss_fn_config: Mapping[str, float] | None = None) -> EngineFuture[ForwardBackwardOutput]:
        """Accumulate the gradient of the summed loss; ``logprobs`` are those before any update."""
        datums, spec, config = self._prepare(data, loss_fn, loss_fn_config)
        return self._executor.submit(self._run_loss, datums, spec, config, True)

    def forward_backward_custom(self, data: Sequence[Any], loss_fn: CustomLossFn) -> EngineFuture[ForwardBackwardOutput]:
        """``loss_fn(data, logprobs) -> (loss, metrics)`` on the target logprobs of every datum.

        As in the SDK: a forward pass gives the logprobs, ``loss_fn`` runs on them and is differentiated
        with respect to them, and a second pass back-propagates ``Σ dloss/dlogprob · logprob``."""
        datums = self._datums(data)
        check_datums(datums, (), self.base.vocab_size, self.base.max_context_length, "custom")
        return self._executor.submit(self._run_custom, list(data), datums, loss_fn)

    async def forward_async(self, data: Sequence[Any], loss_fn: str,
                            loss_fn_config: Mapping[str, float] | None = None) -> EngineFuture[ForwardBackwardOutput]:
        return self.forward(data, loss_fn, loss_fn_config)

    async def forward_backward_async(self, data: Sequence[Any], loss_fn: str,
                                     loss_fn_config: Mapping[str, float] | None = None) -> EngineFuture[ForwardBackwardOutput]:
        return self.forward_backward(data, loss_fn, loss_fn_config)

    async def forward_backward_custom_async(self, data: Sequence[Any],
                                            loss_fn: CustomLossFn) -> EngineFuture[ForwardBackwardOutput]:
        return self.forward_backward_custom(data, loss_fn)

    def compute_base_logprobs(self, data: Sequence[Any]) -> EngineFuture[list[np.ndarray]]:
        """Target logprobs under the base model, the LoRA adapter switched off (local engine only).

        A LoRA run's starting weights, without a second copy of the model: DPO's reference."""
        if self.lora is None:
            raise PosttrainError("compute_base_logprobs needs a LoRA client: a full fine-tune has no adapter to switch "
                                 "off (save the starting weights for a reference instead)")
        datums = self._datums(data)
        check_datums(datums, (), self.base.vocab_size, self.base.max_context_length, "compute_base_logprobs")
        return self._executor.submit(self._run_base_logprobs, datums)

    def _run_base_logprobs(self, datums: list[PackedDatum]) -> list[np.ndarray]:
        own: list[np.ndarray] = []
        with torch.no_grad(), self.model.disable_adapter():
            for _, lps in self._forward.micro_batches(self._mine(datums)):
                own += [lp.cpu().numpy() for lp in lps]
        return self.dist.gather(len(datums), own)

    def _mine(self, datums: list[PackedDatum]) -> list[PackedDatum]:
        """This rank's share of the batch, in order."""
        return [datums[i] for i in self.dist.shard(len(datums))]

    def _datums(self, data: Sequence[Any]) -> list[PackedDatum]:
        return [as_packed(d, i) for i, d in enumerate(data)]

    def _prepare(self, data: Sequence[Any], loss_fn: str,
                 loss_fn_config: Mapping[str, float] | None) -> tuple[list[PackedDatum], Any, dict[str, float]]:
        spec = get_loss(loss_fn)
        config = spec.config(loss_fn_config)
        datums = self._datums(data)
        check_datums(datums, spec.inputs, self.base.vocab_size, self.base.max_context_length, loss_fn)
        return datums, spec, config

    def _run_loss(self, datums: list[PackedDatum], spec: Any, config: dict[str, float],
                  backward: bool) -> ForwardBackwardOutput:
        mine = self._mine(datums)
        logprobs: list[torch.Tensor] = []
        total = 0.0
        with torch.set_grad_enabled(backward):
            for group, lps in self._forward.micro_batches(mine):
                batch = [mine[j] for j in group]
                loss = sum((spec.term(lp, input_tensors(d, self.device), config) for lp, d in zip(lps, batch, strict=True)),
                           torch.zeros((), device=self.device))
                if backward:
                    loss.backward()
                total += float(loss.detach())
                logprobs += [lp.detach().cpu() for lp in lps]
        return self._output(spec.name, len(datums), logprobs, total, {})

    def _run_custom(self, data: list[Any], datums: list[PackedDatum], fn: CustomLossFn) -> ForwardBackwardOutput:
        shard = self.dist.shard(len(datums))
        mine = [datums[i] for i in shard]
        with torch.no_grad():
            own = [lp.cpu() for _, lps in self._forward.micro_batches(mine) for lp in lps]
        leaves = [lp.clone().requires_grad_(True) for lp in self.dist.gather(len(datums), own)]
        loss, metrics = fn(data, leaves)
        loss.backward()
        grads = [leaf.grad if leaf.grad is not None else torch.zeros_like(leaf) for leaf in leaves]
        for group, lps in self._forward.micro_batches(mine):
            surrogate = sum(((grads[shard[j]].to(self.device) * lp).sum() for j, lp in zip(group, lps, strict=True)),
                            torch.zeros((), device=self.device))
            surrogate.backward()
        out = ForwardBackwardOutput("custom", [{"logprobs": TensorData.from_torch(lp)} for lp in leaves],
                                    {**{k: float(v) for k, v in metrics.items()}, "loss:sum": float(loss.detach())})
        return out

    def _output(self, name: str, n: int, own_logprobs: list[torch.Tensor], own_loss: float,
                metrics: dict[str, float]) -> ForwardBackwardOutput:
        logprobs = self.dist.gather(n, own_logprobs)
        loss = sum(self.dist.gather(self.dist.world_size, [own_loss])) if self.dist.active else own_loss
        outputs = [{"logprobs": TensorData.from_torch(lp)} for lp in logprobs]
        return ForwardBackwardOutput(name, outputs, {"loss:sum": float(loss), **metrics})

    # -- optimizer ------------------------------------------------------------------------------
    def optim_step(self, adam_params: AdamParams | None = None) -> EngineFuture[OptimStepResponse]:
        params = adam_params or AdamParams()
        numbers = (params.learning_rate, params.beta1, params.beta2, params.eps, params.weight_decay, params.grad_clip_norm)
        if not all(math.isfinite(x) for x in numbers):
            raise PosttrainError(f"AdamParams must be finite: {params}")
        if params.learning_rate < 0 or params.grad_clip_norm < 0 or params.weight_decay < 0:
            raise PosttrainError(f"AdamParams must be non-negative: {params}")
        return self._executor.submit(self._run_step, params)

    async def optim_step_async(self, adam_params: AdamParams | None = None) -> EngineFuture[OptimStepResponse]:
        return self.optim_step(adam_params)

    def _run_step(self, p: AdamParams) -> OptimStepResponse:
        params = list(self._params.values())
        self.dist.sum_grads(params)
        for param in params:
            if param.grad is None:
                param.grad = torch.zeros_like(param)
        max_norm = p.grad_clip_norm if p.grad_clip_norm > 0 else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        if not math.isfinite(grad_norm):  # an update from it would make every weight NaN
            self.optimizer.zero_grad(set_to_none=True)
            raise NonFiniteError(f"optim_step: the gradient norm is {grad_norm}; the update was not applied and the "
                                 "weights are those before it (a learning rate too high, or non-finite inputs)")
        for group in self.optimizer.param_groups:
            group.update(lr=p.learning_rate, betas=(p.beta1, p.beta2), eps=p.eps, weight_decay=p.weight_decay)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps += 1
        return OptimStepResponse({"grad_norm:mean": grad_norm, "learning_rate:mean": p.learning_rate})

    # -- checkpoints ------------------------------------------------------------------------------
    def _resolve(self, name: str) -> Path:
        if not name or name.strip() != name:
            raise PosttrainError(f"checkpoint name must be a non-empty name or path, got {name!r}")
        path = Path(name).expanduser()
        return path if path.is_absolute() or len(path.parts) > 1 else self.checkpoint_dir / name

    def _meta(self, kind: str, user_metadata: Mapping[str, str] | None) -> dict[str, Any]:
        return {"kind": kind, "base_model": self.base.name, "lora": self.lora.as_dict() if self.lora else None,
                "steps": self.steps, "user_metadata": dict(user_metadata or {})}

    def save_state(self, name: str, ttl_seconds: int | None = None, overwrite: bool = False,
                   user_metadata: Mapping[str, str] | None = None) -> EngineFuture[SaveWeightsResponse]:
        """Weights and optimizer state under ``name`` (a name in the checkpoint folder, or a path)."""
        target = self._resolve(name)
        if target.exists() and not overwrite:
            raise ckpt.CheckpointError(f"checkpoint {target} already exists; pass overwrite=True or choose another name")
        return self._executor.submit(self._run_save_state, target, overwrite, user_metadata)

    def _run_save_state(self, target: Path, overwrite: bool, user_metadata: Mapping[str, str] | None) -> SaveWeightsResponse:
        def write(folder: Path) -> None:
            ckpt.save_tensors(folder, self._params)
            torch.save(self.optimizer.state_dict(), folder / ckpt.OPTIMIZER)
            ckpt.write_meta(folder, self._meta("state", user_metadata))

        if self.dist.is_main():
            ckpt.write_atomically(target, write, overwrite)
        self.dist.barrier()
        return SaveWeightsResponse(str(target))

    def load_state(self, path: str) -> EngineFuture[LoadWeightsResponse]:
        """Load weights; the optimizer state is reset."""
        tensors = self._read_state(path, with_optimizer=False)[0]
        return self._executor.submit(self._apply_state, path, tensors, None)

    def load_state_with_optimizer(self, path: str) -> EngineFuture[LoadWeightsResponse]:
        tensors, optim_state, steps = self._read_state(path, with_optimizer=True)
        return self._executor.submit(self._apply_state, path, tensors, optim_state, steps)

    async def load_state_async(self, path: str) -> EngineFuture[LoadWeightsResponse]:
        return self.load_state(path)

    async def load_state_with_optimizer_async(self, path: str) -> EngineFuture[LoadWeightsResponse]:
        return self.load_state_with_optimizer(path)

    async def save_state_async(self, name: str, ttl_seconds: int | None = None, overwrite: bool = False,
                               user_metadata: Mapping[str, str] | None = None) -> EngineFuture[SaveWeightsResponse]:
        return self.save_state(name, ttl_seconds, overwrite, user_metadata)

    def _read_state(self, path: str, with_optimizer: bool) -> tuple[dict[str, torch.Tensor], Any, int]:
        meta = ckpt.read_meta(path)
        if meta.get("kind") != "state":
            raise ckpt.CheckpointError(f"{path} is a {meta.get('kind')} checkpoint, not a training state")
        ckpt.check_compatible(path, meta, self.base.name, self.lora.as_dict() if self.lora else None)
        tensors = ckpt.load_tensors(path, self._params)
        optim_state = ckpt.load_optimizer_state(path) if with_optimizer else None
        if optim_state is not None:
            groups = optim_state.get("param_groups") if isinstance(optim_state, dict) else None
            if not groups or sum(len(g["params"]) for g in groups) != len(self._params):
                raise ckpt.CheckpointError(f"{path}: optimizer state does not match this model's parameters")
        return tensors, optim_state, int(meta.get("steps", 0))

    def _apply_state(self, path: str, tensors: dict[str, torch.Tensor], optim_state: Any,
                     steps: int = 0) -> LoadWeightsResponse:
        with torch.no_grad():
            for name, param in self._params.items():
                param.copy_(tensors[name].to(param.device, param.dtype))
        self.optimizer = torch.optim.AdamW(list(self._params.values()), lr=0.0, foreach=False)
        if optim_state is not None:
            self.optimizer.load_state_dict(optim_state)
            self.steps = steps
        self.optimizer.zero_grad(set_to_none=True)
        return LoadWeightsResponse(path=str(path), model_id=self.base.name)

    # -- sampling -------------------------------------------------------------------------------------
    def save_weights_for_sampler(self, name: str, ttl_seconds: int | None = None,
                                 user_metadata: Mapping[str, str] | None = None) -> EngineFuture[SaveWeightsForSamplerResponse]:
        """A folder ``transformers`` (full fine-tune) or ``peft`` (LoRA) loads as is."""
        target = self._resolve(name)
        return self._executor.submit(self._run_save_sampler, target, user_metadata)

    async def save_weights_for_sampler_async(self, name: str, ttl_seconds: int | None = None,
                                             user_metadata: Mapping[str, str] | None = None) -> EngineFuture[SaveWeightsForSamplerResponse]:
        return self.save_weights_for_sampler(name, ttl_seconds, user_metadata)

    def _run_save_sampler(self, target: Path, user_metadata: Mapping[str, str] | None) -> SaveWeightsForSamplerResponse:
        def write(folder: Path) -> None:
            if self.lora is not None:  # the base's embeddings never change under LoRA: the adapter alone
                save_adapter(self.model, self.adapter or "default", folder)
            else:
                self.model.save_pretrained(str(folder))
            self.base.hf_tokenizer().save_pretrained(str(folder))  # the folder is usable on its own
            ckpt.write_meta(folder, self._meta("sampler", user_metadata))

        if self.dist.is_main():
            ckpt.write_atomically(target, write, overwrite=True)
        self.dist.barrier()
        return SaveWeightsForSamplerResponse(str(target))

    def save_weights_and_get_sampling_client(self, name: str | None = None) -> Any:
        """A SamplingClient over a snapshot of the current weights (later steps do not change it)."""
        from posttrain.engine.sampling import SamplingClient

        if name is not None:
            self.save_weights_for_sampler(name).result()
        return self._executor.submit(SamplingClient.from_training_model, self.model, self.base).result()

    async def save_weights_and_get_sampling_client_async(self, name: str | None = None) -> Any:
        return self.save_weights_and_get_sampling_client(name)

    def create_sampling_client(self, model_path: str) -> Any:
        from posttrain.engine.sampling import SamplingClient

        return SamplingClient.from_path(model_path, device=self.device)

    async def create_sampling_client_async(self, model_path: str) -> Any:
        return self.create_sampling_client(model_path)

    # -- info -------------------------------------------------------------------------------------------
    def get_tokenizer(self) -> Any:
        return self.base.tokenizer.hf_tokenizer or self.base.tokenizer

    def get_info(self) -> GetInfoResponse:
        return GetInfoResponse(
            model_id=self.base.name, base_model=self.base.name, lora_rank=self.lora.rank if self.lora else None,
            num_parameters=sum(p.numel() for p in self.model.parameters()),
            num_trainable_parameters=sum(p.numel() for p in self._params.values()),
            device=str(self.device), dtype=str(next(self.model.parameters()).dtype).removeprefix("torch."),
            max_context_length=self.base.max_context_length)

    @property
    def busy_seconds(self) -> float:
        """Seconds this client's worker spent computing (forward, backward, steps, saves)."""
        return self._executor.busy_seconds

    def close(self) -> None:
        self._executor.shutdown()
