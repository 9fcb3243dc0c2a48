"""SupervisedDatasetFromHFDataset: exact epoch order vs datasets, lazy datums, flatmap, resume."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posttrain import PosttrainError, get_renderer
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
    d = conversation_to_datum(ROWS[1]["messages"], r, 2048, reduction="none")
    tokens, weights = r.build_supervised_example(ROWS[1]["messages"], "all_assistant_messages")
    assert d == datum_from_tokens_weights(tokens, weights, 2048)
    m = conversation_to_datum(ROWS[1]["messages"], r, 2048)  # default: mean, as tinker-cookbook
    assert np.isclose(m.weights.sum(), 1.0) and np.array_equal(m.weights > 0, d.weights > 0)
    assert np.allclose(m.weights[m.weights > 0], 1 / d.weights.sum())
    # truncation happens before the mean: the kept trained tokens sum to 1
    short = conversation_to_datum(ROWS[1]["messages"], r, len(tokens) - 3)
    assert len(short) == len(tokens) - 4 and np.isclose(short.weights.sum(), 1.0)
    with pytest.raises(PosttrainError, match="unknown reduction 'sum'"):
        conversation_to_datum(ROWS[1]["messages"], r, 2048, reduction="sum")  # type: ignore[arg-type]


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 60), bs=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_batches_partition_the_datasets_permutation(n, bs, seed):
    """For any size, batch size and seed: batches are consecutive slices of datasets' own permutation."""
    rows = [{"id": i} for i in range(n)]
    ds = SupervisedDatasetFromHFDataset(datasets.Dataset.from_list(rows), bs, map_fn=id_datum)
    ds.set_epoch(seed)
    assert len(ds) == n // bs
    expected = datasets.Dataset.from_list(rows).shuffle(seed=seed)["id"]
    for b in range(len(ds)):
        assert ids(ds.get_batch(b)) == expected[b * bs:(b + 1) * bs]
