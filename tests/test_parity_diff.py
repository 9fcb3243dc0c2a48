"""The parity harness names each root cause, alone and combined, with correct numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posttrain import PosttrainError, datum_from_tokens_weights, get_renderer
from posttrain.cli import main
from posttrain.datum import Datum
from posttrain.parity.artifacts import content_hash, read_run, write_run
from posttrain.parity.diff import diff_runs
from posttrain.parity.report import render_markdown
from posttrain.renderers.base import RenderContext, RenderedMessage
from posttrain.renderers.llama3 import Llama3Renderer

CONVS = [
    [{"role": "user", "content": f"Question {i}: what is {i} + {i}? “quoted” naïve 日本"},
     {"role": "assistant", "content": f"It is {2 * i}. Ünïcödé ok — “done”"}]
    for i in range(10)
] + [
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
    [{"role": "user", "content": "Tell me a long story " * 8}, {"role": "assistant", "content": "Once upon a time " * 12}],
]
BATCH = 4
N_SNAPSHOT = 6


class HeaderTrainingRenderer(Llama3Renderer):
    """Faulty: the header is part of the trained output."""

    def render_message(self, ctx: RenderContext) -> RenderedMessage:
        r = super().render_message(ctx)
        return RenderedMessage(header=[], output=r.header + r.output)


def build_run(path: Path, renderer, *, max_length: int = 2048, order: list[int] | None = None,
              batch_perm: list[int] | None = None, bos_per_chunk: bool = False, ascii_json: bool = False) -> Path:
    """Our pipeline, with switches that reproduce the faults seen in ports."""
    order = order if order is not None else list(range(len(CONVS)))
    bos = renderer.tokenizer.bos_token_id
    rendered, datums = [], []
    for pos, idx in enumerate(order):
        ex = renderer.build_supervised_example(CONVS[idx])
        tokens, weights = list(ex.tokens), list(ex.weights)
        chunks = None
        if bos_per_chunk:  # a wrapper that adds BOS to every per-message encode
            chunks, weights_chunks = [[bos]], [[0.0]]
            for mi in range(len(CONVS[idx])):
                cs = ex.message_chunks(mi)
                toks = ex.tokens[cs[0].start : cs[-1].end]
                chunks.append([bos, *toks])
                weights_chunks.append([0.0, *ex.weights[cs[0].start : cs[-1].end]])
            tokens = [t for c in chunks for t in c]
            weights = [w for c in weights_chunks for w in c]
        rendered.append((tokens, weights, renderer.tokenizer.decode(tokens)))
        if pos < BATCH:
            d = datum_from_tokens_weights(tokens, weights, max_length)
            if chunks is not None:  # keep the port's chunk structure, cut where the datum input ends
                cuts = [c for c in np.cumsum([len(c) for c in chunks])[:-1] if c < len(d.input_tokens)]
                d = Datum(tuple(np.split(d.input_tokens, cuts)), d.target_tokens, d.weights)
            datums.append(d)
    if batch_perm is not None:
        datums = [datums[k] for k in batch_perm]
    config = {"renderer": renderer.name, "tokenizer": "posttrain:llama3", "max_length": max_length,
              "batch_size": BATCH, "seed": 0, "bos_token_id": bos}
    snapshot = [(idx, CONVS[idx]) for idx in order[:N_SNAPSHOT]]
    run = write_run(path, config=config, total_count=len(CONVS), snapshot=snapshot, rendered=rendered[:N_SNAPSHOT],
                    batch_size=BATCH, datums=datums)
    if ascii_json:  # another implementation's JSON writer: \u escapes, hash over its own bytes
        for f in (run / "parity").iterdir():
            obj = json.loads(f.read_text(encoding="utf-8"))
            if "samples" in obj and obj["samples"] and "content_hash" in obj["samples"][0]:
                for s in obj["samples"]:
                    s["content_hash"] = "sha256:" + __import__("hashlib").sha256(
                        json.dumps(s["messages"], sort_keys=True, separators=(",", ":")).encode()).hexdigest()
            f.write_text(json.dumps(obj, indent=2), encoding="ascii")
    return run


@pytest.fixture(scope="module")
def renderer(llama3_tokenizer):
    return get_renderer("llama3", llama3_tokenizer)


@pytest.fixture(scope="module")
def good(tmp_path_factory, renderer) -> Path:
    return build_run(tmp_path_factory.mktemp("good") / "run", renderer)


def diff(a: Path, b: Path):
    return diff_runs(read_run(a), read_run(b))


def test_identical_runs_match_byte_for_byte(good, renderer, tmp_path):
    again = build_run(tmp_path / "again", renderer)
    for name in ("dataset_snapshot.json", "rendered_samples.json", "first_batch_payload.json"):
        assert (again / "parity" / name).read_bytes() == (good / "parity" / name).read_bytes()
    report = diff(good, again)
    assert report.match and report.findings == []
    assert "**MATCH**" in render_markdown(report)


def test_bos_added_by_every_chunk_encode(good, renderer, tmp_path):
    bad = build_run(tmp_path / "bos", renderer, bos_per_chunk=True)
    report = diff(good, bad)
    assert not report.match
    rendered = report.find("bos_duplication")[0]
    assert rendered.layer == "rendered_samples"
    # Sample 0 has 2 messages: 1 BOS + 1 per message chunk = 3, instead of 1.
    first = rendered.evidence["items"][0]
    assert (first["count_a"], first["count_b"], first["leading_b"]) == (1, 3, 2)
    batch = [f for f in report.find("bos_duplication") if f.layer == "first_batch"][0]
    assert batch.evidence["chunks_starting_with_bos_a"] == BATCH
    assert batch.evidence["chunks_starting_with_bos_b"] == BATCH * 3
    assert batch.evidence["bos_per_datum_a"] == [1] * BATCH and batch.evidence["bos_per_datum_b"] == [3] * BATCH
    assert "per-chunk encode adds special tokens" in batch.summary
    delta = report.find("length_delta")[0]
    assert delta.evidence["totals"] == {"extra_bos": 2 * BATCH, "different_sample": 0, "truncation": 0, "residual": 0}
    assert "token_difference" not in report.causes()  # nothing else differs once BOS is accounted for


def test_epoch_shuffle_of_datums(good, renderer, tmp_path):
    bad = build_run(tmp_path / "perm", renderer, batch_perm=[2, 0, 3, 1])
    report = diff(good, bad)
    assert report.causes() == ["reordering"]
    f = report.findings[0]
    assert f.layer == "first_batch"
    assert f.evidence["permutation_a_to_b"] == [1, 3, 0, 2]
    assert f.evidence["snapshot_order_same"] is True
    # No mechanism explains [2, 0, 3, 1]; the evidence still places the reordering after batching.
    assert f.evidence["explained"] is False and f.evidence["mechanism"]["positions"] == [2, 0, 3, 1]
    assert "order changes after batching" in f.summary


def test_dataset_shuffle_differs(good, renderer, tmp_path):
    order = [3, 0, 1, 2, 5, 4] + list(range(6, len(CONVS)))
    report = diff(good, build_run(tmp_path / "order", renderer, order=order))
    snap = [f for f in report.find("reordering") if f.layer == "dataset_snapshot"][0]
    assert snap.evidence["permutation_a_to_b"] == [1, 2, 3, 0, 5, 4]
    batch = [f for f in report.find("reordering") if f.layer == "first_batch"][0]
    assert batch.evidence["snapshot_order_same"] is False
    assert "token_difference" not in report.causes() and "mask_difference" not in report.causes()


def test_ascii_escaped_json_is_serialization_only(good, renderer, tmp_path):
    bad = build_run(tmp_path / "ascii", renderer, ascii_json=True)
    report = diff(good, bad)
    assert report.match  # same data: exit code 0
    f = report.find("serialization_only")[0]
    assert f.evidence["hash_method"] == {"a": "canonical", "b": "ASCII-escaped JSON"}
    assert {"“", "”", "ï", "日", "本"} <= set(f.evidence["escaped_chars_b"])
    assert f.evidence["escaped_chars_a"] == []
    assert main(["parity", "diff", str(good), str(bad)]) == 0


def test_smaller_max_length(good, renderer, tmp_path):
    bad = build_run(tmp_path / "short", renderer, max_length=20)
    report = diff(good, bad)
    cfg = report.find("config_difference")[0]
    assert cfg.evidence["fields"] == {"max_length": [2048, 20]}
    good_lengths = [len(renderer.build_supervised_example(CONVS[i]).tokens) - 1 for i in range(BATCH)]
    expected_cut = sum(min(n, 19) - n for n in good_lengths)
    delta = report.find("length_delta")[0]
    assert delta.evidence["totals"]["truncation"] == expected_cut < 0
    assert delta.evidence["totals"]["extra_bos"] == 0 and delta.evidence["totals"]["residual"] == 0
    assert all(d["b_at_max_length"] for d in delta.evidence["datums"])
    assert "max_length 2048 vs 20" in report.find("truncation")[0].summary


def test_renderer_that_trains_the_header(good, llama3_tokenizer, tmp_path):
    bad = build_run(tmp_path / "header", HeaderTrainingRenderer(llama3_tokenizer))
    report = diff(good, bad)
    masks = [f for f in report.find("mask_difference") if f.layer == "rendered_samples"][0]
    item = masks.evidence["items"][0]
    # The last assistant header: <|start_header_id|> assistant <|end_header_id|> \n\n
    assert (item["trained_only_in_b"], item["trained_only_in_a"]) == (4, 0)
    assert item["decoded_only_b"] == ["<|start_header_id|>assistant<|end_header_id|>\n\n"]
    assert masks.evidence["count"] == N_SNAPSHOT


def test_combined_faults(good, renderer, tmp_path):
    order = [1, 0] + list(range(2, len(CONVS)))
    bad = build_run(tmp_path / "combo", renderer, bos_per_chunk=True, max_length=24, order=order)
    report = diff(good, bad)
    causes = set(report.causes())
    assert {"config_difference", "reordering", "bos_duplication", "length_delta", "truncation"} <= causes
    totals = report.find("length_delta")[0].evidence["totals"]
    assert totals["different_sample"] == 0 and totals["extra_bos"] > 0 and totals["truncation"] < 0


def test_cli_exit_codes_json_and_out(good, renderer, tmp_path, capsys):
    bad = build_run(tmp_path / "perm", renderer, batch_perm=[1, 0, 2, 3])
    assert main(["parity", "diff", str(good), str(good)]) == 0
    capsys.readouterr()
    assert main(["parity", "diff", str(good), str(bad), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["match"] is False and data["findings"][0]["cause"] == "reordering"
    out = tmp_path / "report.md"
    assert main(["parity", "diff", str(good), str(bad), "--out", str(out)]) == 1
    assert "## first_batch" in out.read_text(encoding="utf-8") and "Reordering" in out.read_text(encoding="utf-8")


def test_flat_layout_and_errors(good, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for f in [good / "config.json", *(good / "parity").iterdir()]:
        (flat / f.name).write_bytes(f.read_bytes())
    assert diff(good, flat).match
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "dataset_snapshot.json").write_text('{"total_count": 3}', encoding="utf-8")
    with pytest.raises(PosttrainError, match=r"broken/dataset_snapshot.json: samples: missing"):
        read_run(broken)
    with pytest.raises(PosttrainError, match="not a run folder"):
        read_run(tmp_path / "nope")


def test_content_hash_is_canonical_json():
    msgs = [{"role": "user", "content": "“hi”"}]
    expected = "sha256:" + __import__("hashlib").sha256('[{"content":"“hi”","role":"user"}]'.encode()).hexdigest()
    assert content_hash(msgs) == expected


def test_metrics_layer(good, tmp_path):
    import shutil

    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(good, a)
    shutil.copytree(good, b)
    (a / "metrics.jsonl").write_text('{"step": 0, "loss": 2.5}\n{"step": 1, "loss": 2.0}\n', encoding="utf-8")
    (b / "metrics.jsonl").write_text('{"step": 0, "loss": 2.5}\n{"step": 1, "loss": 2.25}\n', encoding="utf-8")
    report = diff(a, b)
    (f,) = report.find("metrics_difference")
    assert f.evidence["differences"] == [{"step": 1, "metric": "loss", "a": 2.0, "b": 2.25}]
    (b / "metrics.jsonl").write_text('{"step": 0, "loss": 2.5}\n{"step": 1, "loss": 2.0}\n', encoding="utf-8")
    assert diff(a, b).match
    (b / "metrics.jsonl").write_text('{"step": 0}\n{oops\n', encoding="utf-8")
    with pytest.raises(PosttrainError, match=r"metrics.jsonl:2: invalid JSON"):
        read_run(b)
