"""The parity harness names each root cause, alone and combined, with correct numbers.

The "good" run is the real pipeline (llama3 renderer → datum_from_tokens_weights → write_run); each
faulty run is a small alteration of it that reproduces a bug seen in ports. Expected numbers come
from the good pipeline's chunk map and the conversations, never from the report under test.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from posttrain.cli import main
from posttrain.datum import datum_from_tokens_weights
from posttrain.parity.artifacts import read_run, write_run
from posttrain.parity.diff import ParityReport, diff_runs
from posttrain.parity.report import render_markdown
from posttrain.renderers.base import RenderContext, RenderedMessage, Renderer
from posttrain.renderers.llama3 import Llama3Renderer
from posttrain.types import Datum


def _conversations() -> list[list[dict[str, str]]]:
    convs = []
    for i in range(30):
        conv = [{"role": "system", "content": "Be brief."}] if i % 3 == 0 else []
        conv += [{"role": "user", "content": f"Question {i}: what is {i} + {i}? “quoted” naïve 日本 " + "more " * (i % 5)},
                 {"role": "assistant", "content": f"It is {2 * i}. — “done” " + "and then some " * (i % 7)}]
        if i % 4 == 1:
            conv += [{"role": "user", "content": "Why?"}, {"role": "assistant", "content": f"Because {i}+{i}={2 * i}."}]
        convs.append(conv)
    return convs


CONVS = _conversations()
BATCH = 4
N_SNAPSHOT = 8


class HeaderTrainingRenderer(Llama3Renderer):
    """Faulty: the header is part of the trained output."""

    def render_message(self, ctx: RenderContext) -> RenderedMessage:
        r = super().render_message(ctx)
        return RenderedMessage(header=[], output=r.header + r.output)


class BosEveryEncodeRenderer(Llama3Renderer):
    """Faulty: a tokenizer wrapper that ignores add_special_tokens=False, so each encoded text starts with BOS."""

    def encode_texts(self, texts: list[str]) -> list[list[int]]:
        bos = self.tokenizer.bos_token_id
        return [[bos, *ids] for ids in super().encode_texts(texts)]


def build_run(path: Path, renderer: Renderer, *, max_length: int = 2048, order: list[int] | None = None,
              batch_perm: list[int] | None = None, bos_per_chunk: bool = False, ascii_json: bool = False,
              content: Callable[[str], str] | None = None, snapshot_text: Callable[[str], str] | None = None,
              config: dict[str, Any] | None = None) -> Path:
    """Our pipeline, with switches that reproduce the faults seen in ports."""
    order = order if order is not None else list(range(len(CONVS)))
    bos = renderer.tokenizer.bos_token_id
    rendered, datums = [], []
    for pos, idx in enumerate(order[: max(N_SNAPSHOT, BATCH)]):
        conv = [{**m, "content": content(m["content"])} for m in CONVS[idx]] if content else CONVS[idx]
        ex = renderer.build_supervised_example(conv)
        tokens, weights = list(ex.tokens), list(ex.weights)
        chunks = None
        if bos_per_chunk:  # a port that encodes each message as its own chunk with add_special_tokens=True
            chunks, weights_chunks = [[bos]], [[0.0]]
            for mi in range(len(conv)):
                cs = ex.message_chunks(mi)
                chunks.append([bos, *ex.tokens[cs[0].start : cs[-1].end]])
                weights_chunks.append([0.0, *ex.weights[cs[0].start : cs[-1].end]])
            tokens = [t for c in chunks for t in c]
            weights = [w for c in weights_chunks for w in c]
        rendered.append((tokens, weights, renderer.tokenizer.decode(tokens)))
        if pos < BATCH:
            d = datum_from_tokens_weights(tokens, weights, max_length)
            if chunks is not None:  # keep the port's chunk structure, cut where the datum input ends
                cuts = [c for c in np.cumsum([len(c) for c in chunks])[:-1] if c < len(d.input_tokens)]
                d = Datum.from_arrays(tuple(np.split(d.input_tokens, cuts)), d.target_tokens, d.weights)
            datums.append(d)
    if batch_perm is not None:
        datums = [datums[k] for k in batch_perm]
    cfg = {"renderer": "llama3", "tokenizer": "posttrain:llama3", "max_length": max_length, "batch_size": BATCH,
           "seed": 0, "bos_token_id": bos, **(config or {})}
    snapshot = [(idx, CONVS[idx]) for idx in order[:N_SNAPSHOT]]
    if snapshot_text:
        snapshot = [(i, [{**m, "content": snapshot_text(m["content"])} for m in msgs]) for i, msgs in snapshot]
    run = write_run(path, config=cfg, total_count=len(CONVS), snapshot=snapshot, rendered=rendered[:N_SNAPSHOT],
                    batch_size=BATCH, datums=datums)
    if ascii_json:  # another implementation's JSON writer: \u escapes, hash over its own bytes
        for f in (run / "parity").iterdir():
            obj = json.loads(f.read_text(encoding="utf-8"))
            for s in obj.get("samples", []):
                if "content_hash" in s:
                    s["content_hash"] = "sha256:" + hashlib.sha256(
                        json.dumps(s["messages"], sort_keys=True, separators=(",", ":")).encode()).hexdigest()
            f.write_text(json.dumps(obj, indent=2), encoding="ascii")
    return run


@pytest.fixture(scope="module")
def good_examples(renderer):
    return [renderer.build_supervised_example(c) for c in CONVS]


@pytest.fixture(scope="module")
def good(tmp_path_factory, renderer) -> Path:
    return build_run(tmp_path_factory.mktemp("good") / "run", renderer)


def diff(a: Path, b: Path) -> ParityReport:
    return diff_runs(read_run(a), read_run(b))


def one(report: ParityReport, cause: str, layer: str) -> Any:
    (f,) = [f for f in report.find(cause) if f.layer == layer]
    return f


def items(finding: Any) -> list[dict[str, Any]]:
    """Per-sample evidence, whether the finding was grouped or not."""
    return finding.evidence.get("items", [finding.evidence])


def test_rerun_with_same_seed_matches_byte_for_byte(good, renderer, tmp_path):
    again = build_run(tmp_path / "again", renderer)
    for name in ("config.json", "parity/dataset_snapshot.json", "parity/rendered_samples.json",
                 "parity/first_batch_payload.json"):
        assert (again / name).read_bytes() == (good / name).read_bytes()
    report = diff(good, again)
    assert report.match and report.findings == []
    assert "**MATCH**" in render_markdown(report)
    assert main(["parity", "diff", str(good), str(again)]) == 0


def test_bos_added_to_every_datum_chunk(good, renderer, tmp_path):
    bad = build_run(tmp_path / "bos", renderer, bos_per_chunk=True)
    report = diff(good, bad)
    assert not report.match
    per_sample = items(one(report, "bos_duplication", "rendered_samples"))
    assert len(per_sample) == N_SNAPSHOT
    for conv, ev in zip(CONVS, per_sample, strict=False):
        # 1 BOS for the sequence + 1 per message chunk; 2 of them lead the datum.
        assert (ev["count_a"], ev["count_b"], ev["leading_a"], ev["leading_b"]) == (1, 1 + len(conv), 1, 2)
    batch = one(report, "bos_duplication", "first_batch")
    n_msgs = [len(c) for c in CONVS[:BATCH]]
    assert batch.evidence["chunks_starting_with_bos_a"] == BATCH
    assert batch.evidence["chunks_starting_with_bos_b"] == BATCH + sum(n_msgs)
    assert batch.evidence["bos_per_datum_a"] == [1] * BATCH
    assert batch.evidence["bos_per_datum_b"] == [1 + n for n in n_msgs]
    assert batch.evidence["leading_bos_per_datum_b"] == [2] * BATCH
    assert "per-chunk encode adds special tokens" in batch.summary
    delta = one(report, "length_delta", "first_batch")
    assert delta.evidence["totals"] == {"extra_bos": sum(n_msgs), "different_sample": 0, "truncation": 0,
                                        "residual": 0}
    assert not {"token_difference", "mask_difference", "reordering"} & set(report.causes())


def test_bos_id_inferred_without_config(good, renderer, tmp_path):
    a, b = tmp_path / "a", build_run(tmp_path / "b", renderer, bos_per_chunk=True)
    shutil.copytree(good, a)
    for run in (a, b):
        cfg = json.loads((run / "config.json").read_text(encoding="utf-8"))
        del cfg["bos_token_id"]
        (run / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    batch = one(diff(a, b), "bos_duplication", "first_batch")
    assert batch.evidence["bos_id"] == renderer.tokenizer.bos_token_id
    assert batch.evidence["bos_per_datum_b"] == [1 + len(c) for c in CONVS[:BATCH]]


def test_tokenizer_wrapper_adds_bos_to_every_encoded_text(good, good_examples, llama3_tokenizer, tmp_path):
    bad = build_run(tmp_path / "enc", BosEveryEncodeRenderer(llama3_tokenizer))
    report = diff(good, bad)
    per_sample = items(one(report, "bos_duplication", "rendered_samples"))
    for ex, ev in zip(good_examples, per_sample, strict=False):
        n_texts = sum(1 for c in ex.chunks if not c.special)  # role, "\n\n" and content of each message
        assert (ev["count_a"], ev["count_b"]) == (1, 1 + n_texts)
    # Each extra BOS sits right before an encoded text (the first role name, then its "\n\n"), shifted by
    # the extra BOS before it.
    texts = [c for c in good_examples[0].chunks if not c.special]
    assert per_sample[0]["positions_b"][:3] == [0, texts[0].start, texts[1].start + 1]
    batch = one(report, "bos_duplication", "first_batch")
    assert "inside chunks" in batch.summary  # one model_input chunk per datum: the BOS are not at chunk starts
    assert not {"token_difference", "mask_difference"} & set(report.causes())


def datum_lengths(examples: list[Any], rows: list[int]) -> list[int]:
    return [len(examples[r].tokens) - 1 for r in rows]  # a datum holds all tokens but the last


def test_epoch_shuffle_of_datums(good, good_examples, renderer, tmp_path):
    perm = [2, 0, 3, 1]
    bad = build_run(tmp_path / "perm", renderer, batch_perm=perm)
    report = diff(good, bad)
    assert report.causes() == ["reordering", "length_delta"]
    f = report.findings[0]
    assert f.layer == "first_batch"
    assert f.evidence["permutation_a_to_b"] == [1, 3, 0, 2]  # A's datum 0 is B's datum 1, ...
    assert f.evidence["snapshot_order_same"] is True
    # No mechanism explains [2, 0, 3, 1]; the evidence still places the reordering after batching.
    assert f.evidence["explained"] is False and f.evidence["mechanism"]["positions"] == perm
    assert "order changes after batching" in f.summary
    # Batch positions now hold other rows: the length deltas are all "different sample".
    len_a, len_b = datum_lengths(good_examples, list(range(BATCH))), datum_lengths(good_examples, perm)
    delta = one(report, "length_delta", "first_batch")
    assert [(d["len_a"], d["len_b"], d["different_sample"]) for d in delta.evidence["datums"]] == [
        (x, y, y - x) for x, y in zip(len_a, len_b, strict=True) if x != y]
    assert [rc.stage for rc in report.root_causes] == ["batching"]  # length deltas: decomposed, not a cause


def test_dataset_shuffle_differs(good, renderer, tmp_path):
    order = [3, 0, 1, 2, 5, 4, 7, 6] + list(range(8, len(CONVS)))
    report = diff(good, build_run(tmp_path / "order", renderer, order=order))
    snap = one(report, "reordering", "dataset_snapshot")
    assert snap.evidence["permutation_a_to_b"] == [1, 2, 3, 0, 5, 4, 7, 6]
    assert snap.evidence["index_b"] == order[:N_SNAPSHOT]
    batch = one(report, "reordering", "first_batch")
    assert batch.evidence["permutation_a_to_b"] == [1, 2, 3, 0]
    assert batch.evidence["snapshot_order_same"] is False
    assert set(report.causes()) == {"reordering", "length_delta"}  # positions hold other rows


def test_other_shuffle_seed_picks_other_rows(good, renderer, tmp_path):
    order = list(range(10, len(CONVS))) + list(range(10))
    report = diff(good, build_run(tmp_path / "seed", renderer, order=order, config={"seed": 1}))
    assert one(report, "config_difference", "config").evidence["fields"] == {"seed": [0, 1]}
    f = one(report, "different_samples", "dataset_snapshot")
    assert f.evidence["positions_a"] == list(range(N_SNAPSHOT))
    assert f.evidence["index_a"] == list(range(N_SNAPSHOT))
    totals = one(report, "length_delta", "first_batch").evidence["totals"]
    lengths = [len(renderer.build_supervised_example(CONVS[i]).tokens) for i in range(len(CONVS))]
    assert totals == {"extra_bos": 0, "truncation": 0, "residual": 0,
                      "different_sample": sum(lengths[j] - lengths[i] for i, j in zip(range(BATCH), order, strict=False))}


def test_ascii_escaped_json_is_serialization_only(good, renderer, tmp_path):
    bad = build_run(tmp_path / "ascii", renderer, ascii_json=True)
    report = diff(good, bad)
    assert report.match  # same data: exit code 0
    hashes, escaping = report.find("serialization_only")
    assert hashes.evidence["hash_method"] == {"a": "canonical", "b": "ASCII-escaped JSON"}
    assert hashes.evidence["positions_a"] == list(range(N_SNAPSHOT))
    files = escaping.evidence["files"]
    assert {"“", "”", "ï", "日", "本", "—"} == set(files["dataset_snapshot.json"]["escaped_chars_b"])
    assert files["dataset_snapshot.json"]["escaped_chars_a"] == []
    assert "'“' U+201C LEFT DOUBLE QUOTATION MARK as \\u201c" in escaping.summary
    assert all(f.severity == "note" for f in report.findings)
    assert main(["parity", "diff", str(good), str(bad)]) == 0


def test_unicode_normalization_only(good, renderer, tmp_path):
    bad = build_run(tmp_path / "nfd", renderer, snapshot_text=lambda s: unicodedata.normalize("NFD", s))
    report = diff(good, bad)
    assert report.match
    nfc = [f for f in report.find("serialization_only") if "NFC" in f.summary][0]
    assert nfc.evidence["positions_a"] == list(range(N_SNAPSHOT))
    assert nfc.evidence["example_a"][0] == "ï" and nfc.evidence["example_b"] == "i\u0308"


def _straight_quotes(s: str) -> str:
    return s.replace("“", '"').replace("”", '"')


@pytest.mark.parametrize("tokenizer", ["posttrain:llama3", "org/unavailable-tokenizer"])
def test_remaining_token_difference(good, good_examples, renderer, tmp_path, tokenizer):
    # A port that normalizes quotes before rendering: same snapshot, other tokens.
    a = build_run(tmp_path / "a", renderer, config={"tokenizer": tokenizer})
    b = build_run(tmp_path / "b", renderer, content=_straight_quotes, config={"tokenizer": tokenizer})
    report = diff(a, b)
    assert not report.match and "dataset_snapshot" not in {f.layer for f in report.findings}
    ev = items(one(report, "token_difference", "rendered_samples"))[0]
    i = ev["first_divergence"]
    assert "“" not in renderer.tokenizer.decode(good_examples[0].tokens[:i])
    assert "“" in renderer.tokenizer.decode(good_examples[0].tokens[: i + 1])
    if tokenizer.startswith("posttrain:"):
        assert "“" in ev["decoded_a"] and '"' in ev["decoded_b"]
    else:  # no tokenizer: ids only, the decoded fields still show the text
        assert ev["decoded_a"] is None and ev["decoded_b"] is None
    assert ev["window_a"] == good_examples[0].tokens[ev["window_start"] : i + 6]


def test_smaller_max_length(good, good_examples, renderer, tmp_path):
    bad = build_run(tmp_path / "short", renderer, max_length=30)
    report = diff(good, bad)
    assert one(report, "config_difference", "config").evidence["fields"] == {"max_length": [2048, 30]}
    lengths = [len(ex.tokens) - 1 for ex in good_examples[:BATCH]]  # datum length = tokens - 1
    delta = one(report, "length_delta", "first_batch")
    assert delta.evidence["totals"] == {"extra_bos": 0, "different_sample": 0,
                                        "truncation": sum(min(n, 29) - n for n in lengths), "residual": 0}
    assert all(d["b_at_max_length"] and not d["a_at_max_length"] for d in delta.evidence["datums"])
    assert "max_length 2048 vs 30" in one(report, "truncation", "first_batch").summary


def test_renderer_that_trains_the_header(good, good_examples, llama3_tokenizer, tmp_path):
    bad = build_run(tmp_path / "header", HeaderTrainingRenderer(llama3_tokenizer))
    report = diff(good, bad)
    per_sample = items(one(report, "mask_difference", "rendered_samples"))
    assert len(per_sample) == N_SNAPSHOT
    for conv, ex, ev in zip(CONVS, good_examples, per_sample, strict=False):
        header = [c for c in ex.message_chunks(len(conv) - 1) if c.kind == "header"]
        assert (ev["trained_only_in_b"], ev["trained_only_in_a"]) == (sum(c.end - c.start for c in header), 0)
        assert ev["ranges_only_b"] == [[header[0].start, header[-1].end - 1]]
    assert per_sample[0]["decoded_only_b"] == ["<|start_header_id|>assistant<|end_header_id|>\n\n"]
    assert {f.layer for f in report.find("mask_difference")} == {"rendered_samples", "first_batch"}
    assert "token_difference" not in report.causes()


def test_combined_faults(good, good_examples, renderer, tmp_path):
    order = [1, 0] + list(range(2, len(CONVS)))
    max_length = 40
    bad = build_run(tmp_path / "combo", renderer, bos_per_chunk=True, max_length=max_length, order=order)
    report = diff(good, bad)
    assert {"config_difference", "reordering", "bos_duplication", "length_delta", "truncation"} <= set(report.causes())
    assert one(report, "reordering", "dataset_snapshot").evidence["permutation_a_to_b"][:2] == [1, 0]
    # Expected decomposition, from the good examples: B's datum keeps max_length - 1 input tokens,
    # of which 1 + (messages started within them) are BOS.
    extra = trunc = 0
    for idx in range(BATCH):
        ex, conv = good_examples[idx], CONVS[idx]
        starts = [ex.message_chunks(m)[0].start for m in range(len(conv))]
        seq = [0, 0] + [1] * (starts[1] - starts[0])  # leading BOS + first message chunk
        for m in range(1, len(conv)):
            end = starts[m + 1] if m + 1 < len(conv) else len(ex.tokens)
            seq += [0] + [1] * (end - starts[m])
        kept = seq[: max_length - 1]
        extra += kept.count(0) - 1
        trunc += kept.count(1) - (len(ex.tokens) - 2)  # A's input: all tokens but the last, minus its BOS
    totals = one(report, "length_delta", "first_batch").evidence["totals"]
    assert totals == {"extra_bos": extra, "different_sample": 0, "truncation": trunc, "residual": 0}
    assert extra > 0 and trunc < 0


def test_informational_config_fields_are_notes(good, renderer, tmp_path):
    a = build_run(tmp_path / "a", renderer, config={"created_at": "2026-01-01T00:00:00", "out": "x"})
    b = build_run(tmp_path / "b", renderer, config={"created_at": "2026-02-02T00:00:00", "out": "y"})
    report = diff(a, b)
    assert report.match  # timestamps and paths do not change the data: notes
    (note,) = report.findings
    assert note.evidence["fields"] == {"created_at": ["2026-01-01T00:00:00", "2026-02-02T00:00:00"],
                                       "out": ["x", "y"]}
    assert note.severity == "note" and note.to_json()["severity"] == "note"
    c = build_run(tmp_path / "c", renderer, config={"lr": 2e-4})
    d = build_run(tmp_path / "d", renderer, config={"lr": 1e-4, "model_name": "m"})
    fields = one(diff(c, d), "config_difference", "config").evidence["fields"]
    assert fields == {"lr": [2e-4, 1e-4], "model_name": [None, "m"]}


def test_cli_exit_codes_json_and_out(good, renderer, tmp_path, capsys):
    bad = build_run(tmp_path / "perm", renderer, batch_perm=[1, 0, 2, 3])
    assert main(["parity", "diff", str(good), str(good)]) == 0
    capsys.readouterr()
    assert main(["parity", "diff", str(good), str(bad), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["match"] is False
    assert [(f["layer"], f["cause"], f["severity"]) for f in data["findings"]] == [
        ("first_batch", "reordering", "error"), ("first_batch", "length_delta", "error")]
    assert [rc["stage"] for rc in data["root_causes"]] == ["batching"]
    out = tmp_path / "report.md"
    assert main(["parity", "diff", str(good), str(bad), "--out", str(out)]) == 1
    text = out.read_text(encoding="utf-8")
    assert "**DIFFERENT**" in text and "## first_batch" in text and "Reordering" in text
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "dataset_snapshot.json").write_text('{"total_count": 3}', encoding="utf-8")
    assert main(["parity", "diff", str(good), str(tmp_path / "broken")]) == 2
    assert capsys.readouterr().err == f"posttrain parity: error: {tmp_path / 'broken'}/dataset_snapshot.json: samples: missing\n"
    with pytest.raises(SystemExit) as exit_info:
        main(["parity", "diff", "--help"])
    assert exit_info.value.code == 0 and "RUN_A" in capsys.readouterr().out


def test_missing_artifact_and_flat_layout(good, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for f in [good / "config.json", *(good / "parity").iterdir()]:
        (flat / f.name).write_bytes(f.read_bytes())
    assert diff(good, flat).match
    (flat / "first_batch_payload.json").unlink()
    report = diff(good, flat)
    assert not report.match
    assert one(report, "missing_artifact", "first_batch").summary == "run B has no first_batch_payload.json"


def test_metrics_layer(good, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(good, a)
    shutil.copytree(good, b)
    (a / "metrics.jsonl").write_text('{"step": 0, "loss": 2.5}\n{"step": 1, "loss": 2.0}\n', encoding="utf-8")
    (b / "metrics.jsonl").write_text('{"step": 0, "loss": 2.5}\n{"step": 1, "loss": 2.25}\n', encoding="utf-8")
    (f,) = diff(a, b).find("metrics_difference")
    assert f.evidence["differences"] == [{"step": 1, "metric": "loss", "a": 2.0, "b": 2.25}]
    (b / "metrics.jsonl").write_text('{"step": 0, "loss": 2.5}\n{"step": 1, "loss": 2.0}\n', encoding="utf-8")
    assert diff(a, b).match
