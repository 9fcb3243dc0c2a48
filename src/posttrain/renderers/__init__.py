"""Renderers: one module per model family. :func:`get_renderer` builds one by name.

Renderer modules are imported on first use, so loading posttrain stays cheap.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from posttrain.renderers.base import (
    Chunk,
    Piece,
    RenderContext,
    RenderedMessage,
    Renderer,
    Special,
    SupervisedExample,
    Text,
)
from posttrain.train_on_what import TrainOnWhat


@dataclass(frozen=True)
class RendererSpec:
    module: str
    cls: str
    default_tokenizer: str
    kwargs: tuple[tuple[str, Any], ...] = ()


_R = "posttrain.renderers."
_REGISTRY: dict[str, RendererSpec] = {
    "role_colon": RendererSpec(_R + "role_colon", "RoleColonRenderer", "posttrain:llama3"),
    "llama3": RendererSpec(_R + "llama3", "Llama3Renderer", "posttrain:llama3"),
    "qwen3": RendererSpec(_R + "qwen3", "Qwen3Renderer", "posttrain:qwen3"),
    "qwen3_disable_thinking": RendererSpec(_R + "qwen3", "Qwen3DisableThinkingRenderer", "posttrain:qwen3"),
    "qwen3_instruct": RendererSpec(_R + "qwen3", "Qwen3InstructRenderer", "posttrain:qwen3"),
    "deepseekv3": RendererSpec(_R + "deepseek_v3", "DeepSeekV3Renderer", "posttrain:deepseek-v3"),
    "deepseekv3_thinking": RendererSpec(_R + "deepseek_v3", "DeepSeekV3ThinkingRenderer", "posttrain:deepseek-v3.1"),
    "deepseekv3_disable_thinking": RendererSpec(_R + "deepseek_v3", "DeepSeekV3DisableThinkingRenderer",
                                                "posttrain:deepseek-v3.1"),
    "gpt_oss_no_sysprompt": RendererSpec(_R + "gpt_oss", "GptOssRenderer", "posttrain:gpt-oss",
                                         (("reasoning_effort", None),)),
    "gpt_oss_low_reasoning": RendererSpec(_R + "gpt_oss", "GptOssRenderer", "posttrain:gpt-oss",
                                          (("reasoning_effort", "low"),)),
    "gpt_oss_medium_reasoning": RendererSpec(_R + "gpt_oss", "GptOssRenderer", "posttrain:gpt-oss",
                                             (("reasoning_effort", "medium"),)),
    "gpt_oss_high_reasoning": RendererSpec(_R + "gpt_oss", "GptOssRenderer", "posttrain:gpt-oss",
                                           (("reasoning_effort", "high"),)),
    "mistral": RendererSpec(_R + "mistral", "MistralRenderer", "posttrain:mistral-v7"),
    "mistral_v3": RendererSpec(_R + "mistral", "MistralV3Renderer", "posttrain:mistral-v3"),
    "smollm2": RendererSpec(_R + "smollm2", "SmolLM2Renderer", "posttrain:smollm2"),
}

# Model-name patterns (lower-cased substrings, checked in order) → recommended renderer.
_MODEL_RULES: list[tuple[str, str]] = [
    ("qwen3-vl", "qwen3"),
    ("instruct-2507", "qwen3_instruct"),
    ("qwen3", "qwen3"),
    ("deepseek-v3.1", "deepseekv3_thinking"),
    ("deepseek-v3", "deepseekv3"),
    ("gpt-oss", "gpt_oss_medium_reasoning"),
    ("mistral", "mistral"),
    ("ministral", "mistral"),
    ("smollm2", "smollm2"),
    ("llama-3", "llama3"),
    ("llama3", "llama3"),
]


def renderer_names() -> list[str]:
    return sorted(_REGISTRY)


def default_tokenizer_for(name: str) -> str:
    return _spec(name).default_tokenizer


def _spec(name: str) -> RendererSpec:
    spec = _REGISTRY.get(name)
    if spec is None:
        raise ValueError(f"unknown renderer {name!r}; known renderers: {', '.join(renderer_names())}")
    return spec


def get_renderer(name: str, tokenizer: Any) -> Renderer:
    """Build the renderer ``name`` over ``tokenizer`` (ours, a HF fast tokenizer, or a tokenizers.Tokenizer)."""
    spec = _spec(name)
    cls = getattr(importlib.import_module(spec.module), spec.cls)
    return cls(tokenizer, **dict(spec.kwargs))


def get_recommended_renderer_name(model_name: str) -> str:
    """The renderer to use for a model, e.g. ``Qwen/Qwen3-8B`` → ``qwen3``."""
    lowered = model_name.lower()
    for pattern, renderer in _MODEL_RULES:
        if pattern in lowered:
            return renderer
    raise ValueError(
        f"no recommended renderer for model {model_name!r}; pass one of: {', '.join(renderer_names())}"
    )


__all__ = [
    "Chunk",
    "Piece",
    "RenderContext",
    "RenderedMessage",
    "Renderer",
    "Special",
    "SupervisedExample",
    "Text",
    "TrainOnWhat",
    "default_tokenizer_for",
    "get_recommended_renderer_name",
    "get_renderer",
    "renderer_names",
]
