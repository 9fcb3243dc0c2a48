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

import os
from collections.abc import Callable
from functools import cache
from pathlib import Path

from posttrain.errors import TokenizerNotAvailableError
from posttrain.tokenizer.core import Tokenizer, as_tokenizer, cache_dir

__all__ = ["OFFLINE_PREFIX", "Tokenizer", "as_tokenizer", "cache_dir", "get_tokenizer", "offline_sources",
           "register_offline_source"]


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
    # Imported lazily: each source imports its reference package only when asked for. A source
    # registered by the user under a built-in name keeps precedence.
    from posttrain.offline import SOURCES

    for name, factory in SOURCES.items():
        _OFFLINE_SOURCES.setdefault(name, factory)
