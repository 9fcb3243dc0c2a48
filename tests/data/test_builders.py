"""Builders on local data with the real schemas of the hub datasets they load."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from posttrain import InputError, get_renderer
from posttrain.data.builders import (
    ChatDatasetConfig,
    FromConversationFileBuilder,
    NoRobotsBuilder,
    Tulu3Builder,
)
from posttrain.data.supervised import conversation_to_datum


def conv(i: int) -> list[dict[str, str]]:
    return [{"content": f"Prompt {i}", "role": "user"}, {"content": f"Reply {i}", "role": "assistant"}]


def hub_folder(root: Path, splits: dict[str, list[dict]]) -> Path:
    """Lay out a dataset like its hub repo: README card + data/<split>-00000-of-00001.parquet."""
    (root / "data").mkdir(parents=True)
    for split, rows in splits.items():
        datasets.Dataset.from_list(rows).to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
    (root / "README.md").write_text("---\nlicense: cc-by-nc-4.0\n---\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def config():
    return ChatDatasetConfig(renderer_name="llama3", max_length=64, batch_size=4)


def first_user(batch, renderer) -> list[str]:
    return [renderer.tokenizer.decode(d.input_tokens.tolist()).split("user<|end_header_id|>\n\n")[1].split("<|eot_id|>")[0]
            for d in batch]


def test_no_robots_builder(tmp_path, config):
    rows = {s: [{"prompt": f"Prompt {i}", "prompt_id": f"{s}{i}", "messages": conv(i), "category": "Chat"}
                for i in range(n)] for s, n in (("train", 10), ("test", 4))}
    path = hub_folder(tmp_path / "HuggingFaceH4" / "no_robots", rows)
    train, test = NoRobotsBuilder(config, path=str(path))()
    assert len(train) == 2 and len(test) == 1
    order = datasets.Dataset.from_list(rows["train"]).shuffle(seed=0)["prompt"]
    renderer = config.renderer()
    assert first_user(train.get_batch(0), renderer) == order[:4]
    assert first_user(test.get_batch(0), renderer) == [f"Prompt {i}" for i in range(4)]
    d = train.get_batch(0)[0]
    ref = conversation_to_datum(conv(int(order[0].split()[1])), renderer, 64, "all_assistant_messages", "mean")
    assert d == ref
    raw, _ = NoRobotsBuilder(ChatDatasetConfig(max_length=64, batch_size=4, reduction="none"), path=str(path))()
    assert set(raw.get_batch(0)[0].weights.tolist()) == {0.0, 1.0}


def test_tulu3_builder(tmp_path, config):
    rows = [{"id": f"t{i}", "messages": conv(i), "source": "ai2-adapt-dev/flan"} for i in range(11)]
    path = hub_folder(tmp_path / "allenai" / "tulu-3-sft-mixture", {"train": rows})
    train, test = Tulu3Builder(config, path=str(path), test_size=3)()
    order = datasets.Dataset.from_list(rows).shuffle(seed=0)["id"]
    renderer = config.renderer()
    assert len(test) == 0 and len(train) == 2  # 3 test rows < batch 4; 8 train rows
    got = first_user(train.get_batch(0) + train.get_batch(1), renderer)
    assert got == [f"Prompt {int(i[1:])}" for i in order[3:11]]


def test_tulu3_builder_from_local_data_files(tmp_path, config):
    """The same builder over data_files (a local JSONL copy) instead of the hub id."""
    rows = [{"id": f"t{i}", "messages": conv(i), "source": "ai2-adapt-dev/oasst1"} for i in range(9)]
    p = tmp_path / "tulu.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    train, test = Tulu3Builder(config, path="json", data_files={"train": str(p)}, test_size=4)()
    order = datasets.Dataset.from_list(rows).shuffle(seed=0)["id"]
    renderer = config.renderer()
    assert len(train) == 1 and len(test) == 1
    assert first_user(test.get_batch(0), renderer) == [f"Prompt {int(i[1:])}" for i in order[:4]]
    assert first_user(train.get_batch(0), renderer) == [f"Prompt {int(i[1:])}" for i in order[4:8]]


def test_conversation_file_builder(tmp_path, config):
    p = tmp_path / "convs.jsonl"
    p.write_text("".join(json.dumps({"messages": conv(i)}) + "\n" for i in range(13)), encoding="utf-8")
    train, test = FromConversationFileBuilder(str(p), config, test_size=5, shuffle_seed=0)()
    order = datasets.Dataset.from_list([{"i": i} for i in range(13)]).shuffle(seed=0)["i"]
    renderer = config.renderer()
    assert len(train) == 2 and test is not None and len(test) == 1
    assert first_user(test.get_batch(0), renderer) == [f"Prompt {i}" for i in order[:5]]
    assert first_user(train.get_batch(0), renderer) == [f"Prompt {i}" for i in order[5:9]]
    only_train, none = FromConversationFileBuilder(str(p), config)()
    assert none is None and len(only_train) == 3


def test_builder_errors_name_the_source_line_after_shuffle(tmp_path):
    p = tmp_path / "q.jsonl"
    lines = [json.dumps({"messages": conv(i)}) for i in range(5)]
    lines.insert(3, "")  # blank lines are skipped but keep the numbering honest
    lines.insert(4, json.dumps({"messages": [{"role": "user", "content": "no answer"}]}))  # file line 5
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = ChatDatasetConfig(batch_size=6)
    train, _ = FromConversationFileBuilder(str(p), cfg, shuffle_seed=3)()
    with pytest.raises(InputError, match=r"q\.jsonl:5: train_on_what=all_assistant_messages trains no token"):
        train.get_batch(0)


def test_hub_builder_errors_name_the_split_row(tmp_path):
    rows = [{"prompt": "p", "prompt_id": str(i), "messages": conv(i), "category": "Chat"} for i in range(4)]
    rows[2] = dict(rows[2], messages=[{"role": "user", "content": "no answer"}])
    path = hub_folder(tmp_path / "no_robots", {"train": rows, "test": rows[:1]})
    train, _ = NoRobotsBuilder(ChatDatasetConfig(batch_size=4), path=str(path))()
    with pytest.raises(InputError, match=r"no_robots\[train\]:3: train_on_what=all_assistant_messages"):
        train.get_batch(0)


def test_config_renderer_uses_default_tokenizer(config, llama3_tokenizer):
    assert config.renderer().build_generation_prompt(conv(1)) == get_renderer("llama3", llama3_tokenizer).build_generation_prompt(conv(1))
