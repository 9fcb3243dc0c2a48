"""Renderers: one module per model family. :func:`get_renderer` builds one by name."""

from __future__ import annotations

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
from posttrain.renderers.llama3 import Llama3Renderer
from posttrain.renderers.role_colon import RoleColonRenderer
from posttrain.train_on_what import TrainOnWhat

_REGISTRY: dict[str, type[Renderer]] = {}
# Default tokenizer per renderer name, used by the CLI when --tokenizer is not given.
DEFAULT_TOKENIZERS: dict[str, str] = {}


def register_renderer(cls: type[Renderer], default_tokenizer: str) -> type[Renderer]:
    _REGISTRY[cls.name] = cls
    DEFAULT_TOKENIZERS[cls.name] = default_tokenizer
    return cls


register_renderer(Llama3Renderer, "posttrain:llama3")
register_renderer(RoleColonRenderer, "posttrain:llama3")


def renderer_names() -> list[str]:
    return sorted(_REGISTRY)


def get_renderer(name: str, tokenizer: Any) -> Renderer:
    """Build the renderer ``name`` over ``tokenizer`` (ours, a HF fast tokenizer, or a tokenizers.Tokenizer)."""
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ValueError(f"unknown renderer {name!r}; known renderers: {', '.join(renderer_names())}")
    return cls(tokenizer)


__all__ = [
    "Chunk",
    "DEFAULT_TOKENIZERS",
    "Llama3Renderer",
    "Piece",
    "RenderContext",
    "RenderedMessage",
    "Renderer",
    "RoleColonRenderer",
    "Special",
    "SupervisedExample",
    "Text",
    "TrainOnWhat",
    "get_renderer",
    "register_renderer",
    "renderer_names",
]
