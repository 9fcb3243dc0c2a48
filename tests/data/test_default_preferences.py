"""The shipped preference set: reproducible from its generator, valid comparisons, balanced, varied,
and every pair fits the DPO recipe's max_length on the default model's renderer."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from posttrain import get_renderer, get_tokenizer
from posttrain.data.preference import LabeledComparison, dpo_dataset, read_comparisons_jsonl
from posttrain.default_data import default_preferences_path
from posttrain.renderers.base import Renderer
from posttrain.types import Datum

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_default_preferences.py"
N_PAIRS = 360
MAX_LENGTH = 256  # the DPO recipe's budget on the default model


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_default_preferences", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def comparisons() -> list[LabeledComparison]:
    return list(read_comparisons_jsonl(str(default_preferences_path())))


@pytest.fixture(scope="module")
def raw_rows() -> list[dict]:
    with default_preferences_path().open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_committed_file_equals_generator_output(generator, tmp_path, monkeypatch):
    committed = default_preferences_path().read_bytes()
    assert committed == generator.generate().encode("utf-8"), "rerun scripts/make_default_preferences.py"
    assert generator.generate(seed=1) != generator.generate(seed=0)
    # main() writes exactly those bytes (no newline translation, UTF-8).
    out = tmp_path / "out.jsonl"
    monkeypatch.setattr(generator, "OUT", out)
    generator.main()
    assert out.read_bytes() == committed


def test_rows_are_valid_comparisons(comparisons, raw_rows):
    assert len(comparisons) == len(raw_rows) == N_PAIRS
    for i, lc in enumerate(comparisons):
        assert isinstance(lc, LabeledComparison) and lc.label in ("A", "B"), i
        chosen, rejected = lc.chosen_and_rejected
        assert chosen != rejected, i
        assert [m.role for m in chosen] == [m.role for m in rejected] == ["assistant"], i
        prompt = lc.comparison.prompt_conversation
        assert prompt[-1].role == "user", i
        assert all(m.role in ("system", "user", "assistant") for m in prompt), i
        assert all(isinstance(m.content, str) and m.content for m in [*prompt, *chosen, *rejected]), i


def test_no_duplicate_prompt_and_chosen(comparisons):
    keys = [json.dumps([[m.to_dict() for m in lc.comparison.prompt_conversation],
                        [m.to_dict() for m in lc.chosen_and_rejected[0]]]) for lc in comparisons]
    assert len(set(keys)) == len(keys)


def test_labels_balanced_and_categories_varied(comparisons, raw_rows):
    share_a = sum(lc.label == "A" for lc in comparisons) / len(comparisons)
    assert 0.4 <= share_a <= 0.6
    per_category = Counter(row["category"] for row in raw_rows)
    assert len(per_category) >= 6
    for category in per_category:  # position does not predict the preference within a category either
        labels = [row["label"] for row in raw_rows if row["category"] == category]
        assert abs(labels.count("A") - labels.count("B")) <= 1, category
    prompts = [lc.comparison.prompt_conversation for lc in comparisons]
    assert 0.1 * N_PAIRS < sum(p[0].role == "system" for p in prompts) < 0.6 * N_PAIRS
    assert sum(len(p) >= 3 and p[-2].role == "assistant" for p in prompts) >= 10  # some prior turns


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return get_renderer("smollm2", get_tokenizer("posttrain:smollm2"))


def _datums(comparisons: list[LabeledComparison], renderer: Renderer, max_length: int | None) -> list[Datum]:
    ds, stats = dpo_dataset(comparisons, renderer, batch_size=len(comparisons), max_length=max_length)
    assert (stats.kept, stats.ties, stats.skipped) == (len(comparisons), 0, 0)
    return ds.get_batch(0)


def test_every_pair_renders_within_max_length(comparisons, renderer):
    full = _datums(comparisons, renderer, None)
    cut = _datums(comparisons, renderer, MAX_LENGTH)
    im_end = renderer.special_id("<|im_end|>")
    assert len(full) == len(cut) == 2 * N_PAIRS
    longest = max(len(d.target_tokens) + 1 for d in full)
    assert longest <= MAX_LENGTH, f"a pair needs {longest} tokens"
    for i, (f, c) in enumerate(zip(full, cut, strict=True)):
        # Same tokens and weights with the limit as without it: no completion was truncated.
        assert np.array_equal(f.input_tokens, c.input_tokens) and np.array_equal(f.weights, c.weights), i
        # The completion ends the sequence: its closing <|im_end|> trains, the "\n" after it does not.
        assert c.weights[-2] == 1 and c.target_tokens[-2] == im_end and c.weights[-1] == 0, i
