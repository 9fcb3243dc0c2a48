"""The :class:`Tokenizer` every renderer uses: a ``tokenizers`` tokenizer with the special tokens a chat
format needs, and where converted tokenizers are cached. Loading by name is :func:`posttrain.tokenizer.get_tokenizer`."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tokenizers


class Tokenizer:
    """A HF fast tokenizer seen through the operations renderers need."""

    def __init__(
        self,
        backend: tokenizers.Tokenizer,
        *,
        name: str,
        bos_token: str | None = None,
        eos_token: str | None = None,
        hf_tokenizer: Any = None,
    ):
        self.name = name
        self.backend = backend
        self.hf_tokenizer = hf_tokenizer
        # A copy without added tokens encodes text only as text: neither special (<|eot_id|>) nor
        # non-special added tokens (Qwen's <think>) can come out of message content.
        spec = json.loads(backend.to_str())
        added = spec.get("added_tokens") or []
        self._added: dict[str, int] = {t["content"]: t["id"] for t in added}
        self.special_ids: frozenset[int] = frozenset(t["id"] for t in added if t.get("special", False))
        self.added_ids: frozenset[int] = frozenset(self._added.values())
        spec["added_tokens"] = []
        spec["post_processor"] = None
        self._text_backend = tokenizers.Tokenizer.from_str(json.dumps(spec))
        self.bos_token = bos_token
        self.eos_token = eos_token

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_hf(cls, hf_tokenizer: Any, name: str | None = None) -> Tokenizer:
        """Wrap a ``transformers`` fast tokenizer (``PreTrainedTokenizerFast`` or similar)."""
        backend = getattr(hf_tokenizer, "backend_tokenizer", None) or getattr(hf_tokenizer, "_tokenizer", None)
        if not isinstance(backend, tokenizers.Tokenizer):
            raise TypeError(
                f"{type(hf_tokenizer).__name__} has no fast (tokenizers) backend; load it with use_fast=True"
            )
        return cls(
            backend,
            name=name or getattr(hf_tokenizer, "name_or_path", "") or type(hf_tokenizer).__name__,
            bos_token=_token_str(getattr(hf_tokenizer, "bos_token", None)),
            eos_token=_token_str(getattr(hf_tokenizer, "eos_token", None)),
            hf_tokenizer=hf_tokenizer,
        )

    @classmethod
    def from_file(cls, tokenizer_json: str | os.PathLike[str], **kwargs: Any) -> Tokenizer:
        path = Path(tokenizer_json)
        return cls(tokenizers.Tokenizer.from_file(str(path)), name=kwargs.pop("name", str(path)), **kwargs)

    # -- encoding -------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` as plain text: no BOS/EOS added, no control tokens parsed."""
        if not text:
            return []
        return self._text_backend.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """:meth:`encode` of many texts in one call (parallel in the tokenizers library)."""
        return [e.ids for e in self._text_backend.encode_batch(list(texts), add_special_tokens=False)]

    def encode_batch_with_offsets(self, texts: Sequence[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        return [(e.ids, e.offsets) for e in self._text_backend.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def id_to_token(self, token_id: int) -> str | None:
        return self.backend.id_to_token(token_id)

    def token_id(self, token: str) -> int:
        """Id of a control token such as ``<|eot_id|>``; raises KeyError naming the tokenizer."""
        tid = self._added.get(token)
        if tid is None:
            tid = self.backend.token_to_id(token)
        if tid is None:
            raise KeyError(f"token {token!r} is not in the vocabulary of tokenizer {self.name!r}")
        return tid

    @property
    def bos_token_id(self) -> int | None:
        return self.token_id(self.bos_token) if self.bos_token else None

    @property
    def eos_token_id(self) -> int | None:
        return self.token_id(self.eos_token) if self.eos_token else None

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def __repr__(self) -> str:
        return f"Tokenizer({self.name!r}, vocab_size={self.vocab_size})"


def _token_str(tok: Any) -> str | None:
    if tok is None:
        return None
    return tok if isinstance(tok, str) else getattr(tok, "content", str(tok))


def as_tokenizer(tok: Any) -> Tokenizer:
    """Accept our :class:`Tokenizer`, a ``transformers`` fast tokenizer, or a ``tokenizers.Tokenizer``."""
    if isinstance(tok, Tokenizer):
        return tok
    if isinstance(tok, tokenizers.Tokenizer):
        return Tokenizer(tok, name="tokenizers.Tokenizer")
    return Tokenizer.from_hf(tok)


def cache_dir() -> Path:
    """Where converted tokenizers are kept: ``$POSTTRAIN_CACHE`` or ``~/.cache/posttrain``."""
    root = os.environ.get("POSTTRAIN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "posttrain"
    )
    return Path(root)


