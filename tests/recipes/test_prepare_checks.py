"""prepare: nothing silently lost (untrainable rows, row locations, skip policy), arguments checked
before any work, config.json fields, parallel rendering identical to in-process."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from posttrain import NothingToTrainError, PosttrainError, get_renderer
from posttrain.cli import main
from posttrain.data.builders import ChatDatasetConfig, FromConversationFileBuilder
from posttrain.data.sources import stream_conversations
from posttrain.data.streaming import StreamingSupervisedDataset
from posttrain.data.supervised import conversation_to_datum, datum_target_counts, example_to_datum
from posttrain.errors import InputError
from posttrain.recipes.prepare import PrepareConfig, run_prepare
from posttrain.renderers.base import SupervisedExample

RUN_FILES = ("config.json", "parity/dataset_snapshot.json", "parity/rendered_samples.json",
             "parity/first_batch_payload.json")


def _row(q: str, a: str | None = "ok") -> dict:
    msgs = [{"role": "user", "content": q}]
    if a is not None:
        msgs.append({"role": "assistant", "content": a})
    return {"messages": msgs}


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_max_length_2_is_an_error_not_zero_datums(tmp_path, capsys):
    src = _write(tmp_path / "in.jsonl", [json.dumps(_row("q"))] * 3)
    assert main(["prepare", "--input", str(src), "--out", str(tmp_path / "r"), "--max-length", "2",
                 "--batch-size", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"posttrain prepare: error: {src}:1: max_length 2 cuts this conversation")
    assert not (tmp_path / "r").exists()
    # Skipping every row leaves nothing to batch: still an error, with the count.
    assert main(["prepare", "--input", str(src), "--out", str(tmp_path / "r"), "--max-length", "2",
                 "--batch-size", "1", "--skip-invalid"]) == 2
    assert f"{src}: 0 usable conversations, fewer than one batch of 1" in capsys.readouterr().err


def test_prompt_longer_than_max_length_names_the_file_line(tmp_path):
    lines = [json.dumps(_row("short")), "", json.dumps(_row("word " * 100)), json.dumps(_row("x"))]
    src = _write(tmp_path / "long.jsonl", lines)
    with pytest.raises(InputError, match=rf"^{src}:3: max_length 40 cuts this conversation \(\d+ tokens\) before "
                                         r"its first trained token \(position \d+\); nothing left to train$"):
        run_prepare(PrepareConfig(input=str(src), out=str(tmp_path / "r"), max_length=40, batch_size=1),
                    show_progress=False)
    s = run_prepare(PrepareConfig(input=str(src), out=str(tmp_path / "r"), max_length=40, batch_size=1,
                                  skip_invalid=True), show_progress=False)
    assert (s.examples, s.skipped) == (2, 1)
    assert s.extra["skip_reasons"][0].startswith(f"{src}:3: max_length 40 cuts")
    payload = json.loads((tmp_path / "r" / "parity" / "first_batch_payload.json").read_text(encoding="utf-8"))
    assert sum(payload["datums"][0]["loss_fn_inputs"]["weights"]["data"]) > 0


def test_rendering_errors_name_the_file_line_behind_blank_lines_and_are_skippable(tmp_path, capsys):
    good = json.dumps(_row("q"))
    # File line 6 holds a row with no assistant message: loads fine, fails at rendering.
    src = _write(tmp_path / "gaps.jsonl", [good, "", "", good, "  ", json.dumps(_row("question only", None)), good])
    assert main(["prepare", "--input", str(src), "--out", str(tmp_path / "r"), "--batch-size", "1"]) == 2
    assert capsys.readouterr().err.startswith(
        f"posttrain prepare: error: {src}:6: train_on_what=last_assistant_message trains no token")
    assert main(["prepare", "--input", str(src), "--out", str(tmp_path / "r"), "--batch-size", "1",
                 "--skip-invalid"]) == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("skipped:")] == [
        f"skipped: {src}:6: train_on_what=last_assistant_message trains no token of this conversation (roles: user); "
        "choose another mode or fix the data"]
    snap = json.loads((tmp_path / "r" / "parity" / "dataset_snapshot.json").read_text(encoding="utf-8"))
    assert snap["total_count"] == 3


def test_conversation_to_datum_and_builders_refuse_untrainable_datums(tmp_path, llama3_tokenizer):
    renderer = get_renderer("llama3", llama3_tokenizer)
    conv = _row("word " * 50)["messages"]
    with pytest.raises(NothingToTrainError, match=r"max_length 20 cuts this conversation"):
        conversation_to_datum(conv, renderer, 20)
    datum = conversation_to_datum(conv, renderer, None)
    assert float(datum.weights.sum()) == pytest.approx(1.0)  # mean reduction, something trained
    src = _write(tmp_path / "b.jsonl", [json.dumps(_row("a")), json.dumps(_row("word " * 50))])
    train, _ = FromConversationFileBuilder(str(src), ChatDatasetConfig(max_length=20, batch_size=2),
                                           shuffle_seed=None)()
    with pytest.raises(InputError, match=rf"^{src}:2: max_length 20 cuts"):
        train.get_batch(0)
    stream = StreamingSupervisedDataset(stream_conversations(str(src)), batch_size=2, length=2, buffer_size=1,
                                        map_fn=lambda row: conversation_to_datum(row["messages"], renderer, 20))
    with pytest.raises(NothingToTrainError, match=r"max_length 20 cuts this conversation"):
        stream.get_batch(0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["prepare", "--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
        (["prepare", "--batch-size", "-3"], "argument --batch-size: must be at least 1, got -3"),
        (["prepare", "--max-length", "0"], "argument --max-length: must be at least 2, got 0"),
        (["prepare", "--n-snapshot", "-1"], "argument --n-snapshot: must be at least 0, got -1"),
        (["prepare", "--seed", "-1"], "argument --seed: must be at least 0, got -1"),
        (["prepare", "--workers", "0"], "argument --workers: must be at least 1, got 0"),
        (["prepare", "--batch-size", "two"], "argument --batch-size: expected an integer, got 'two'"),
        (["prepare", "--out", ""], "argument --out: must not be empty"),
        (["viz", "--limit", "0"], "argument --limit: must be at least 1, got 0"),
        (["viz", "--limit", "-1"], "argument --limit: must be at least 1, got -1"),
    ],
)
def test_arguments_are_checked_before_loading(capsys, argv, message):
    # The input does not exist: an argument error must come first, from argparse (exit 2).
    missing = ["--input", "/nonexistent/in.jsonl"] if argv[0] == "prepare" else ["/nonexistent/in.jsonl"]
    with pytest.raises(SystemExit) as info:
        main([*argv, *missing])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"posttrain {argv[0]}: error: {message}" in err and "nonexistent" not in err


def test_out_that_cannot_be_written_fails_before_loading(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x", encoding="utf-8")
    for out, reason in ((a_file, f"{a_file}: exists and is not a folder"),
                        (a_file / "run", f"{a_file / 'run'}: {a_file} is a file, not a folder")):
        assert main(["prepare", "--input", "/nonexistent/in.jsonl", "--out", str(out)]) == 2
        assert capsys.readouterr().err == f"posttrain prepare: error: {reason}\n"


def test_out_in_a_read_only_folder_fails_before_loading(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root); see the /proc case below")
        assert main(["prepare", "--input", "/nonexistent/in.jsonl", "--out", str(ro / "run")]) == 2
        assert capsys.readouterr().err == f"posttrain prepare: error: {ro / 'run'}: {ro} is not writable\n"
    finally:
        ro.chmod(0o700)


def test_out_where_no_folder_can_be_created_fails_before_loading(capsys):
    # /proc refuses new entries even to root: the run folder is created before any loading.
    assert main(["prepare", "--input", "/nonexistent/in.jsonl", "--out", "/proc/posttrain-run"]) == 2
    assert capsys.readouterr().err.startswith(
        "posttrain prepare: error: /proc/posttrain-run: cannot create the run folder: ")


def test_config_records_reduction_and_train_on_what(tmp_path):
    run_prepare(PrepareConfig(out=str(tmp_path / "r"), train_on="all_assistant_messages", n_snapshot=1),
                show_progress=False)
    config = json.loads((tmp_path / "r" / "config.json").read_text(encoding="utf-8"))
    assert (config["reduction"], config["train_on_what"]) == ("none", "all_assistant_messages")


def test_parallel_run_is_byte_identical_to_in_process(tmp_path):
    # Rows of every kind, so chunks hold failures, truncations and skips at different places.
    lines = []
    for i in range(700):
        if i % 97 == 5:
            lines.append(json.dumps(_row(f"no answer {i}", None)))  # fails at rendering
        elif i % 89 == 3:
            lines.append("{broken")  # fails at loading
        else:
            lines.append(json.dumps(_row(f"question {i} " + "x " * (i % 10), "answer " * (i % 60))))
        if i % 50 == 0:
            lines.append("")
    src = _write(tmp_path / "mixed.jsonl", lines)
    runs = {}
    for workers in (1, 3):
        out = tmp_path / f"w{workers}"
        s = run_prepare(PrepareConfig(input=str(src), out=str(out), max_length=48, batch_size=16, n_snapshot=20,
                                      skip_invalid=True, workers=workers), show_progress=False)
        runs[workers] = ({f: (out / f).read_bytes() for f in RUN_FILES},
                         (s.examples, s.tokens, s.trained_tokens, s.target_tokens, s.truncated, s.skipped,
                          s.extra["skip_reasons"]))
    assert runs[1] == runs[3]
    examples, _, _, _, truncated, skipped, _ = runs[1][1]
    assert skipped == len([i for i in range(700) if i % 97 == 5 or i % 89 == 3])
    assert examples == 700 - skipped and truncated > 0


def test_viz_escapes_terminal_control_sequences(tmp_path, capsys):
    row = _row("hi", "red \x1b[31mALERT\x1b[0m bell\x07 csi\x9b2J")
    src = _write(tmp_path / "esc.jsonl", [json.dumps(row)])
    assert main(["viz", str(src), "--renderer", "llama3"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
    assert "\\x1b" in out and "\\x07" in out and "\\x9b" in out


def test_rendering_errors_in_a_dataset_folder_name_split_and_row(tmp_path):
    import datasets

    repo = tmp_path / "org" / "data"
    (repo / "data").mkdir(parents=True)
    rows = [_row("a"), _row("question only", None), _row("b")]
    datasets.Dataset.from_list(rows).to_parquet(str(repo / "data" / "train-00000-of-00001.parquet"))
    with pytest.raises(InputError, match=rf"^{repo}\[train\]:2: train_on_what=last_assistant_message trains no"):
        run_prepare(PrepareConfig(input=str(repo), out=str(tmp_path / "r"), batch_size=1), show_progress=False)


def test_datum_target_counts_equal_the_built_datums(llama3_tokenizer):
    # prepare counts targets without building datums; the counts must be those of the datums.
    renderer = get_renderer("llama3", llama3_tokenizer)
    rows = [_row("q " * (i % 7), "a " * (i * 3 % 40)) for i in range(40)]
    rows += [{"messages": [*_row("x")["messages"], *_row("y " * 9, "z z")["messages"]]}]
    for messages in (r["messages"] for r in rows):
        example = renderer.build_supervised_example(messages, "all_assistant_messages")
        for max_length in (2, 12, 30, None):
            n = len(example.tokens) if max_length is None else min(len(example.tokens), max_length)
            expected = (n - 1, sum(1 for w in example.weights[1:n] if w != 0))
            if expected[1] == 0:
                with pytest.raises(NothingToTrainError):
                    datum_target_counts(example, max_length)
                with pytest.raises(NothingToTrainError):
                    example_to_datum(example, max_length, "none")
                continue
            datum = example_to_datum(example, max_length, "none")
            assert datum_target_counts(example, max_length) == expected
            assert (len(datum), int((datum.weights != 0).sum())) == expected


@pytest.mark.parametrize(("tokens", "weights", "max_length", "expected"), [
    ([1, 2, 3, 4], np.array([0.0, 0.0, 1.0, 0.5]), None, (3, 2)),  # numpy weights
    ((1, 2, 3, 4), (0, 1, 0, 1), 3, (2, 1)),  # tuples, truncated
    ([1, 2, 3], [0.0, 0.0, 0.0], None, NothingToTrainError),
    ([1, 2, 3], [0.0, 1.0], None, "tokens and weights must be 1-D of equal length"),
    ([1], [1.0], None, "a datum needs at least 2 tokens, got 1"),
    ([1, 2, 3], [0.0, 1.0, 1.0], 1, "max_length must be at least 2, got 1"),
])
def test_datum_target_counts_and_the_datum_agree_on_odd_input(tokens, weights, max_length, expected):
    example = SupervisedExample(tokens, weights, [])
    if isinstance(expected, tuple):
        assert datum_target_counts(example, max_length) == expected
        datum = example_to_datum(example, max_length, "none")
        assert (len(datum), int(np.count_nonzero(datum.weights))) == expected
        return
    error, match = (expected, None) if expected is NothingToTrainError else (PosttrainError, expected)
    with pytest.raises(error, match=match):
        datum_target_counts(example, max_length)
    with pytest.raises(error, match=match):
        example_to_datum(example, max_length, "none")


def test_prepare_counts_equal_the_datums_of_every_row(tmp_path, llama3_tokenizer):
    renderer = get_renderer("llama3", llama3_tokenizer)
    rows = [_row(f"question {i} " + "x " * (i % 9), "answer " * (i % 50 + 1)) for i in range(120)]
    src = _write(tmp_path / "rows.jsonl", [json.dumps(r) for r in rows])
    s = run_prepare(PrepareConfig(input=str(src), out=str(tmp_path / "r"), max_length=40, batch_size=8,
                                  workers=2), show_progress=False)
    datums = [conversation_to_datum(r["messages"], renderer, 40, "last_assistant_message", "none") for r in rows]
    assert s.target_tokens == sum(len(d) for d in datums)
    assert s.trained_tokens == sum(int((d.weights != 0).sum()) for d in datums)
    assert s.truncated == sum(1 for r in rows if len(renderer.build_supervised_example(r["messages"]).tokens) > 40)
