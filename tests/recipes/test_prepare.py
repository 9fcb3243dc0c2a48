"""The main job, end to end: shipped dataset → run folder with parity artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from posttrain import InputError, datum_from_tokens_weights, get_renderer, to_messages
from posttrain.cli import main
from posttrain.default_data import load_default_conversations
from posttrain.recipes.prepare import PrepareConfig, run_prepare

PARITY_FILES = ("dataset_snapshot.json", "rendered_samples.json", "first_batch_payload.json")


@pytest.fixture(scope="module")
def default_run(tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("run") / "default"
    summary = run_prepare(PrepareConfig(out=str(out), batch_size=4, n_snapshot=5), show_progress=False)
    return out, summary


def test_default_run_writes_the_run_folder(default_run, llama3_tokenizer):
    out, summary = default_run
    rows = load_default_conversations()
    assert summary.examples == len(rows) and summary.batches == len(rows) // 4
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["renderer"] == "llama3" and config["seed"] == 0 and config["batch_size"] == 4
    assert config["bos_token_id"] == llama3_tokenizer.bos_token_id
    for name in PARITY_FILES:
        assert (out / "parity" / name).is_file()

    # Independent check of the order: datasets' own shuffle(seed=0) of the shipped rows.
    order = datasets.Dataset.from_dict({"i": list(range(len(rows)))}).shuffle(seed=0)["i"]
    snap = json.loads((out / "parity" / "dataset_snapshot.json").read_text(encoding="utf-8"))
    assert snap["total_count"] == len(rows) and snap["n_snapshot"] == 5
    assert [s["index"] for s in snap["samples"]] == order[:5]
    for s in snap["samples"]:
        assert to_messages(s["messages"]) == to_messages(rows[s["index"]]["messages"])

    renderer = get_renderer("llama3", llama3_tokenizer)
    rendered = json.loads((out / "parity" / "rendered_samples.json").read_text(encoding="utf-8"))["samples"]
    batch = json.loads((out / "parity" / "first_batch_payload.json").read_text(encoding="utf-8"))
    assert batch["batch_size"] == 4 and len(batch["datums"]) == 4
    for pos, idx in enumerate(order[:4]):
        tokens, weights = renderer.build_supervised_example(rows[idx]["messages"])
        assert rendered[pos]["all_tokens"] == tokens and rendered[pos]["weights"] == weights
        assert rendered[pos]["token_count"] == len(tokens)
        assert rendered[pos]["decoded"] == llama3_tokenizer.decode(tokens)
        assert batch["datums"][pos] == datum_from_tokens_weights(tokens, weights, 2048).to_json()


def test_summary_counts(default_run):
    _, s = default_run
    assert 0 < s.trained_tokens < s.target_tokens <= s.tokens
    assert s.truncated >= 0 and 0 < s.trained_fraction < 1


def test_rerun_is_byte_identical(default_run, tmp_path):
    out, _ = default_run
    again = tmp_path / "again"
    run_prepare(PrepareConfig(out=str(again), batch_size=4, n_snapshot=5), show_progress=False)
    for name in PARITY_FILES:
        assert (again / "parity" / name).read_bytes() == (out / "parity" / name).read_bytes()


def test_truncation_is_counted(tmp_path):
    # Long replies: truncation cuts trained tokens but leaves some (a cut prompt is an error, tested below).
    rows = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "word " * n}]}
            for n in (1, 50, 100, 200)]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    s = run_prepare(PrepareConfig(input=str(src), out=str(tmp_path / "r"), batch_size=2, max_length=60),
                    show_progress=False)
    assert s.examples == 4 and s.batches == 2 and s.truncated == 3


def test_bad_input_names_file_and_line(tmp_path):
    src = tmp_path / "bad.jsonl"
    good = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    bad = {"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]}
    src.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.jsonl:2: .*message 1, field 'role'"):
        run_prepare(PrepareConfig(input=str(src), out=str(tmp_path / "r"), batch_size=1), show_progress=False)


def test_untrainable_row_names_its_line(tmp_path):
    src = tmp_path / "nolabel.jsonl"
    rows = [{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
            {"messages": [{"role": "user", "content": "only a question"}]}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(InputError, match=r"nolabel\.jsonl:2: .*trains no token"):
        run_prepare(PrepareConfig(input=str(src), out=str(tmp_path / "r"), batch_size=1), show_progress=False)


def test_cli_prepare_prints_summary(tmp_path, capsys):
    assert main(["prepare", "--out", str(tmp_path / "cli"), "--batch-size", "16", "--max-length", "1536"]) == 0
    out = capsys.readouterr().out
    assert "examples" in out and "trained tokens" in out and "truncated" in out
    assert (tmp_path / "cli" / "parity" / "first_batch_payload.json").is_file()


def test_cli_prepare_skips_rows_truncation_leaves_untrained(tmp_path, capsys, llama3_tokenizer):
    # Independently: the shipped rows whose first trained token lies beyond max_length 512.
    renderer = get_renderer("llama3", llama3_tokenizer)
    rows = load_default_conversations()
    cut = [i + 1 for i, r in enumerate(rows)
           if not any(renderer.build_supervised_example(r["messages"]).weights[1:512])]
    assert cut  # the shipped data has such rows
    assert main(["prepare", "--out", str(tmp_path / "x"), "--max-length", "512"]) == 2
    assert f"default_conversations.jsonl:{cut[0]}: max_length 512 cuts" in capsys.readouterr().err
    assert main(["prepare", "--out", str(tmp_path / "r"), "--max-length", "512", "--skip-invalid"]) == 0
    out = capsys.readouterr().out
    assert [int(x.split(".jsonl:")[1].split(":")[0]) for x in out.splitlines() if x.startswith("skipped:")] == cut
    payload = json.loads((tmp_path / "r" / "parity" / "first_batch_payload.json").read_text(encoding="utf-8"))
    assert all(any(d["loss_fn_inputs"]["weights"]["data"]) for d in payload["datums"])
    assert not (tmp_path / "x").exists()  # the failed run wrote nothing


def test_input_from_parquet_and_hub_style_folder(tmp_path):
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
            for i in range(6)]
    pq = tmp_path / "c.parquet"
    datasets.Dataset.from_list(rows).to_parquet(str(pq))
    repo = tmp_path / "org" / "data"
    (repo / "data").mkdir(parents=True)
    datasets.Dataset.from_list(rows).to_parquet(str(repo / "data" / "train-00000-of-00001.parquet"))
    for spec in (str(pq), str(repo), "hub:" + str(repo)):
        s = run_prepare(PrepareConfig(input=spec, out=str(tmp_path / "r"), batch_size=3), show_progress=False)
        assert (s.examples, s.batches) == (6, 2)


def test_skip_invalid_counts_rows(tmp_path, capsys):
    src = tmp_path / "mixed.jsonl"
    good = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    src.write_text(json.dumps(good) + "\n{broken\n" + json.dumps(good) + "\n", encoding="utf-8")
    assert main(["prepare", "--input", str(src), "--out", str(tmp_path / "r"), "--batch-size", "1",
                 "--skip-invalid"]) == 0
    out = capsys.readouterr().out
    assert "skipped: " in out and "mixed.jsonl:2: invalid JSON" in out
