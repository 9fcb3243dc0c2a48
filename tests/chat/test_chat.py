"""posttrain chat: the session streams the renderer-parsed reply the engine samples; the terminal
command, driven through a pseudo-terminal, answers, resets and takes a system prompt."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from posttrain.chat import ChatSession
from posttrain.engine import SamplingParams
from posttrain.errors import PosttrainError
from posttrain.trained import load_renderer, load_sampler, resolve


@pytest.fixture(scope="module")
def model(run_folder: Path):
    trained = resolve(str(run_folder))
    sampler = load_sampler(trained, "cpu")
    return sampler, load_renderer(trained, sampler.base.tokenizer)


def greedy_reply(model, messages, max_tokens: int) -> str:
    sampler, renderer = model
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, stop=renderer.get_stop_sequences())
    out = sampler.sample(renderer.build_generation_prompt(messages), 1, params).result()
    return renderer.parse_response(out.sequences[0].tokens)[0].text


def test_the_session_streams_the_engines_greedy_reply(model):
    session = ChatSession(*model, temperature=0.0, max_tokens=12)
    pieces: list[tuple[str, str]] = []
    reply = session.send("Hello", on_text=lambda kind, text: pieces.append((kind, text)))
    expected = greedy_reply(model, [{"role": "user", "content": "Hello"}], 12)
    assert reply.text == expected == "".join(t for _, t in pieces)
    assert {k for k, _ in pieces} <= {"content"} and len(pieces) > 1  # streamed, not printed at the end
    second = session.send("And?")
    assert [m["role"] for m in session.messages] == ["user", "assistant", "user", "assistant"]
    assert second.text == greedy_reply(model, session.messages[:3], 12)


def test_reset_and_system(model):
    session = ChatSession(*model, temperature=0.0, max_tokens=4)
    session.send("Hi")
    session.set_system("Be terse.")
    assert session.messages == [{"role": "system", "content": "Be terse."}]
    session.send("Hi")
    session.reset()
    assert session.messages == [{"role": "system", "content": "Be terse."}]
    with pytest.raises(PosttrainError, match="temperature"):
        ChatSession(*model, temperature=-1.0)


class Terminal:
    """A child process on a pseudo-terminal: write lines, read until a marker."""

    def __init__(self, argv: list[str]):
        self.fd, child = pty.openpty()
        self.proc = subprocess.Popen(argv, stdin=child, stdout=child, stderr=child, close_fds=True,
                                     env={**os.environ, "TERM": "dumb"})
        os.close(child)
        self.buffer = ""

    def read_until(self, marker: str, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while marker not in self.buffer:
            assert time.monotonic() < deadline, f"no {marker!r} in {self.buffer[-2000:]!r}"
            if select.select([self.fd], [], [], 0.5)[0]:
                self.buffer += os.read(self.fd, 4096).decode("utf-8", "replace")
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def send(self, line: str) -> None:
        os.write(self.fd, (line + "\n").encode())

    def close(self) -> int:
        self.proc.wait(timeout=30)
        os.close(self.fd)
        return self.proc.returncode


def _plain(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\033[0m", "").replace("\033[2m", "")


def test_the_chat_command_in_a_terminal(run_folder, model):
    term = Terminal([sys.executable, "-m", "posttrain.cli", "chat", str(run_folder), "--temperature", "0",
                     "--max-tokens", "6"])
    try:
        assert "/reset" in term.read_until(">>> ")
        term.send("Hello")
        answer = _plain(term.read_until(">>> "))
        expected = greedy_reply(model, [{"role": "user", "content": "Hello"}], 6)
        assert answer == f"Hello\n{expected}\n"  # the echoed line, then the streamed reply
        term.send("/system Be terse.")
        assert "system prompt: Be terse." in term.read_until(">>> ")
        term.send("Hi")
        answer = _plain(term.read_until(">>> "))
        expected = greedy_reply(model, [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}], 6)
        assert answer == f"Hi\n{expected}\n"
        term.send("/reset")
        assert "(new conversation)" in term.read_until(">>> ")
        term.send("/quit")
    finally:
        code = term.close()
    assert code == 0


def test_reasoning_streams_apart_from_the_answer():
    from posttrain import get_renderer, get_tokenizer
    from posttrain.chat import show_reply

    renderer = get_renderer("qwen3", get_tokenizer("posttrain:qwen3"))
    prompt = renderer.build_generation_prompt([{"role": "user", "content": "2+2?"}])
    tokens = renderer.build_supervised_example(
        [{"role": "user", "content": "2+2?"},
         {"role": "assistant", "content": [{"type": "thinking", "thinking": "Two and two make four."},
                                           {"type": "text", "text": "It is 4."}]}]).tokens[len(prompt):]
    shown: list[tuple[str, str]] = []
    message = show_reply(renderer, prompt, iter(tokens), lambda kind, text: shown.append((kind, text)))
    assert (message.thinking, message.text) == ("Two and two make four.", "It is 4.")
    kinds = [k for k, _ in shown]
    assert kinds == sorted(kinds, reverse=True) and len(shown) > 4  # all reasoning first, token by token
    assert "".join(t for k, t in shown if k == "thinking") == "Two and two make four."
    assert "".join(t for k, t in shown if k == "content") == "It is 4."
