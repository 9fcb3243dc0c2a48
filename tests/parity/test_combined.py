"""Issue 13's case: a reference that trains as tinker-cookbook's loop (second shuffle at epoch 0)
against a port with BOS per chunk, no second shuffle and another max_length. The report answers the
port's five questions: why samples sit elsewhere, where the runs diverge, why extra BOS, where they
are added, and what change gives parity."""

from __future__ import annotations

import pytest

from posttrain import to_messages
from posttrain.parity.report import render_markdown
from tests.parity.runs import (
    N_ROWS,
    Faults,
    build_pipeline_run,
    conversation,
    diff,
    reshuffled,
    write_rows,
)

PORT_MAX = 40


@pytest.fixture(scope="module")
def report(tmp_path_factory, renderer):
    tmp = tmp_path_factory.mktemp("combined")
    rows = write_rows(tmp / "rows.jsonl", [conversation(i) for i in range(N_ROWS)])
    reference = build_pipeline_run(tmp / "reference", rows, renderer, Faults(epoch_reshuffle=0))
    port = build_pipeline_run(tmp / "port", rows, renderer, Faults(bos_per_chunk=True, max_length=PORT_MAX))
    return diff(reference, port)


def _length(renderer, source_row: int) -> int:
    return len(renderer.build_supervised_example(to_messages(conversation(source_row))).tokens)


def test_three_root_causes_with_stage_and_fix(report):
    assert [(r.title, r.stage) for r in report.root_causes] == [
        ("BOS duplication", "rendering"), ("max_length differs", "datum building"), ("Batch order differs", "batching")]
    bos, max_len, order = report.root_causes
    # Why extra BOS, and where they are added.
    assert "the per-chunk encode adds special tokens: every encoded chunk (one per message) starts with BOS" \
        in bos.explanation
    assert "12 BOS in run B's first batch vs 4 in A's" in bos.explanation
    assert "first seen in the rendered samples (before datums are built)" in bos.explanation
    assert bos.fix == "encode each chunk with add_special_tokens=False and add BOS once, at the start of the sequence"
    assert max_len.explanation == f"config max_length 2048 vs {PORT_MAX}: 4 datums of the first batch are cut at " \
                                  "another length"
    assert max_len.fix == "use max_length 2048 in run B"
    # Why samples sit in other batch positions, and where the runs diverge.
    expected = reshuffled(N_ROWS, 0)[:4]
    assert f"run A's first batch holds its snapshot rows {expected}, run B's rows [0, 1, 2, 3]" in order.explanation
    assert "set_epoch(seed=epoch) at epoch 0" in order.explanation
    assert "the dataset snapshots are identical, so the runs diverge at batching" in order.explanation
    assert order.fix.startswith("in run B, shuffle the rows again with datasets.Dataset.shuffle(seed=epoch) at the "
                                "start of every epoch, epoch 0 included")


def test_findings_per_layer(report):
    assert report.find("reordering", "dataset_snapshot") == []  # the snapshots are identical
    (rendered_bos,) = report.find("bos_duplication", "rendered_samples")
    assert rendered_bos.evidence["count"] == N_ROWS
    first = rendered_bos.evidence["items"][0]
    assert (first["count_a"], first["count_b"], first["positions_a"]) == (1, 3, [0])
    (batch_bos,) = report.find("bos_duplication", "first_batch")
    assert (batch_bos.evidence["bos_per_datum_a"], batch_bos.evidence["bos_per_datum_b"]) == ([1] * 4, [3] * 4)
    (order,) = report.find("reordering", "first_batch")
    assert (order.evidence["mechanism"]["side"], order.evidence["mechanism"]["seed"]) == ("A", 0)


def test_datum_lengths_decomposed(report, renderer):
    snapshot = reshuffled(N_ROWS, 0)  # the builder's shuffle: snapshot position → source row
    second = reshuffled(N_ROWS, 0)  # set_epoch(0) in the reference: batch position → snapshot position
    (delta,) = report.find("length_delta")
    d0 = delta.evidence["datums"][0]
    len_a = _length(renderer, snapshot[second[0]]) - 1  # A's datum 0, not cut at 2048
    counterfactual = _length(renderer, snapshot[0]) - 1  # B's row 0 as A would build it
    assert (d0["len_a"], d0["len_b"]) == (len_a, PORT_MAX - 1)
    assert d0["different_sample"] == counterfactual - len_a and d0["extra_bos"] == 2
    # B's 39 inputs hold 3 BOS; A's datum of that row holds 1 BOS and counterfactual - 1 other tokens.
    assert d0["truncation"] == (PORT_MAX - 1 - 3) - (counterfactual - 1) and d0["residual"] == 0


def test_markdown_states_cause_stage_and_fix(report):
    text = render_markdown(report)
    assert "1. **BOS duplication** (first appears in: rendering)" in text
    assert "2. **max_length differs** (first appears in: datum building)" in text
    assert "3. **Batch order differs** (first appears in: batching)" in text
    assert text.count("   - cause: ") == 3 and text.count("   - fix: ") == 3
    assert "## dataset_snapshot\n\nidentical" in text


def test_json_has_root_causes(report):
    data = report.to_json()
    assert [r["stage"] for r in data["root_causes"]] == ["rendering", "datum building", "batching"]

