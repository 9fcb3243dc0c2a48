"""SamplingClient: ``sample`` and ``compute_logprobs`` on a fixed set of weights.

A client made from a training client holds a snapshot: a copy of the model with the LoRA adapter
merged into the weights (faster to sample, and later training steps do not change it). Logprobs are
the model's at temperature 1 and agree with the training client's ``forward`` to float tolerance.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from posttrain.engine import checkpoints as ckpt
from posttrain.engine.forward import PackedForward
from posttrain.engine.futures import EngineFuture, OrderedExecutor
from posttrain.engine.generation import check_params, generate
from posttrain.engine.lora import merge_lora
from posttrain.engine.models import BaseModel, load_base_model
from posttrain.engine.packing import PackedDatum, check_datums
from posttrain.errors import PosttrainError
from posttrain.types import SampleResponse, SamplingParams


def _as_ints(prompt: Any) -> list[int]:
    if hasattr(prompt, "to_ints"):
        return list(prompt.to_ints())
    if isinstance(prompt, Sequence) and all(isinstance(t, int) for t in prompt):
        return list(prompt)
    raise PosttrainError(f"prompt must be a ModelInput or a list of token ids, got {type(prompt).__name__}")


class SamplingClient:
    def __init__(self, model: torch.nn.Module, base: BaseModel, model_path: str | None = None):
        self.model = model.eval()
        self.base = base
        self.model_path = model_path
        self._forward = PackedForward(self.model)
        self._executor = OrderedExecutor("posttrain-sample")

    @classmethod
    def from_training_model(cls, model: torch.nn.Module, base: BaseModel) -> SamplingClient:
        snapshot = copy.deepcopy(model)
        if hasattr(snapshot, "merge_and_unload"):  # a peft model
            snapshot = merge_lora(snapshot)
        return cls(snapshot, base)

    @classmethod
    def from_path(cls, model_path: str, device: torch.device | None = None) -> SamplingClient:
        """A sampler checkpoint (``save_weights_for_sampler``), or any base model name or folder."""
        folder = Path(model_path).expanduser()
        if not (folder / ckpt.META).is_file():
            base = load_base_model(model_path, device)
            return cls(base.model, base, model_path)
        meta = ckpt.read_meta(folder)
        if meta.get("kind") != "sampler":
            raise ckpt.CheckpointError(f"{folder} is a {meta.get('kind')} checkpoint; sample from a sampler "
                                       "checkpoint (save_weights_for_sampler)")
        base = load_base_model(meta["base_model"], device)
        if meta.get("lora") is None:
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=base.model.dtype).to(base.model.device)
        else:
            from peft import PeftModel

            with warnings.catch_warnings():  # the adapter names the base by hub id; we load it from the cache
                warnings.filterwarnings("ignore", message=".*base_model_name_or_path.*was renamed.*")
                model = merge_lora(PeftModel.from_pretrained(base.model, str(folder)))
        return cls(model, base, str(folder))

    # -- API --------------------------------------------------------------------------------------
    def sample(self, prompt: Any, num_samples: int, sampling_params: SamplingParams,
               include_prompt_logprobs: bool = False) -> EngineFuture[SampleResponse]:
        """``num_samples`` continuations of one prompt, generated as one batch."""
        return self.sample_many([prompt], num_samples, sampling_params, include_prompt_logprobs)[0]

    async def sample_async(self, prompt: Any, num_samples: int, sampling_params: SamplingParams,
                           include_prompt_logprobs: bool = False) -> SampleResponse:
        return await self.sample(prompt, num_samples, sampling_params, include_prompt_logprobs).result_async()

    def sample_many(self, prompts: Sequence[Any], num_samples: int, sampling_params: SamplingParams,
                    include_prompt_logprobs: bool = False) -> list[EngineFuture[SampleResponse]]:
        """Every prompt's samples in one generation batch (an RL batch's groups together)."""
        check_params(sampling_params, num_samples)
        ints = [self._checked(p, i) for i, p in enumerate(prompts)]
        whole = self._executor.submit(self._run_sample, ints, num_samples, sampling_params, include_prompt_logprobs)
        return [self._executor.submit(lambda i=i: whole.result()[i]) for i in range(len(ints))]

    def compute_logprobs(self, prompt: Any) -> EngineFuture[list[float | None]]:
        """``[None, log p(t1 | t0), log p(t2 | t0 t1), ...]`` for the prompt's tokens."""
        tokens = self._checked(prompt, 0)
        return self._executor.submit(self._run_logprobs, tokens)

    async def compute_logprobs_async(self, prompt: Any) -> list[float | None]:
        return await self.compute_logprobs(prompt).result_async()

    def get_tokenizer(self) -> Any:
        return self.base.tokenizer.hf_tokenizer or self.base.tokenizer

    def get_base_model(self) -> str:
        return self.base.name

    # -- work -------------------------------------------------------------------------------------
    def _checked(self, prompt: Any, index: int) -> list[int]:
        tokens = _as_ints(prompt)
        if not tokens:
            raise PosttrainError(f"prompt {index} is empty")
        bad = [t for t in tokens if not 0 <= t < self.base.vocab_size]
        if bad:
            raise PosttrainError(f"prompt {index}: token id {bad[0]} is outside the model's vocabulary "
                                 f"(size {self.base.vocab_size})")
        if len(tokens) >= self.base.max_context_length:
            raise PosttrainError(f"prompt {index}: {len(tokens)} tokens leave no room in the model's context "
                                 f"of {self.base.max_context_length}")
        return tokens

    def _run_sample(self, prompts: list[list[int]], n: int, params: SamplingParams,
                    with_prompt_logprobs: bool) -> list[SampleResponse]:
        flat = [p for p in prompts for _ in range(n)]
        seqs = generate(self.model, flat, params, self.base.max_context_length, self.base.tokenizer.decode)
        return [SampleResponse(seqs[i * n:(i + 1) * n], self._run_logprobs(p) if with_prompt_logprobs else None)
                for i, p in enumerate(prompts)]

    @torch.no_grad()
    def _run_logprobs(self, tokens: list[int]) -> list[float | None]:
        if len(tokens) < 2:
            return [None]
        datum = PackedDatum(np.asarray(tokens[:-1], dtype=np.int64),
                            {"target_tokens": np.asarray(tokens[1:], dtype=np.int64)})
        check_datums([datum], (), self.base.vocab_size, self.base.max_context_length, "compute_logprobs")
        return [None, *self._forward.logprobs([datum])[0].tolist()]
