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
    dpo_datasets,
    hhh_builder,
    read_comparisons_jsonl,
    ultrafeedback_binarized_builder,
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
         r"prefs\.jsonl:1: completion_B: message 0, field 'role'"),
        ({"comparison": {"prompt_conversation": [], "completion_A": A, "completion_B": B}, "label": "A"},
         r"prefs\.jsonl:1: prompt_conversation: .*at least one message"),
        ({"comparison": "x", "label": "A"}, r"prefs\.jsonl:1: field 'comparison': expected an object"),
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


def test_nested_tinker_cookbook_jsonl_format(tmp_path):
    p = tmp_path / "tc.jsonl"
    rows = [{"comparison": {"prompt_conversation": PROMPT, "completion_A": A, "completion_B": B}, "label": lab}
            for lab in ("B", "Tie")]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    got = list(read_comparisons_jsonl(str(p)))
    assert [x.label for x in got] == ["B", "Tie"]
    assert got[0].chosen_and_rejected == (got[0].comparison.completion_B, got[0].comparison.completion_A)
    with pytest.raises(PosttrainError, match="a tie has no chosen completion"):
        _ = got[1].chosen_and_rejected


def test_ultrafeedback_binarized_h4_splits_and_dpo_datasets(tmp_path, renderer):
    def row(i, split):
        prompt = f"{split} task {i}"
        return {"prompt": prompt, "prompt_id": f"{split}{i}",
                "chosen": [{"role": "user", "content": prompt}, {"role": "assistant", "content": "good"}],
                "rejected": [{"role": "user", "content": prompt}, {"role": "assistant", "content": "bad"}],
                "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": "good"}],
                "score_chosen": 8.0, "score_rejected": 3.0}

    path = hub_folder(tmp_path / "ultrafeedback_binarized",
                      {s: [row(i, s) for i in range(n)] for s, n in (("train_prefs", 6), ("test_prefs", 5),
                                                                      ("train_sft", 2))})
    train, test = ultrafeedback_binarized_builder(path, test_size=3)()
    # train: all of train_prefs shuffled with seed 0; test: first 3 of test_prefs shuffled with seed 0
    assert [x.comparison.prompt_conversation[0].text for x in train] == \
        datasets.Dataset.from_list([row(i, "train_prefs") for i in range(6)]).shuffle(seed=0)["prompt"]
    assert [x.comparison.prompt_conversation[0].text for x in test] == \
        datasets.Dataset.from_list([row(i, "test_prefs") for i in range(5)]).shuffle(seed=0)["prompt"][:3]
    train_ds, test_ds, stats = dpo_datasets(train, test, renderer, batch_size=2, max_length=128)
    assert len(train_ds) == 3 and stats.kept == 6 and test_ds is not None and len(test_ds) == 1
    assert len(test_ds.get_batch(0)) == 6  # 3 comparisons, chosen/rejected pairs


def test_lmsys_chatbot_arena_schema(tmp_path):
    """lmsys/chatbot_arena_conversations: string contents, multi-turn, winner incl. 'tie (bothbad)'."""
    def conv(tag):
        return [{"content": "Q1", "role": "user"}, {"content": f"{tag}1", "role": "assistant"},
                {"content": "Q2", "role": "user"}, {"content": f"{tag}2", "role": "assistant"}]

    rows = [{"question_id": str(i), "model_a": "m1", "model_b": "m2", "winner": w, "judge": "arena_user_1",
             "conversation_a": conv("a"), "conversation_b": conv("b"), "turn": 2, "anony": True,
             "language": "English", "tstamp": 1.0} for i, w in enumerate(["model_a", "tie (bothbad)", "model_b"])]
    rows.append(dict(rows[0], winner="draw"))
    train, _ = arena_builder(hub_folder(tmp_path / "lmsys", {"train": rows}), test_size=0)()
    by_label = {x.label: x for x in train if isinstance(x, LabeledComparison)}
    assert sorted(by_label) == ["A", "B", "Tie"]
    lc = by_label["A"]
    assert [m.text for m in lc.comparison.prompt_conversation] == ["Q1"]
    assert [m.text for m in lc.comparison.completion_A] == ["a1", "Q2", "a2"]
    errors = [x for x in train if isinstance(x, InputError)]
    assert len(errors) == 1 and "unknown winner 'draw'" in str(errors[0])


def test_multi_message_completion_weights_every_completion_assistant_turn(renderer):
    completion = [{"role": "assistant", "content": "a1"}, {"role": "user", "content": "Q2"},
                  {"role": "assistant", "content": "a2"}]
    lc = LabeledComparison(Comparison.from_dicts(PROMPT, completion, B), "A")
    chosen, _ = comparison_to_dpo_datums(lc, renderer, None)
    flagged = [dict(m, trainable=False) for m in PROMPT] + [dict(m, trainable=m["role"] == "assistant")
                                                           for m in completion]
    tokens, weights = renderer.build_supervised_example(flagged, TrainOnWhat.CUSTOMIZED)
    assert chosen == datum_from_tokens_weights(tokens, weights)
    prompt_len = len(renderer.build_generation_prompt(PROMPT))
    assert not chosen.weights[: prompt_len - 1].any() and chosen.weights.sum() > 0


def test_hhh_markers_inside_a_turn_stay_text():
    from posttrain.data.preference import hhh_to_comparison

    row = {"chosen": "\n\nHuman: Repeat 'Human: hi'\n\nAssistant: Human: hi",
           "rejected": "\n\nHuman: Repeat 'Human: hi'\n\nAssistant: No."}
    lc = hhh_to_comparison(row)
    assert [m.text for m in lc.comparison.prompt_conversation] == ["Repeat 'Human: hi'"]
    assert lc.comparison.completion_A[0].text == "Human: hi" and lc.comparison.completion_B[0].text == "No."
