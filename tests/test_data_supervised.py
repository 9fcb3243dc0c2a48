"""SupervisedDataset: exact epoch order vs datasets, lazy datums, flatmap, resume; streaming with a buffer."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest

from posttrain import PosttrainError, get_renderer
from posttrain.data.sources import stream_conversations
from posttrain.data.streaming import StreamingSupervisedDataset
from posttrain.data.supervised import SupervisedDatasetFromHFDataset, conversation_to_datum
from posttrain.datum import datum_from_tokens_weights

N = 23
ROWS = [{"id": i, "messages": [{"role": "user", "content": f"question {i}"},
                               {"role": "assistant", "content": f"answer {i} " * (1 + i % 4)}]} for i in range(N)]


def id_datum(row):
    """A datum that carries the row id, so batches can be checked against row order."""
    return datum_from_tokens_weights([row["id"], row["id"] + 1000], [0, 1])


def ids(batch):
    return [int(d.input_tokens[0]) for d in batch]


@pytest.fixture
def hf():
    return datasets.Dataset.from_list(ROWS)


def test_len_drops_last_partial_batch(hf):
    assert len(SupervisedDatasetFromHFDataset(hf, 5, map_fn=id_datum)) == 4
    with pytest.raises(IndexError, match="batch 4 out of range: 4 batches of 5"):
        SupervisedDatasetFromHFDataset(hf, 5, map_fn=id_datum).get_batch(4)


@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
def test_epoch_order_equals_datasets_shuffle(hf, seed):
    ds = SupervisedDatasetFromHFDataset(hf, 4, map_fn=id_datum)
    assert ids(ds.get_batch(0)) == [0, 1, 2, 3]  # before set_epoch: file order
    ds.set_epoch(seed)
    expected = datasets.Dataset.from_list(ROWS).shuffle(seed=seed)["id"]
    got = [i for b in range(len(ds)) for i in ids(ds.get_batch(b))]
    assert got == expected[: len(ds) * 4]


def test_datums_are_built_lazily_per_batch(hf):
    calls = []

    def counting(row):
        calls.append(row["id"])
        return id_datum(row)

    ds = SupervisedDatasetFromHFDataset(hf, 4, map_fn=counting)
    ds.set_epoch(3)
    assert calls == []
    ds.get_batch(2)
    assert len(calls) == 4


def test_flatmap(hf):
    ds = SupervisedDatasetFromHFDataset(hf, 3, flatmap_fn=lambda r: [id_datum(r)] * (r["id"] % 3))
    batch = ds.get_batch(1)  # rows 3, 4, 5 → 0 + 1 + 2 datums
    assert ids(batch) == [4, 5, 5]
    with pytest.raises(PosttrainError, match="exactly one of map_fn"):
        SupervisedDatasetFromHFDataset(hf, 3, map_fn=id_datum, flatmap_fn=lambda r: [])


def test_resume_matches_uninterrupted_run(hf):
    def run(ds, epochs, start=None):
        out = []
        for epoch in range(epochs):
            ds.set_epoch(epoch)
            for b in range(len(ds)):
                if start is None or (epoch, b) >= start:
                    out.append(ids(ds.get_batch(b)))
        return out

    full = run(SupervisedDatasetFromHFDataset(hf, 4, map_fn=id_datum), 3)
    resumed = run(SupervisedDatasetFromHFDataset(hf, 4, map_fn=id_datum), 3, start=(1, 2))
    assert resumed == full[len(full) - len(resumed):] and len(resumed) == len(full) - 5 - 2


def test_conversation_to_datum_and_mean_reduction(llama3_tokenizer):
    r = get_renderer("llama3", llama3_tokenizer)
    d = conversation_to_datum(ROWS[1]["messages"], r, 2048)
    tokens, weights = r.build_supervised_example(ROWS[1]["messages"], "all_assistant_messages")
    assert d == datum_from_tokens_weights(tokens, weights, 2048)
    m = conversation_to_datum(ROWS[1]["messages"], r, 2048, reduction="mean")
    assert np.isclose(m.weights.sum(), 1.0) and np.array_equal(m.weights > 0, d.weights > 0)


def _stream_file(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    return p


def stream_ids(batch):
    return [int(d.input_tokens[0]) for d in batch]


def id_from_messages(row):
    return datum_from_tokens_weights([int(row["messages"][0]["content"].split()[1]), 0], [0, 1])


def test_streaming_buffer_order_equals_datasets_iterable_shuffle(tmp_path):
    p = _stream_file(tmp_path)
    ds = StreamingSupervisedDataset(stream_conversations(str(p)), 4, length=N, map_fn=id_from_messages, buffer_size=8)
    got = [i for b in range(len(ds)) for i in stream_ids(ds.get_batch(b))]
    ref = stream_conversations(str(p)).shuffle(seed=0, buffer_size=8)
    ref.set_epoch(0)
    expected = [int(r["messages"][0]["content"].split()[1]) for r in ref]
    assert got == expected[:20]
    assert got != list(range(20)) and sorted(got) != got  # the buffer shuffles
    ds.set_epoch(1)
    epoch1 = [i for b in range(len(ds)) for i in stream_ids(ds.get_batch(b))]
    assert epoch1 != got


def test_streaming_forward_only_skip_and_resume(tmp_path):
    p = _stream_file(tmp_path)

    def make():
        return StreamingSupervisedDataset(stream_conversations(str(p)), 3, length=N, map_fn=id_from_messages,
                                          buffer_size=5)

    full = make()
    full.set_epoch(2)
    all_batches = [stream_ids(full.get_batch(b)) for b in range(len(full))]
    resumed = make()
    resumed.set_epoch(2)
    assert [stream_ids(resumed.get_batch(b)) for b in range(4, len(resumed))] == all_batches[4:]
    with pytest.raises(PosttrainError, match="only move forward"):
        resumed.get_batch(1)


def test_streaming_length_longer_than_stream(tmp_path):
    p = _stream_file(tmp_path)
    ds = StreamingSupervisedDataset(stream_conversations(str(p)), 10, length=100, map_fn=id_from_messages)
    ds.get_batch(0)
    ds.get_batch(1)
    with pytest.raises(IndexError, match="stream ended during batch 2"):
        ds.get_batch(2)
