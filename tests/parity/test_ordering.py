"""Issue 13: the diff names the mechanism behind a batch order, tested against the evidence.

Runs are built with the project's own pipeline plus fault switches (``tests/parity/runs.py``).
Expected permutations are computed here with ``datasets``, ``numpy`` and ``random`` directly, never
taken from the code under test.
"""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest

from posttrain import to_messages
from tests.parity.runs import (
    N_ROWS,
    Faults,
    build_pipeline_run,
    conversation,
    diff,
    reshuffled,
    write_rows,
)


def batch_order(report):
    (f,) = report.find("reordering", "first_batch")
    return f


def test_second_shuffle_at_epoch_0_is_named(reference, rows_file, renderer, tmp_path):
    port = build_pipeline_run(tmp_path / "b", rows_file, renderer, Faults(epoch_reshuffle=0))
    report = diff(reference, port)
    f = batch_order(report)
    expected = reshuffled(N_ROWS, 0)[:4]
    assert f.evidence["rows_a"] == [0, 1, 2, 3] and f.evidence["rows_b"] == expected
    assert f.evidence["snapshot_order_same"] is True
    mech = f.evidence["mechanism"]
    assert (mech["side"], mech["hypothesis"], mech["seed"]) == ("B", "reshuffle", 0)
    assert mech["ambiguous_with"] == []
    assert "datasets.Dataset.shuffle(seed=0)" in f.summary and "set_epoch(seed=epoch) at epoch 0" in f.summary
    assert report.find("reordering", "dataset_snapshot") == []


def test_second_shuffle_in_the_reference_is_named_on_side_a(reference, rows_file, renderer, tmp_path):
    tinker_loop = build_pipeline_run(tmp_path / "a", rows_file, renderer, Faults(epoch_reshuffle=0))
    f = batch_order(diff(tinker_loop, reference))
    assert f.evidence["rows_a"] == reshuffled(N_ROWS, 0)[:4] and f.evidence["rows_b"] == [0, 1, 2, 3]
    mech = f.evidence["mechanism"]
    assert (mech["side"], mech["hypothesis"], mech["seed"]) == ("A", "reshuffle", 0)
    assert "run B batches in the snapshot order" in f.summary
    assert "in run B, shuffle the rows again with datasets.Dataset.shuffle(seed=epoch)" in f.evidence["fix"]


def test_second_shuffle_with_the_run_seed(rows_file, renderer, tmp_path):
    a = build_pipeline_run(tmp_path / "a", rows_file, renderer, Faults(seed=7))
    b = build_pipeline_run(tmp_path / "b", rows_file, renderer, Faults(seed=7, epoch_reshuffle=7))
    f = batch_order(diff(a, b))
    assert f.evidence["rows_b"] == reshuffled(N_ROWS, 7)[:4]
    mech = f.evidence["mechanism"]
    assert (mech["hypothesis"], mech["seed"], mech["seed_is"]) == ("reshuffle", 7, ["run A seed", "run B seed"])
    assert "datasets.Dataset.shuffle(seed=7)" in f.summary and "epoch 0" not in f.summary


def test_second_shuffle_named_from_a_partial_snapshot(rows_file, renderer, tmp_path):
    a = build_pipeline_run(tmp_path / "a", rows_file, renderer, Faults(n_snapshot=8))
    b = build_pipeline_run(tmp_path / "b", rows_file, renderer, Faults(n_snapshot=8, epoch_reshuffle=0))
    f = batch_order(diff(a, b))
    expected = reshuffled(N_ROWS, 0)[:4]
    # Only rows inside the 8-row snapshot can be located; the others must be predicted outside it.
    assert f.evidence["rows_b"] == [p if p < 8 else None for p in expected]
    assert (f.evidence["mechanism"]["hypothesis"], f.evidence["mechanism"]["seed"]) == ("reshuffle", 0)


def _snapshot_shuffle(report):
    (f,) = report.find("reordering", "dataset_snapshot")
    return f


def _a_to_b(order_a: list[int], order_b: list[int]) -> list[int]:
    return [order_b.index(i) for i in order_a]


def test_dataset_shuffle_with_another_seed(reference, rows_file, renderer, tmp_path):
    report = diff(reference, build_pipeline_run(tmp_path / "b", rows_file, renderer, Faults(seed=1)))
    f = _snapshot_shuffle(report)
    assert f.evidence["permutation_a_to_b"] == _a_to_b(reshuffled(N_ROWS, 0), reshuffled(N_ROWS, 1))
    assert (f.evidence["shuffle_a"], f.evidence["seed_a"]) == ("datasets.Dataset.shuffle", 0)
    assert (f.evidence["shuffle_b"], f.evidence["seed_b"]) == ("datasets.Dataset.shuffle", 1)
    assert "another seed: datasets.Dataset.shuffle with seed 0 in run A vs 1 in run B" in f.summary
    (cause,) = [r for r in report.root_causes if r.title == "Dataset shuffle differs"]
    assert cause.stage == "snapshot" and "datasets.Dataset.shuffle(seed=0)" in cause.fix
    # Each run batches in its own snapshot order: the batch difference is the snapshot's, not batching's.
    assert batch_order(report).evidence["mechanisms"] == []
    assert [r.stage for r in report.root_causes] == ["snapshot"]


@pytest.mark.parametrize(("shuffle", "seed", "name"), [
    ("numpy_legacy", 0, "numpy.random.RandomState(seed).permutation"),
    ("python", 3, "random.Random(seed).shuffle"),
])
def test_dataset_shuffle_with_another_prng(reference, rows_file, renderer, tmp_path, shuffle, seed, name):
    f = _snapshot_shuffle(diff(reference, build_pipeline_run(tmp_path / "b", rows_file, renderer,
                                                              Faults(shuffle=shuffle, seed=seed))))
    if shuffle == "numpy_legacy":
        order_b = np.random.RandomState(seed).permutation(N_ROWS).tolist()
    else:
        order_b = list(range(N_ROWS))
        random.Random(seed).shuffle(order_b)
    assert f.evidence["index_b"] == order_b
    assert (f.evidence["shuffle_b"], f.evidence["seed_b"]) == (name, seed)
    assert f"another shuffle (PRNG): run A: datasets.Dataset.shuffle with seed 0; run B: {name} with seed {seed}" \
        in f.summary


def test_unknown_prng_is_not_named(reference, tmp_path):
    port = tmp_path / "b"
    shutil.copytree(reference, port)
    path = port / "parity" / "dataset_snapshot.json"
    snap = json.loads(path.read_text(encoding="utf-8"))
    snap["samples"] = snap["samples"][::-1]  # an order no tested shuffle produces
    path.write_text(json.dumps(snap), encoding="utf-8")
    f = _snapshot_shuffle(diff(reference, port))
    assert f.evidence["shuffle_b"] is None and "run B: none of the tested shuffles" in f.summary


def _lengths_in_snapshot_order(renderer) -> list[int]:
    order = reshuffled(N_ROWS, 0)
    return [len(renderer.build_supervised_example(to_messages(conversation(i))).tokens) for i in order]


@pytest.mark.parametrize("direction", ["ascending", "descending"])
def test_sorted_by_length(reference, rows_file, renderer, tmp_path, direction):
    order = "sorted_asc" if direction == "ascending" else "sorted_desc"
    f = batch_order(diff(reference, build_pipeline_run(tmp_path / "b", rows_file, renderer, Faults(order=order))))
    lengths = _lengths_in_snapshot_order(renderer)
    expected = sorted(range(N_ROWS), key=lambda p: lengths[p], reverse=direction == "descending")[:4]
    assert f.evidence["rows_b"] == expected
    mech = f.evidence["mechanism"]
    assert (mech["hypothesis"], mech["direction"], mech["ambiguous_with"]) == ("sorted_length", direction, [])
    assert f"rows sorted by token count, {direction}" in f.summary


def test_reversed(reference, rows_file, renderer, tmp_path):
    f = batch_order(diff(reference, build_pipeline_run(tmp_path / "b", rows_file, renderer, Faults(order="reversed"))))
    assert f.evidence["rows_b"] == [39, 38, 37, 36]
    assert f.evidence["mechanism"]["hypothesis"] == "reversed" and "the snapshot order reversed" in f.summary


@pytest.mark.parametrize("stride", [4, 6])
def test_strided_interleaving(reference, rows_file, renderer, tmp_path, stride):
    port = build_pipeline_run(tmp_path / "b", rows_file, renderer, Faults(order=f"strided:{stride}"))
    f = batch_order(diff(reference, port))
    assert f.evidence["rows_b"] == [0, stride, 2 * stride, 3 * stride]
    mech = f.evidence["mechanism"]
    assert (mech["hypothesis"], mech["stride"], mech["ambiguous_with"]) == ("strided", stride, [])
    assert f"interleaving with stride {stride}" in f.summary and f"parallel map over {stride} workers" in f.summary


@pytest.mark.parametrize(("offset", "text"), [
    (10, "chunked processing that returned the chunk starting at row 10 first"),
    (8, "batch 2 comes first: batches, not rows, are visited in another order"),
])
def test_chunked_order(reference, rows_file, renderer, tmp_path, offset, text):
    port = build_pipeline_run(tmp_path / "b", rows_file, renderer, Faults(order=f"offset:{offset}"))
    f = batch_order(diff(reference, port))
    assert f.evidence["rows_b"] == list(range(offset, offset + 4))
    assert (f.evidence["mechanism"]["hypothesis"], f.evidence["mechanism"]["offset"]) == ("contiguous", offset)
    assert text in f.summary


def test_partial_batch_dropped_at_the_start(renderer, tmp_path):
    rows = write_rows(tmp_path / "rows.jsonl", [conversation(i) for i in range(42)])  # 42 mod 4 = 2
    a = build_pipeline_run(tmp_path / "a", rows, renderer, Faults())
    f = batch_order(diff(a, build_pipeline_run(tmp_path / "b", rows, renderer, Faults(order="offset:2"))))
    assert f.evidence["rows_b"] == [2, 3, 4, 5]
    assert (f.evidence["mechanism"]["hypothesis"], f.evidence["mechanism"]["offset"]) == ("contiguous", 2)
    assert "the first 2 rows (n mod batch size = 42 mod 4) skipped" in f.summary and "drop_last" in f.summary


def test_other_batch_size_same_global_order(reference, rows_file, renderer, tmp_path):
    report = diff(reference, build_pipeline_run(tmp_path / "b", rows_file, renderer, Faults(batch_size=5)))
    assert report.find("reordering") == [] and report.find("bos_duplication") == []
    (f,) = report.find("batch_grouping")
    assert (f.evidence["rows_a"], f.evidence["rows_b"]) == ([0, 1, 2, 3], [0, 1, 2, 3, 4])
    assert "config batch_size 4 vs 5" in f.evidence["why"]
    assert [(r.title, r.stage) for r in report.root_causes] == [("Batch grouping differs", "batching")]


def test_random_permutation_is_unexplained(reference, rows_file, renderer, tmp_path):
    f = batch_order(diff(reference, build_pipeline_run(tmp_path / "b", rows_file, renderer,
                                                        Faults(order="random:99"))))
    expected = random.Random(99).sample(range(N_ROWS), N_ROWS)[:4]
    assert f.evidence["rows_b"] == expected
    assert f.evidence["explained"] is False and f.evidence["mechanism"]["hypothesis"] is None
    assert f.evidence["mechanism"]["positions"] == expected
    assert "explained by no tested hypothesis" in f.summary and str(expected) in f.summary


def test_run_compared_with_itself_and_a_rebuild_match(reference, rows_file, renderer, tmp_path):
    assert diff(reference, reference).findings == []
    again = build_pipeline_run(tmp_path / "again", rows_file, renderer, Faults())
    assert diff(reference, again).findings == []


def test_partial_snapshots_of_another_seed_are_a_shuffle_difference(rows_file, renderer, tmp_path):
    a = build_pipeline_run(tmp_path / "a", rows_file, renderer, Faults(n_snapshot=8))
    b = build_pipeline_run(tmp_path / "b", rows_file, renderer, Faults(n_snapshot=8, seed=3))
    report = diff(a, b)
    f = _snapshot_shuffle(report)
    assert report.find("different_samples") == []  # the same dataset: only the shuffle differs
    assert f.evidence["index_b"] == reshuffled(N_ROWS, 3)[:8]
    assert (f.evidence["seed_a"], f.evidence["seed_b"]) == (0, 3)
    assert [r.title for r in report.root_causes] == ["Dataset shuffle differs"]
