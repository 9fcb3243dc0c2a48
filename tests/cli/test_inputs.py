"""Every command reads inputs through the same source layer; every bad input is one error line
naming the file and line (or message and field, or argument), exit code 2 — never a traceback."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from posttrain import get_renderer
from posttrain.cli import main

SRC = Path(__file__).resolve().parents[2] / "src"
GOOD = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}


def _line(row: object) -> str:
    return json.dumps(row, ensure_ascii=False) + "\n"


def _stdin_bytes(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _expected_record(llama3_tokenizer) -> dict:
    tokens, weights = get_renderer("llama3", llama3_tokenizer).build_supervised_example(GOOD["messages"])
    return {"tokens": tokens, "weights": weights}


@pytest.mark.parametrize("command", ["render", "viz"])
@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("bom.jsonl", b"\xef\xbb\xbf" + _line(GOOD).encode()),
        ("array.json", b'[\n  ' + json.dumps(GOOD).encode() + b'\n]\n'),
        ("gz.jsonl.gz", gzip.compress(_line(GOOD).encode())),
    ],
)
def test_render_and_viz_read_what_prepare_reads(tmp_path, capsys, llama3_tokenizer, command, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    code, out, err = _cli([command, str(path), "--renderer", "llama3"], capsys)
    assert (code, err) == (0, "")
    if command == "render":
        assert json.loads(out) == _expected_record(llama3_tokenizer)
    else:
        line = 2 if name == "array.json" else 1  # an array item is numbered by the line it starts on
        assert f"line {line}: 14 tokens, 3 trained" in out


def test_prepare_reads_stdin(tmp_path, capsys, monkeypatch):
    _stdin_bytes(monkeypatch, (_line(GOOD) * 3).encode())
    code, out, err = _cli(["prepare", "--input", "-", "--out", str(tmp_path / "r"), "--batch-size", "2"], capsys)
    assert code == 0, err
    snap = json.loads((tmp_path / "r" / "parity" / "dataset_snapshot.json").read_text(encoding="utf-8"))
    assert snap["total_count"] == 3 and sorted(s["index"] for s in snap["samples"]) == [0, 1, 2]


@pytest.mark.parametrize("command", ["render", "prepare"])
def test_non_utf8_file_names_file_and_line(tmp_path, capsys, command):
    path = tmp_path / "latin1.jsonl"
    bad = b'{"messages": [{"role": "user", "content": "caf\xe9"}]}\n'
    path.write_bytes(_line(GOOD).encode() + bad)
    argv = ["render", str(path), "--renderer", "llama3"] if command == "render" else \
        ["prepare", "--input", str(path), "--out", str(tmp_path / "r"), "--batch-size", "1"]
    code, _, err = _cli(argv, capsys)
    assert code == 2
    column = bad.index(b"\xe9") + 1
    assert err == f"posttrain {command}: error: {path}:2: not valid UTF-8: byte 0xe9 at byte {column} of the line\n"


def test_non_utf8_stdin_names_line(capsys, monkeypatch):
    _stdin_bytes(monkeypatch, b"\n\n" + b'{"messages": "\xff"}\n')
    code, _, err = _cli(["render", "--renderer", "llama3"], capsys)
    assert (code, err) == (2, "posttrain render: error: <stdin>:3: not valid UTF-8: byte 0xff at byte 15 of the line\n")


def test_lone_surrogate_escape_names_line_message_and_field(tmp_path, capsys):
    path = tmp_path / "sur.jsonl"
    row = '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "x\\ud800"}]}\n'
    path.write_text(_line(GOOD) + row, encoding="utf-8")
    for argv in (["render", str(path), "--renderer", "llama3"],
                 ["prepare", "--input", str(path), "--out", str(tmp_path / "r"), "--batch-size", "1"]):
        code, _, err = _cli(argv, capsys)
        assert code == 2
        assert err.endswith(f"{path}:2: message 1, field 'content': lone surrogate U+D800 at character 1 "
                            "(not encodable as UTF-8)\n")


def test_missing_path_directory_and_corrupt_parquet(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 this is not parquet PAR1")
    cases = [
        (str(tmp_path / "nope.jsonl"), f"{tmp_path / 'nope.jsonl'}: no such file"),
        (str(tmp_path / "nope.parquet"), f"{tmp_path / 'nope.parquet'}: no such file"),
        (str(tmp_path / "empty"), f"{tmp_path / 'empty'}[train]: cannot read dataset: EmptyDatasetError"),
        (str(bad), f"{bad}: cannot read Parquet file: ArrowInvalid"),
    ]
    for spec, expected in cases:
        for argv in (["render", spec, "--renderer", "llama3"], ["prepare", "--input", spec, "--out", str(tmp_path / "r")]):
            code, _, err = _cli(argv, capsys)
            assert code == 2 and err.count("\n") == 1, err
            assert err.startswith(f"posttrain {argv[0]}: error: {expected}"), err
    assert not (tmp_path / "r").exists()


def test_tool_call_arguments_not_json_name_line_message_and_field(tmp_path, capsys):
    path = tmp_path / "tools.jsonl"
    call = {"type": "function", "function": {"name": "f", "arguments": "{not json"}}
    row = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": None, "tool_calls": [call]}]}
    path.write_text("\n" + _line(row), encoding="utf-8")
    for renderer in ("llama3", "qwen3", "gpt_oss_no_sysprompt"):
        code, _, err = _cli(["render", str(path), "--renderer", renderer], capsys)
        assert (code, err) == (2, f"posttrain render: error: {path}:2: message 1, field "
                                  "'tool_calls[0].function.arguments': not valid JSON: Expecting property name "
                                  "enclosed in double quotes at character 1\n")


def test_tokenizer_that_is_not_a_tokenizer(tmp_path, capsys):
    fake = tmp_path / "tokenizer.json"
    fake.write_text('{"not": "a tokenizer"}', encoding="utf-8")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "README.md").write_text("no tokenizer here", encoding="utf-8")
    for path, what in ((fake, "not a tokenizer.json file"), (folder, "not a tokenizer folder")):
        code, _, err = _cli(["render", "-", "--renderer", "llama3", "--tokenizer", str(path)], capsys)
        assert code == 2 and err.startswith(f"posttrain render: error: {path}: {what}") and err.count("\n") == 1


def test_renderer_with_a_tokenizer_lacking_its_control_tokens_fails_at_construction(capsys, llama3_tokenizer):
    from posttrain import RendererError

    with pytest.raises(RendererError, match=r"renderer 'qwen3' needs control token\(s\) <\|im_start\|>, <\|im_end\|>"):
        get_renderer("qwen3", llama3_tokenizer)
    code, _, err = _cli(["render", "-", "--renderer", "mistral", "--tokenizer", "posttrain:llama3"], capsys)
    assert code == 2
    assert err == ("posttrain render: error: renderer 'mistral' needs control token(s) <s>, </s>, [INST], [/INST], "
                   "[SYSTEM_PROMPT], [/SYSTEM_PROMPT], which tokenizer 'posttrain:llama3' lacks; use a tokenizer of "
                   "the renderer's model family\n")


def test_closed_stdin_in_process(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", None)  # what Python sets when file descriptor 0 is closed
    code, _, err = _cli(["render", "--renderer", "llama3"], capsys)
    assert (code, err) == (2, "posttrain render: error: <stdin>: standard input is closed; pass a file or pipe data in\n")


# -- real processes: closed descriptor 0, Ctrl-C, an offline hub -----------------------------------

def _cli_process(args: list[str], **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONUNBUFFERED": "1", **kwargs.pop("env", {})}
    return subprocess.Popen([sys.executable, "-m", "posttrain.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kwargs)


def test_closed_stdin_descriptor():
    proc = _cli_process(["render", "--renderer", "llama3"], stdin=subprocess.DEVNULL, pass_fds=(),
                        preexec_fn=lambda: os.close(0))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and out == b""
    assert err.decode().splitlines()[-1] == ("posttrain render: error: <stdin>: standard input is closed; "
                                             "pass a file or pipe data in")


def test_ctrl_c_prints_one_line():
    # as from a terminal: a process started in the background by a shell inherits SIGINT ignored
    proc = _cli_process(["render", "--renderer", "llama3"], stdin=subprocess.PIPE,
                        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(_line(GOOD).encode())
    proc.stdin.flush()
    assert json.loads(proc.stdout.readline())["weights"][-1] == 1.0  # loaded, rendering, waiting for input
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.decode() == "posttrain render: interrupted\n"


def test_hub_id_while_offline(tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = _cli_process(["prepare", "--input", "someorg/somedata", "--out", str(tmp_path / "r")], env=env,
                        stdin=subprocess.DEVNULL)
    start = time.monotonic()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and time.monotonic() - start < 120
    (line,) = err.decode().splitlines()
    assert re.fullmatch(r"posttrain prepare: error: someorg/somedata\[train\]: cannot read dataset: "
                        r"ConnectionError: Couldn't reach 'someorg/somedata' on the Hub \(OfflineModeIsEnabled\)", line)
