"""Per-token target log-probabilities of packed datums, with memory bounded in the number of tokens.

Three things keep a long micro-batch affordable; results stay equal up to floating-point summation
order (the head's gradient is summed chunk by chunk):

* **Packed attention** (:mod:`.attention`): each sequence attends within itself, Σ nᵢ² work, no mask.
* **Chunked output layer**: the head runs on ``chunk_tokens`` hidden states at a time and each chunk keeps
  only its ``[chunk]`` logprobs; its ``[chunk, vocab]`` logits are recomputed in backward (a checkpoint
  per chunk), so no ``[T, vocab]`` tensor ever exists, forward or backward. A LoRA head is applied
  inside the chunk, like any other head module.
* **Activation checkpointing** of the decoder layers: each keeps only its input; its activations are
  recomputed in backward. ``None`` (the default) turns it on for a micro-batch whose estimated
  activations exceed a quarter of the memory that was free when the client was made.

On CPU under glibc, the first checkpointed micro-batch also fixes malloc's mmap threshold for the process
(see :func:`fix_mmap_threshold`), or freed activations stay resident and a step's peak RSS is several
times its live memory. Small micro-batches leave glibc's defaults alone: their tensors are small, and
fresh mmap'd pages cost page faults.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from posttrain.engine.attention import PACKED_ATTENTION, boundaries, can_pack, packed_forward
from posttrain.engine.packing import PackedDatum, micro_batches
from posttrain.errors import PosttrainError

LOGITS_CHUNK_ELEMENTS = 1 << 25  # 128 MiB of fp32 logits per chunk
ACTIVATION_SHARE = 0.25  # auto checkpointing: activations above this share of free memory


@dataclass(frozen=True)
class MemorySettings:
    """``micro_batch_tokens``: the most tokens in one forward pass (larger batches are split; losses
    are sums, so accumulating the parts is exact). ``gradient_checkpointing``: True, False, or None for
    automatic. ``logprob_chunk_tokens``: tokens per output-layer chunk (None: 2²⁵ logits' worth)."""

    micro_batch_tokens: int = 8192
    gradient_checkpointing: bool | None = None
    logprob_chunk_tokens: int | None = None

    def __post_init__(self) -> None:
        for name in ("micro_batch_tokens", "logprob_chunk_tokens"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise PosttrainError(f"{name} must be a positive integer, got {value!r}")
        if self.gradient_checkpointing not in (True, False, None):
            raise PosttrainError(f"gradient_checkpointing must be True, False or None (automatic), "
                                 f"got {self.gradient_checkpointing!r}")


def activation_bytes_per_token(config: Any, dtype: torch.dtype) -> int:
    """Rough size of what autograd keeps per token without checkpointing (inputs of each projection,
    norms, attention output, MLP intermediates)."""
    text = getattr(config, "text_config", None) or config
    hidden = int(text.hidden_size)
    inter = int(getattr(text, "intermediate_size", 4 * hidden) or 4 * hidden)
    return int(text.num_hidden_layers) * (16 * hidden + 6 * inter) * torch.finfo(dtype).bits // 8


def free_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


MMAP_THRESHOLD = 256 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


_fixed = False


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Serve every allocation of ``threshold`` bytes or more with its own mmap (process-wide, glibc only).

    glibc raises its mmap threshold to the size of each large block freed, up to 32 MiB; after the first
    step, activation tensors come from the heap, and the heap keeps what they freed. Measured on
    SmolLM2-135M, one 2,048-token step with checkpointing: 2.6 GiB above the model without this, 0.56 GiB
    with it, and the same time. A ``MALLOC_MMAP_THRESHOLD_`` set by the user is left alone."""
    global _fixed
    if _fixed or not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return _fixed
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to fix
        _fixed = bool(ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, int(threshold)))
    return _fixed


def _causal_lm(model: Any) -> Any:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _decoder_layers(backbone: torch.nn.Module) -> list[torch.nn.Module]:
    from transformers.modeling_layers import GradientCheckpointingLayer

    return [m for m in backbone.modules() if isinstance(m, GradientCheckpointingLayer)]


@contextmanager
def _checkpointed(layers: Sequence[torch.nn.Module]) -> Iterator[None]:
    """Each layer's forward runs under a (non-reentrant) checkpoint while this is active. Only the
    forward is patched: the recompute in backward calls the saved function, not the attribute."""
    before = [layer.__dict__.get("forward") for layer in layers]  # an instance-level forward (hooks) to restore
    for layer in layers:
        inner = layer.forward
        layer.forward = lambda *a, _inner=inner, **k: checkpoint(_inner, *a, use_reentrant=False, **k)
    try:
        yield
    finally:
        for layer, old in zip(layers, before, strict=True):
            if old is None:
                del layer.forward
            else:
                layer.forward = old


class PackedForward:
    """Target logprobs of a model (plain ``transformers`` or ``peft``-wrapped) on packed datums."""

    def __init__(self, model: Any, settings: MemorySettings | None = None):
        self.model = model
        self.settings = settings or MemorySettings()
        causal = _causal_lm(model)
        self.config = causal.config
        self.backbone = causal.get_decoder()
        self.head = causal.get_output_embeddings()
        self.layers = _decoder_layers(self.backbone)
        self.packs = can_pack(self.config)
        if self.packs and self.config._attn_implementation != PACKED_ATTENTION:
            from posttrain.engine.attention import register

            register()
            causal.set_attn_implementation(PACKED_ATTENTION)
            self.packs = self.config._attn_implementation == PACKED_ATTENTION  # some models refuse it
        weight = self.head.weight if hasattr(self.head, "weight") else next(self.head.parameters())
        self.device, self.dtype = weight.device, weight.dtype
        self._vocab = int(weight.shape[0])
        self.chunk_tokens = self.settings.logprob_chunk_tokens or max(64, LOGITS_CHUNK_ELEMENTS // self._vocab)
        self.activation_budget = int(ACTIVATION_SHARE * free_memory_bytes(self.device))
        self._per_token = activation_bytes_per_token(self.config, self.dtype)
        self._head_trains = any(p.requires_grad for p in self.head.parameters())
        self._check_head()
        if self.packs and not self._packing_is_exact():
            warnings.warn(f"{type(causal).__name__}: sequences packed in one row do not get the logprobs they get "
                          "alone; each sequence runs on its own", stacklevel=2)
            self.packs = False

    # -- policy -----------------------------------------------------------------------------------------
    def checkpoints(self, tokens: int) -> bool:
        """Whether a micro-batch of ``tokens`` tokens is run with activation checkpointing."""
        if not torch.is_grad_enabled() or not self.layers:
            return False
        chosen = self.settings.gradient_checkpointing
        return chosen if chosen is not None else tokens * self._per_token > self.activation_budget

    def micro_batches(self, datums: Sequence[PackedDatum]) -> Iterator[tuple[list[int], list[torch.Tensor]]]:
        """``(indices, logprobs)`` per micro-batch, in order."""
        for group in micro_batches([len(d) for d in datums], self.settings.micro_batch_tokens):
            yield group, self.logprobs([datums[i] for i in group])

    # -- compute --------------------------------------------------------------------------------------
    def logprobs(self, datums: Sequence[PackedDatum]) -> list[torch.Tensor]:
        """One packed pass; per datum, ``log p(target_t | input_≤t)`` as float32."""
        if not self.packs and len(datums) > 1:  # state would flow from one sequence into the next
            return [lp for d in datums for lp in self.logprobs([d])]
        lengths = [len(d) for d in datums]
        ids = torch.from_numpy(np.concatenate([d.tokens for d in datums])).to(self.device)
        positions = torch.cat([torch.arange(n) for n in lengths]).to(self.device)
        targets = torch.from_numpy(np.concatenate([d.inputs["target_tokens"] for d in datums])).to(self.device)
        kwargs = boundaries(lengths) if self.packs else {}
        checkpointed = self.checkpoints(len(ids))
        if checkpointed and self.device.type == "cpu":
            fix_mmap_threshold()  # large micro-batches only: small ones run faster on glibc's defaults
        layers = _checkpointed(self.layers) if checkpointed else nullcontext()
        with packed_forward() if self.packs else nullcontext(), layers:
            out = self.backbone(input_ids=ids[None], position_ids=positions[None], use_cache=False, **kwargs)
        return list(self.head_logprobs(out.last_hidden_state[0], targets).split(lengths))

    def head_logprobs(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``log softmax(head(hidden))[target]`` chunk by chunk; backward recomputes each chunk's logits."""
        parts = []
        for start in range(0, len(hidden), self.chunk_tokens):
            h, t = hidden[start:start + self.chunk_tokens], targets[start:start + self.chunk_tokens]
            if torch.is_grad_enabled() and (h.requires_grad or self._head_trains):
                parts.append(checkpoint(self._chunk, h, t, use_reentrant=False))
            else:
                parts.append(self._chunk(h, t))
        return torch.cat(parts)

    @torch.no_grad()
    def _check_head(self) -> None:
        """The chunked head must give the model's own logits: refuse an architecture whose output layer
        does more than this module knows of, rather than train it on wrong numbers."""
        ids = torch.from_numpy(self._probe(1, 8)).to(self.device)[None]
        want = torch.log_softmax(self.model(input_ids=ids, use_cache=False).logits[0, :-1].float(), -1)
        want = want.gather(-1, ids[0, 1:, None]).squeeze(-1)
        hidden = self.backbone(input_ids=ids, use_cache=False).last_hidden_state[0, :-1]
        got = self.head_logprobs(hidden, ids[0, 1:])
        tolerance = 1e-3 if self.dtype == torch.float32 else 5e-2
        if not torch.allclose(got, want, atol=tolerance, rtol=tolerance):
            raise PosttrainError(f"{type(_causal_lm(self.model)).__name__}: the output layer computed chunk by chunk "
                                 f"differs from the model's own logits (max {float((got - want).abs().max()):.3g}); "
                                 "this architecture's head is not supported")

    @torch.no_grad()
    def _packing_is_exact(self) -> bool:
        """Two sequences packed in one row against each alone: catches an architecture whose layers
        ignore the boundaries (state carried along the row, attention without the kwargs)."""
        probes = [self._probe(1, 6), self._probe(11, 9)]
        datums = [PackedDatum(p[:-1], {"target_tokens": p[1:]}) for p in probes]
        try:
            packed = self.logprobs(datums)
        except (PosttrainError, ValueError, TypeError, RuntimeError):  # the model refuses packed input
            return False
        self.packs = False
        alone = [self.logprobs([d])[0] for d in datums]
        self.packs = True
        tolerance = 1e-4 if self.dtype == torch.float32 else 5e-2
        return all(torch.allclose(p, a, atol=tolerance, rtol=tolerance) for p, a in zip(packed, alone, strict=True))

    def _probe(self, start: int, n: int) -> np.ndarray:
        """``n`` arbitrary token ids spread over the vocabulary, for the start-up checks."""
        return np.arange(start, start + n, dtype=np.int64) * 7919 % self._vocab

    def _chunk(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = self.head(hidden).float()
        # the final scalings some architectures apply after the head (Gemma, Cohere, Granite)
        config = getattr(self.config, "text_config", None) or self.config
        scale = getattr(config, "logit_scale", None)
        if scale is not None:
            logits = logits * scale
        divisor = getattr(config, "logits_scaling", None)
        if divisor is not None:
            logits = logits / divisor
        cap = getattr(config, "final_logit_softcapping", None)
        if cap is not None:
            logits = torch.tanh(logits / cap) * cap
        return -F.cross_entropy(logits, targets, reduction="none")
