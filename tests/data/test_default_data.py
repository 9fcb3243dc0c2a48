"""The shipped dataset: reproducible from its generator, valid, varied."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from posttrain import get_renderer, to_messages
from posttrain.default_data import default_dataset_path, load_default_conversations

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_default_dataset.py"


def _generator():
    spec = importlib.util.spec_from_file_location("make_default_dataset", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_committed_file_equals_generator_output():
    gen = _generator()
    assert default_dataset_path().read_text(encoding="utf-8") == gen.generate()
    assert gen.generate() == gen.generate()  # deterministic


def test_rows_are_valid_and_varied(llama3_tokenizer):
    rows = load_default_conversations()
    assert 300 <= len(rows) <= 400
    renderer = get_renderer("llama3", llama3_tokenizer)
    systems = multi_turn = 0
    text = ""
    for row in rows:
        msgs = to_messages(row["messages"])
        assert msgs[-1].role == "assistant"
        systems += msgs[0].role == "system"
        multi_turn += sum(m.role == "user" for m in msgs) > 1
        text += "".join(m.text for m in msgs)
        tokens, weights = renderer.build_supervised_example(row["messages"])
        assert sum(weights) > 0
    assert systems > 50 and multi_turn > 50
    for needle in ("```", "\r\n", "\t", "谢", "ש", "👨‍👩‍👧‍👦", "e\u0301", "\u00a0", "<|eot_id|>", "{"):
        assert needle in text, needle
    assert max(len(m["content"]) for r in rows for m in r["messages"]) > 2000
