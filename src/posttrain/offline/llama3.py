"""Offline tokenizer sources built from files that reference packages ship (no hub access).

``posttrain:llama3``: Meta's ``tokenizer.model`` from ``llama-models`` (tiktoken format), converted
once to a HF fast tokenizer with ``transformers``' tiktoken converter and cached on disk.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

from posttrain.errors import TokenizerNotAvailableError
from posttrain.tokenizer.core import Tokenizer, cache_dir

LLAMA3_BOS = "<|begin_of_text|>"
LLAMA3_EOT = "<|eot_id|>"


def _need(package: str, extra: str = "reference") -> TokenizerNotAvailableError:
    return TokenizerNotAvailableError(
        f"this offline tokenizer needs the '{package}' package: pip install 'posttrain[{extra}]'"
    )


def llama3_tokenizer_model_path() -> Path:
    try:
        import llama_models.llama3 as l3
    except ImportError as err:
        raise _need("llama-models") from err
    return Path(l3.__file__).parent / "tokenizer.model"


@cache
def llama3_offline() -> Tokenizer:
    model_path = llama3_tokenizer_model_path()
    stat = model_path.stat()
    target = cache_dir() / "tokenizers" / f"llama3-{stat.st_size}-{int(stat.st_mtime)}"
    tokenizer_json = target / "tokenizer.json"
    if not tokenizer_json.exists():
        _convert_llama3(model_path, target)
    return Tokenizer.from_file(tokenizer_json, name="posttrain:llama3", bos_token=LLAMA3_BOS, eos_token=LLAMA3_EOT)


def _convert_llama3(model_path: Path, target: Path) -> None:
    try:
        from llama_models.llama3.tokenizer import Tokenizer as MetaTokenizer
        from transformers.integrations.tiktoken import convert_tiktoken_to_fast
    except ImportError as err:
        raise _need("llama-models") from err
    meta = MetaTokenizer(model_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Convert into a scratch folder and rename, so concurrent first uses never see a half-written file.
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        convert_tiktoken_to_fast(meta.model, tmp)
        config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": LLAMA3_BOS,
            "eos_token": LLAMA3_EOT,
            "model_max_length": 131072,
            "clean_up_tokenization_spaces": False,
        }
        Path(tmp, "tokenizer_config.json").write_text(json.dumps(config, indent=2))
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "tokenizer.json").exists():
                raise
        else:
            os.makedirs(tmp, exist_ok=True)  # TemporaryDirectory cleanup expects it to exist


SOURCES: dict[str, Callable[[], Tokenizer]] = {"llama3": llama3_offline}
