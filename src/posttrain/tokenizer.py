"""Tokenizer loading and the thin wrapper renderers use.

:class:`Tokenizer` wraps a HF ``tokenizers`` backend with the two guarantees renderers rely on:

* :meth:`Tokenizer.encode` never adds special tokens (no BOS per chunk), and
* it never turns text into a control token: ``"<|eot_id|>"`` inside a message is encoded as the
  characters it is made of, exactly as Meta's and OpenAI's reference encoders do.

Control tokens reach a sequence only when a renderer places them by id.

:func:`get_tokenizer` loads by HF hub id, local folder or ``tokenizer.json`` file, or by one of the
offline sources (``posttrain:llama3`` etc.) built from reference packages, and caches per process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import tokenizers

from posttrain.errors import TokenizerNotAvailableError


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


# -- offline sources ------------------------------------------------------------------------------

OfflineSource = Callable[[], Tokenizer]
_OFFLINE_SOURCES: dict[str, OfflineSource] = {}
OFFLINE_PREFIX = "posttrain:"


def register_offline_source(name: str, factory: OfflineSource) -> None:
    """Register ``posttrain:<name>``: a tokenizer built from files shipped in an installed package."""
    _OFFLINE_SOURCES[name] = factory


def offline_sources() -> list[str]:
    _load_builtin_sources()
    return sorted(OFFLINE_PREFIX + n for n in _OFFLINE_SOURCES)


def cache_dir() -> Path:
    """Where converted tokenizers are kept: ``$POSTTRAIN_CACHE`` or ``~/.cache/posttrain``."""
    root = os.environ.get("POSTTRAIN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "posttrain"
    )
    return Path(root)


# Meta's official repos are gated; this ungated mirror carries the same tokenizer files
# (the workaround tinker-cookbook uses).
LLAMA3_UNGATED_MIRROR = "thinkingmachineslabinc/meta-llama-3-instruct-tokenizer"


def _resolve_hub_id(name: str) -> str:
    if name.startswith("meta-llama/Llama-3") or name.startswith("meta-llama/Meta-Llama-3"):
        return LLAMA3_UNGATED_MIRROR
    return name


@cache
def get_tokenizer(name_or_path: str) -> Tokenizer:
    """Load a tokenizer by HF hub id, local folder, ``tokenizer.json`` path or offline source name.

    * ``posttrain:llama3`` (and the other names in :func:`offline_sources`): built from an installed
      reference package, no network.
    * a folder with ``tokenizer.json`` / ``tokenizer_config.json``: ``AutoTokenizer`` on it.
    * a hub id such as ``Qwen/Qwen3-8B``: ``AutoTokenizer.from_pretrained``, which uses the local HF
      cache and honours ``HF_HUB_OFFLINE``. ``meta-llama/Llama-3*`` ids load from an ungated mirror.
    """
    if name_or_path.startswith(OFFLINE_PREFIX):
        _load_builtin_sources()
        key = name_or_path[len(OFFLINE_PREFIX) :]
        factory = _OFFLINE_SOURCES.get(key)
        if factory is None:
            raise TokenizerNotAvailableError(
                f"unknown offline tokenizer source {name_or_path!r}; known: {', '.join(offline_sources())}"
            )
        return factory()
    path = Path(name_or_path).expanduser()
    if path.is_file() or path.is_dir():
        return _load_local(path)
    from transformers import AutoTokenizer

    hub_id = _resolve_hub_id(name_or_path)
    # huggingface_hub reads HF_HUB_OFFLINE once, at import: ask again here, so a process that went offline
    # after importing it reads the cache instead of retrying the network for half a minute
    offline = os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")
    try:
        hf = AutoTokenizer.from_pretrained(hub_id, local_files_only=offline)
    except (OSError, ValueError) as err:
        hint = ""
        if hub_id == LLAMA3_UNGATED_MIRROR:
            hint = " For Llama 3 without network use --tokenizer posttrain:llama3 (needs posttrain[reference])."
        raise TokenizerNotAvailableError(
            f"could not load tokenizer {name_or_path!r} (hub id {hub_id!r}): {err}. "
            "If you are offline, download it once with network (it is then read from the HF cache), "
            "pass a local folder containing tokenizer.json and tokenizer_config.json, "
            f"or use one of the offline sources: {', '.join(offline_sources())}.{hint}"
        ) from err
    return Tokenizer.from_hf(hf, name=name_or_path)


def _load_local(path: Path) -> Tokenizer:
    """A ``tokenizer.json`` file or a tokenizer folder. The libraries raise bare ``Exception`` or
    assorted errors for a file or folder that holds no tokenizer; all become one clear error."""
    try:
        if path.is_file():
            return Tokenizer.from_file(path, name=str(path))
        from transformers import AutoTokenizer

        return Tokenizer.from_hf(AutoTokenizer.from_pretrained(str(path), local_files_only=True), name=str(path))
    except Exception as err:  # noqa: BLE001 - tokenizers raises plain Exception for a malformed file
        what = "a tokenizer.json file" if path.is_file() else "a tokenizer folder (tokenizer.json, tokenizer_config.json)"
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TokenizerNotAvailableError(f"{path}: not {what}: {reason[:300]}") from err


def _load_builtin_sources() -> None:
    # Imported lazily: each source imports its reference package only when asked for.
    import posttrain.offline  # noqa: F401
