"""The shipped dataset: reproducible from its generator, valid, varied, and rendered like Meta's encoder."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from llama_models.datatypes import RawMessage

from posttrain import get_renderer, to_messages
from posttrain.default_data import default_dataset_path, load_default_conversations

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_default_dataset.py"


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_default_dataset", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return load_default_conversations()


def test_committed_file_equals_generator_output(generator, tmp_path, monkeypatch):
    committed = default_dataset_path().read_bytes()
    assert committed == generator.generate().encode("utf-8"), "rerun scripts/make_default_dataset.py"
    assert generator.generate() == generator.generate()  # deterministic within a process
    # main() writes exactly those bytes (no newline translation, UTF-8).
    out = tmp_path / "out.jsonl"
    monkeypatch.setattr(generator, "OUT", out)
    generator.main()
    assert out.read_bytes() == committed
    assert len(committed) < 1_500_000


def test_seed_changes_output(generator):
    assert generator.generate(n=20, seed=1) != generator.generate(n=20, seed=0)
    assert generator.generate(n=20, seed=0) == generator.generate(seed=0)[: len(generator.generate(n=20, seed=0))]


def test_rows_are_valid_conversations(rows):
    assert 300 <= len(rows) <= 400
    for i, row in enumerate(rows):
        assert set(row) == {"messages"}, i
        msgs = to_messages(row["messages"])
        assert msgs[-1].role == "assistant", i
        body = msgs[1:] if msgs[0].role == "system" else msgs
        assert [m.role for m in body] == ["user", "assistant"] * (len(body) // 2), i
        assert 1 <= len(body) // 2 <= 4, i
        assert all(m.role != "system" for m in body), i


def test_rows_are_varied(rows):
    msgs = [to_messages(r["messages"]) for r in rows]
    systems = sum(m[0].role == "system" for m in msgs)
    assert 0.2 * len(rows) < systems < 0.6 * len(rows)
    user_turns = [sum(x.role == "user" for x in m) for m in msgs]
    assert {1, 2, 3, 4} <= set(user_turns)
    texts = [x.text for m in msgs for x in m]
    assert len(set(texts)) > 0.4 * len(texts)  # templates, but not one conversation repeated
    text = "".join(texts)
    needles = ["```python", "```json", "\r\n", "\t", "谢", "富士山", "ש", "القاهرة", "नई", "Hà Nội", "👨‍👩‍👧‍👦",
               "🏳️‍🌈", "e\u0301", "A\u030a", "\u00a0", "\u200b", "<|eot_id|>", "<|im_start|>", "<|im_end|>", "[INST]",
               "{\"name\"", "| **total** |", "°F", "√n"]
    for needle in needles:
        assert needle in text, needle
    lengths = sorted(len(t) for t in texts)
    assert sum(n > 2000 for n in lengths) >= 5 and lengths[-1] > 4000  # a few long messages
    assert sum(n < 40 for n in lengths) > 50  # and many short ones
    assert any(t != t.strip() for t in texts)  # whitespace at content edges is kept


def test_llama3_rendering_equals_meta(rows, llama3_tokenizer, meta_chat_format):
    """The main job's default input renders token-for-token like Meta's official encoder."""
    renderer = get_renderer("llama3", llama3_tokenizer)
    header = len(meta_chat_format._encode_header("assistant"))
    for i, row in enumerate(rows):
        ref = meta_chat_format.encode_dialog_prompt([RawMessage(**m) for m in row["messages"]]).tokens
        tokens, weights = renderer.build_supervised_example(row["messages"])
        assert tokens == ref[:-header], f"row {i}"
        assert sum(weights) > 0, f"row {i}"
