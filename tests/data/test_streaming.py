"""StreamingSupervisedDataset: shuffle-buffer order equals datasets', forward-only batches, resume, laziness."""

from __future__ import annotations

import json

import datasets
import pytest

from posttrain import PosttrainError
from posttrain.data.sources import stream_conversations
from posttrain.data.streaming import StreamingSupervisedDataset
from posttrain.datum import datum_from_tokens_weights

N = 23
ROWS = [{"id": i, "messages": [{"role": "user", "content": f"question {i}"},
                               {"role": "assistant", "content": f"answer {i} " * (1 + i % 4)}]} for i in range(N)]


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


def test_stream_reads_lazily(tmp_path):
    """Only about buffer + batch rows are pulled from the source to serve the first batch."""
    pulled = []

    def gen():
        for i in range(10_000):
            pulled.append(i)
            yield {"messages": [{"role": "user", "content": f"q {i}"}]}

    ds = StreamingSupervisedDataset(datasets.IterableDataset.from_generator(gen), 4, length=10_000,
                                    map_fn=id_from_messages, buffer_size=16)
    assert len(ds.get_batch(0)) == 4
    assert len(pulled) <= 16 + 4 + 1


def test_stream_flatmap_and_same_seed_same_order(tmp_path):
    p = _stream_file(tmp_path)

    def two(row):
        d = id_from_messages(row)
        return [d, d]

    ds = StreamingSupervisedDataset(stream_conversations(str(p)), 5, length=N, flatmap_fn=two, buffer_size=6)
    ds.set_epoch(4)
    first = [stream_ids(ds.get_batch(b)) for b in range(len(ds))]
    assert all(len(b) == 10 and b[0::2] == b[1::2] for b in first)
    ds.set_epoch(4)  # restarting with the same seed replays the same order
    assert [stream_ids(ds.get_batch(b)) for b in range(len(ds))] == first
    with pytest.raises(PosttrainError, match="exactly one of map_fn"):
        StreamingSupervisedDataset(stream_conversations(str(p)), 5, length=N)


def test_stream_from_hub_style_folder(tmp_path):
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    datasets.Dataset.from_list(ROWS).to_parquet(str(repo / "data" / "train-00000-of-00001.parquet"))
    ds = StreamingSupervisedDataset(stream_conversations(str(repo)), 4, length=N, map_fn=id_from_messages,
                                    buffer_size=1)
    assert [stream_ids(ds.get_batch(b)) for b in range(2)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
