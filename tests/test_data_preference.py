"""Preference data: comparisons, labels, JSONL and hub-schema builders, DPO pairs, ties counted."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from posttrain import InputError, PosttrainError, TrainOnWhat, get_renderer
from posttrain.data.preference import (
    Comparison,
    LabeledComparison,
    arena_builder,
    comparison_to_dpo_datums,
    dpo_dataset,
    hhh_builder,
    read_comparisons_jsonl,
    ultrafeedback_builder,
)
from posttrain.datum import datum_from_tokens_weights

PROMPT = [{"role": "user", "content": "Name a color."}]
A = [{"role": "assistant", "content": "Blue."}]
B = [{"role": "assistant", "content": "I like turtles."}]


@pytest.fixture(scope="module")
def renderer(llama3_tokenizer):
    return get_renderer("llama3", llama3_tokenizer)


def test_swap_flips_completions_and_label():
    lc = LabeledComparison(Comparison.from_dicts(PROMPT, A, B), "A")
    s = lc.swap()
    assert s.label == "B" and s.comparison.completion_A == lc.comparison.completion_B
    assert s.swap() == lc
    assert LabeledComparison(lc.comparison, "Tie").swap().label == "Tie"
    with pytest.raises(PosttrainError, match="label must be 'A', 'B' or 'Tie'"):
        LabeledComparison(lc.comparison, "C")  # type: ignore[arg-type]


def test_dpo_pair_is_chosen_then_rejected_with_completion_weights(renderer):
    lc = LabeledComparison(Comparison.from_dicts(PROMPT, A, B), "B")
    chosen, rejected = comparison_to_dpo_datums(lc, renderer, None)
    for datum, completion in ((chosen, B), (rejected, A)):
        tokens, weights = renderer.build_supervised_example(PROMPT + completion, TrainOnWhat.LAST_ASSISTANT_MESSAGE)
        assert datum == datum_from_tokens_weights(tokens, weights)
    prompt_len = len(renderer.build_generation_prompt(PROMPT))
    assert chosen.input_tokens[: prompt_len].tolist() == rejected.input_tokens[: prompt_len].tolist()
    assert comparison_to_dpo_datums(LabeledComparison(lc.comparison, "Tie"), renderer, None) == []


def test_jsonl_comparisons_and_dpo_dataset(tmp_path, renderer):
    p = tmp_path / "prefs.jsonl"
    rows = [{"prompt_conversation": PROMPT, "completion_A": A, "completion_B": B, "label": lab}
            for lab in ("A", "B", "Tie", "A", "B")]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ds, stats = dpo_dataset(read_comparisons_jsonl(str(p)), renderer, batch_size=2)
    assert (stats.kept, stats.ties, stats.skipped) == (4, 1, 0)
    assert len(ds) == 2
    batch = ds.get_batch(0)
    assert len(batch) == 4  # two comparisons → chosen, rejected, chosen, rejected
    blue = renderer.tokenizer.encode("Blue.")
    assert [blue[0] in d.target_tokens.tolist() for d in batch] == [True, False, False, True]


@pytest.mark.parametrize(
    ("row", "pattern"),
    [
        ({"prompt_conversation": PROMPT, "completion_A": A, "label": "A"}, r"prefs\.jsonl:1: missing completion_B"),
        ({"prompt_conversation": PROMPT, "completion_A": A, "completion_B": [{"role": "bot", "content": "x"}], "label": "A"},
         r"prefs\.jsonl:1: message 0, field 'role'"),
        ({"prompt_conversation": PROMPT, "completion_A": A, "completion_B": B, "label": "X"},
         r"prefs\.jsonl:1: label must be"),
    ],
)
def test_jsonl_errors(tmp_path, row, pattern):
    p = tmp_path / "prefs.jsonl"
    p.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=pattern):
        list(read_comparisons_jsonl(str(p)))


def hub_folder(root: Path, splits: dict[str, list[dict]]) -> str:
    (root / "data").mkdir(parents=True)
    for split, rows in splits.items():
        datasets.Dataset.from_list(rows).to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
    return str(root)


def test_hhh_builder(tmp_path, renderer):
    def row(i, bad=False):
        prefix = f"\n\nHuman: Hi {i}\n\nAssistant: Hello!\n\nHuman: Help me {i}"
        rejected = prefix + "\n\nAssistant: No." if not bad else f"\n\nHuman: other {i}\n\nAssistant: No."
        return {"chosen": prefix + "\n\nAssistant: Sure.", "rejected": rejected}

    path = hub_folder(tmp_path / "hh-rlhf", {"train": [row(i) for i in range(6)] + [row(99, bad=True)],
                                              "test": [row(i) for i in range(3)]})
    train, test = hhh_builder(path, test_size=2)()
    assert len(train) == 7 and len(test) == 2
    errors = [x for x in train if isinstance(x, InputError)]
    assert len(errors) == 1 and "chosen has 4 turns, rejected 2; they must match" in str(errors[0])
    good = next(x for x in train if isinstance(x, LabeledComparison))
    assert [m.role for m in good.comparison.prompt_conversation] == ["user", "assistant", "user"]
    assert good.comparison.completion_A[0].text == "Sure." and good.label == "A"
    _, stats = dpo_dataset(train, renderer, 2)
    assert (stats.kept, stats.skipped) == (6, 1) and "hh-rlhf:" in stats.reasons[0]


def test_ultrafeedback_builders(tmp_path):
    argilla = [{"source": "evol", "instruction": f"Task {i}", "chosen_response": "good", "chosen_rating": 5.0,
                "rejected_response": "bad", "rejected_rating": 1.0, "chosen_model": "m1", "rejected_model": "m2"}
               for i in range(5)]
    train, test = ultrafeedback_builder(hub_folder(tmp_path / "argilla", {"train": argilla}), test_size=2)()
    assert len(train) == 3 and len(test) == 2
    assert all(x.comparison.completion_A[0].text == "good" for x in train)
    h4 = [{"prompt": f"Task {i}", "prompt_id": str(i),
           "chosen": [{"role": "user", "content": f"Task {i}"}, {"role": "assistant", "content": "good"}],
           "rejected": [{"role": "user", "content": f"Task {i}"}, {"role": "assistant", "content": "bad"}],
           "messages": [], "score_chosen": 8.0, "score_rejected": 3.0} for i in range(4)]
    train, _ = ultrafeedback_builder(hub_folder(tmp_path / "h4", {"train_prefs": h4}), split="train_prefs", test_size=1)()
    assert len(train) == 3 and train[0].comparison.prompt_conversation[0].text.startswith("Task")


def test_arena_builder(tmp_path, renderer):
    def conv(text):
        return [{"role": "user", "content": [{"type": "text", "text": "Q?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": text}]}]

    rows = [{"id": str(i), "model_a": "x", "model_b": "y", "winner": w, "conversation_a": conv("ans a"),
             "conversation_b": conv("ans b")} for i, w in enumerate(["model_a", "model_b", "tie", "both_bad", "model_a"])]
    rows.append({"id": "9", "model_a": "x", "model_b": "y", "winner": "model_a",
                 "conversation_a": [{"role": "user", "content": [{"type": "image", "image": "..."}]}],
                 "conversation_b": conv("b")})
    train, test = arena_builder(hub_folder(tmp_path / "arena", {"train": rows}), test_size=0)()
    labels = sorted(x.label for x in train if isinstance(x, LabeledComparison))
    assert labels == ["A", "A", "B", "Tie", "Tie"]
    _, stats = dpo_dataset(train, renderer, 1)
    assert (stats.kept, stats.ties, stats.skipped) == (3, 2, 1)
    assert "non-text content" in stats.reasons[0]
