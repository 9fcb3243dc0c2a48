"""CLI: render and viz (prepare has its own test module)."""

from __future__ import annotations

import io
import json

import pytest

from posttrain import get_renderer, get_tokenizer
from posttrain.cli import main
from posttrain.renderers import default_tokenizer_for, renderer_names
from tests.corpus import CONVERSATIONS


def _jsonl(rows) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


@pytest.fixture
def stdin(monkeypatch):
    def set_stdin(text: str) -> None:
        monkeypatch.setattr("sys.stdin", io.StringIO(text))

    return set_stdin


def test_help_on_every_command(capsys):
    for argv in (["--help"], ["render", "--help"], ["viz", "--help"], ["prepare", "--help"], ["parity", "--help"],
                 ["parity", "diff", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
        assert "usage: posttrain" in capsys.readouterr().out


def test_render_supervised_matches_library(stdin, capsys, llama3_tokenizer):
    stdin(_jsonl({"messages": c} for c in CONVERSATIONS[:5]))
    assert main(["render", "--renderer", "llama3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5
    renderer = get_renderer("llama3", llama3_tokenizer)
    for line, conv in zip(lines, CONVERSATIONS[:5], strict=True):
        rec = json.loads(line)
        tokens, weights = renderer.build_supervised_example(conv)
        assert rec == {"tokens": tokens, "weights": weights}


def test_render_generation_from_file(tmp_path, capsys, llama3_tokenizer, meta_chat_format):
    from llama_models.datatypes import RawMessage

    conv = CONVERSATIONS[1][:-1]
    path = tmp_path / "in.jsonl"
    path.write_text(_jsonl([{"messages": conv}]), encoding="utf-8")
    assert main(["render", str(path), "--renderer", "llama3", "--mode", "generation"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["tokens"] == meta_chat_format.encode_dialog_prompt([RawMessage(**m) for m in conv]).tokens


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\n{not json}\n',
         r"<stdin>:2: invalid JSON"),
        ('\n{"msgs": []}\n', r"<stdin>:2: missing 'messages' \(keys present: msgs\)"),
        ('{"messages": [{"role": "user", "content": "a"}, {"role": "wizard", "content": "b"}]}\n',
         r"<stdin>:1: message 1, field 'role': unknown role 'wizard'"),
        ('{"messages": [{"role": "user", "content": "a"}]}\n', r"<stdin>:1: train_on_what=last_assistant_message trains no token"),
        ('[1, 2]\n', r"<stdin>:1: expected a JSON object with 'messages', got list"),
    ],
)
def test_render_errors_name_the_line(stdin, capsys, text, pattern):
    import re

    stdin(text)
    assert main(["render", "--renderer", "llama3"]) == 2
    err = capsys.readouterr().err
    assert re.search(pattern, err), err


def test_unknown_renderer_is_rejected(capsys):
    with pytest.raises(SystemExit):
        main(["render", "--renderer", "gpt5"])
    assert "invalid choice: 'gpt5'" in capsys.readouterr().err


def test_viz_terminal_and_html(tmp_path, stdin, capsys):
    conv = [{"role": "user", "content": "Hi <b>"}, {"role": "assistant", "content": "Hello & bye"}]
    stdin(_jsonl([{"messages": conv}]))
    assert main(["viz", "--renderer", "llama3", "--color"]) == 0
    out = capsys.readouterr().out
    assert "Hello" in out and "trained" in out and "\x1b[" in out  # ANSI colors
    page = tmp_path / "viz.html"
    src = tmp_path / "in.jsonl"
    src.write_text(_jsonl([{"messages": conv}]), encoding="utf-8")
    assert main(["viz", str(src), "--renderer", "llama3", "--html", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    # The trained tokens are exactly the assistant content and <|eot_id|>.
    trained = [s.split(">", 1)[1].split("<", 1)[0] for s in html.split('<span class="t w')[1:]]
    assert "".join(trained).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">") == "Hello & bye<|eot_id|>"
    import html as html_lib
    import re

    body = html.split("<pre>", 1)[1].split("</pre>", 1)[0]
    assert "Hi <b>" in html_lib.unescape(re.sub(r"<[^>]+>", "", body))


@pytest.mark.parametrize("name", renderer_names())
def test_render_every_renderer_with_its_default_tokenizer(stdin, capsys, name):
    conv = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi <|im_end|> [INST]"},
            {"role": "assistant", "content": "Hello!"}]
    stdin(_jsonl([{"messages": conv}]))
    assert main(["render", "--renderer", name]) == 0
    rec = json.loads(capsys.readouterr().out)
    tokens, weights = get_renderer(name, get_tokenizer(default_tokenizer_for(name))).build_supervised_example(conv)
    assert rec == {"tokens": tokens, "weights": weights} and sum(weights) > 0
