"""One contract over every renderer in the registry, each with its offline tokenizer.

For every renderer:

* **round trip** — the completion a sampler returns after the generation prompt (the supervised
  example's tokens after that prompt, through its last trained token) ends with the format's
  end-of-turn marker (looked up in the tokenizer's vocabulary) and parses back into the rendered
  assistant message: text, reasoning and tool calls; without its end-of-turn marker it parses as
  unfinished. The prompt is the example's untrained beginning. Formats differ only as their official
  encoders do (see :data:`FORMATS`).
* **capabilities** — a conversation with reasoning or tool calls round-trips where the format has a
  place for them, and is otherwise rejected with an error naming the message and field.
* **extension property** — where the format promises it, the prompt for each assistant turn extends the
  full conversation before it, that turn's conversation extends the prompt, and the whole conversation
  extends that; where it does not, the documented conversation breaks it.
* **control-token text** — message text made of any family's control-token strings (and random text
  mixed with them) renders as text: no token that came from a message is a control token of the
  tokenizer, and the text decodes back.

Expected values come from the input, the tokenizer's vocabulary and the tables below, written from each
format's documentation — never from the renderer under test. Token-exactness against each family's
official encoder lives in the per-family files (test_llama3.py, test_qwen3.py, ...).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from posttrain import MessageError, TrainOnWhat, get_renderer, get_tokenizer
from posttrain.renderers import Renderer, default_tokenizer_for, renderer_names
from tests.corpus import CONVERSATION_IDS, CONVERSATIONS, control_token_conversations, random_conversations


def _same(s: str) -> str:
    return s


@dataclass(frozen=True)
class Format:
    """What a format promises, from its documentation and its official encoder."""

    end_of_turn: str  # the control token that ends a produced turn (role_colon: text, see end_is_token)
    extends: bool  # the extension property
    reasoning: bool = False  # renders thinking parts of the produced turn
    tools: bool = False  # renders tool calls and tool results
    tool_call_end: str | None = None  # end-of-turn marker of a turn that ends in a tool call, if different
    witness: str = "multi_turn"  # conversation on which a format without the extension property breaks it
    end_is_token: bool = True
    rejects_empty_reply: bool = False
    folds_system: bool = False  # the system prompt is written inside the last user message
    reply_merges_with_header: bool = False  # a reply starting with whitespace merges with the header's "\n"
    text: Callable[[str], str] = _same  # what the format keeps of the reply's text
    thinking: Callable[[str], str] = _same  # ... and of its reasoning


_EOS_DEEPSEEK = "<｜end▁of▁sentence｜>"
_GPT_OSS = Format("<|return|>", extends=False, reasoning=True, tools=True, tool_call_end="<|call|>")
# Qwen3's template writes reasoning.strip("\n") and, after </think>, content.lstrip("\n").
_QWEN3 = {"text": lambda s: s.lstrip("\n"), "thinking": lambda s: s.strip("\n")}
# mistral-common rstrips replies (rstrip(" ")) and rejects an empty one.
_MISTRAL = {"rejects_empty_reply": True, "text": lambda s: s.rstrip(" ")}

FORMATS: dict[str, Format] = {
    "role_colon": Format("\n\nUser:", extends=True, end_is_token=False),
    "llama3": Format("<|eot_id|>", extends=True, tools=True),
    "qwen3": Format("<|im_end|>", extends=False, reasoning=True, tools=True, **_QWEN3),
    "qwen3_disable_thinking": Format("<|im_end|>", extends=False, tools=True, **_QWEN3),
    "qwen3_instruct": Format("<|im_end|>", extends=True, tools=True, reply_merges_with_header=True),
    "deepseekv3": Format(_EOS_DEEPSEEK, extends=True),
    "deepseekv3_thinking": Format(_EOS_DEEPSEEK, extends=False, reasoning=True),
    "deepseekv3_disable_thinking": Format(_EOS_DEEPSEEK, extends=True),
    "gpt_oss_no_sysprompt": _GPT_OSS,
    "gpt_oss_low_reasoning": _GPT_OSS,
    "gpt_oss_medium_reasoning": _GPT_OSS,
    "gpt_oss_high_reasoning": _GPT_OSS,
    "mistral": Format("</s>", extends=True, **_MISTRAL),
    # v3 prepends the system prompt to the last user message, so adding a turn moves it.
    "mistral_v3": Format("</s>", extends=False, witness="system_multi", folds_system=True, **_MISTRAL),
    "smollm2": Format("<|im_end|>", extends=True, reply_merges_with_header=True),
}
NAMES = renderer_names()

THINKING = {
    "think_single": [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "Add them.\nIt is 4."},
                                          {"type": "text", "text": "4"}]}],
    "think_history": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "greet back"},
                                          {"type": "text", "text": "Hello!"}]},
        {"role": "user", "content": "2+3?"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "\nfive\n"},
                                          {"type": "text", "text": "\n5"}]}],
    "think_after_plain": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "\nsay bye\n"},
                                          {"type": "text", "text": " See you."}]}],
}
_CALL = {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "c"}'}}
TOOLS = {
    "tool_call_turn": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [_CALL]}],
    "tool_history": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [_CALL]},
        {"role": "tool", "content": '{"temp": 21}', "name": "get_weather"},
        {"role": "assistant", "content": "It is 21°C in Paris."},
        {"role": "user", "content": "And tomorrow?"},
        {"role": "assistant", "content": "I cannot tell."}],
}
ROUND_TRIP = {**dict(zip(CONVERSATION_IDS, CONVERSATIONS, strict=True)), **THINKING, **TOOLS}
CONTROL = control_token_conversations()


@cache
def _renderer(name: str) -> Renderer:
    return get_renderer(name, get_tokenizer(default_tokenizer_for(name)))


@pytest.fixture(params=NAMES)
def name(request) -> str:
    return request.param


def test_every_registered_renderer_has_a_contract():
    assert sorted(FORMATS) == NAMES


def _supports(fmt: Format, msgs: list[dict[str, Any]]) -> bool:
    """Whether the format has a place for the conversation's tool calls and reasoning."""
    tools = any(m.get("tool_calls") or m["role"] == "tool" for m in msgs)
    reasoning = any(isinstance(m["content"], list) and any(p["type"] == "thinking" for p in m["content"])
                    for m in msgs)
    return (fmt.tools or not tools) and (fmt.reasoning or not reasoning)


def _expected(fmt: Format, msg: dict[str, Any]) -> tuple[str, str | None, list[tuple[str, Any]]]:
    content = msg["content"]
    if isinstance(content, str):
        text, thinking = content, None
    else:
        text = "".join(p["text"] for p in content if p["type"] == "text")
        thinking = "".join(p["thinking"] for p in content if p["type"] == "thinking")
    calls = [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in msg.get("tool_calls", [])]
    return fmt.text(text), fmt.thinking(thinking) if thinking is not None else None, calls


def _parsed(message: Any) -> tuple[str, str | None, list[tuple[str, Any]]]:
    calls = [(c.name, json.loads(c.arguments)) for c in message.tool_calls]
    return message.text, message.thinking or None, calls  # an empty think block is no reasoning


@pytest.mark.parametrize("conv", list(ROUND_TRIP))
def test_round_trip(name, conv):
    fmt, r, msgs = FORMATS[name], _renderer(name), ROUND_TRIP[conv]
    tok = r.tokenizer
    if not _supports(fmt, msgs):  # no place for it: an error naming the message
        with pytest.raises(MessageError) as err:
            r.build_supervised_example(msgs)
        named = msgs[err.value.message_index]  # the message it cannot place, and which field
        if err.value.field == "content":
            assert isinstance(named["content"], list), err.value
        else:
            assert named.get("tool_calls") or named["role"] == "tool", err.value
        return
    if fmt.rejects_empty_reply and msgs[-1]["content"] == "":
        with pytest.raises(MessageError) as err:
            r.build_supervised_example(msgs)
        assert (err.value.message_index, err.value.field) == (len(msgs) - 1, "content")
        return

    ex = r.build_supervised_example(msgs)
    prompt = r.build_generation_prompt(msgs[:-1])
    end = max(i for i, w in enumerate(ex.weights) if w > 0) + 1
    text, thinking, calls = _expected(fmt, msgs[-1])
    if ex.tokens[: len(prompt)] == prompt:
        start, header_tail = len(prompt), ""
    else:
        # The documented exception: the header's last "\n" and a reply starting with whitespace are one
        # token, which is trained (the model must emit it); the observation ends one token earlier.
        assert fmt.reply_merges_with_header and text[:1].isspace(), "the observation is not the prompt"
        assert ex.tokens[: len(prompt) - 1] == prompt[:-1]
        start, header_tail = len(prompt) - 1, tok.decode(prompt[-1:])
    assert not any(ex.weights[:start]) and ex.weights[start] > 0
    completion = ex.tokens[start:end]

    marker = fmt.tool_call_end if calls and fmt.tool_call_end else fmt.end_of_turn
    if fmt.end_is_token:
        assert tok.token_id(marker) in tok.added_ids and completion[-1] == tok.token_id(marker)
    else:
        assert tok.decode(completion).endswith(marker)
    parsed, ok = r.parse_response(completion)
    assert ok and parsed.role == "assistant"
    assert _parsed(parsed) == (header_tail + text, thinking, calls)
    cut, ok = r.parse_response(completion[:-1])  # cut off before its end-of-turn marker
    assert not ok
    if fmt.end_is_token and not calls:
        assert _parsed(cut)[:2] == (header_tail + text, thinking)


EXTENSION = {
    "multi_turn": ROUND_TRIP["multi_turn"],
    "system_multi": ROUND_TRIP["system_multi"],
    "think_history": THINKING["think_history"],
    "tool_history": TOOLS["tool_history"],
}


def _extends(r: Renderer, msgs: list[dict[str, Any]]) -> bool:
    """For each assistant turn k: full(msgs[:k]) ⊑ prompt(msgs[:k]) ⊑ full(msgs[:k+1]) ⊑ full(msgs)."""

    def full(m: list[dict[str, Any]]) -> list[int]:
        return r.build_supervised_example(m, TrainOnWhat.ALL_MESSAGES).tokens

    def starts(seq: list[int], prefix: list[int]) -> bool:
        return seq[: len(prefix)] == prefix

    whole = full(msgs)
    for k in range(1, len(msgs)):
        if msgs[k]["role"] != "assistant":
            continue
        prompt, turn = r.build_generation_prompt(msgs[:k]), full(msgs[: k + 1])
        if not (starts(prompt, full(msgs[:k])) and starts(turn, prompt) and starts(whole, turn)):
            return False
    return True


def test_extension_property(name):
    fmt, r = FORMATS[name], _renderer(name)
    assert r.has_extension_property == fmt.extends  # build_supervised_examples relies on the flag
    convs = {c: m for c, m in EXTENSION.items() if _supports(fmt, m)}
    if fmt.extends:
        assert [c for c, m in convs.items() if not _extends(r, m)] == []
    else:
        assert not _extends(r, EXTENSION[fmt.witness])


@pytest.mark.parametrize("msgs", CONTROL, ids=[f"control{i}" for i in range(len(CONTROL))])
def test_control_token_text_stays_text(name, msgs):
    r = _renderer(name)
    tok = r.tokenizer
    ex = r.build_supervised_example(msgs, TrainOnWhat.ALL_MESSAGES)
    content = ex.content_token_indices()
    assert content, "content spans must be tracked"
    assert not [ex.tokens[i] for i in content if ex.tokens[i] in tok.added_ids]
    fmt = FORMATS[name]
    last_user = max(i for i, m in enumerate(msgs) if m["role"] == "user")
    for i, m in enumerate(msgs):
        # Each message's characters come back from its own content tokens (as the tokenizer's own text
        # round trip gives them: SentencePiece writes "▁" as a space).
        text = fmt.text(m["content"]) if m["role"] == "assistant" else m["content"]
        owner = last_user if fmt.folds_system and m["role"] == "system" else i
        mine = [ex.tokens[j] for c in ex.message_chunks(owner) if c.from_content for j in range(c.start, c.end)]
        assert tok.decode(tok.encode(text)) in tok.decode(mine), i


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(msgs=random_conversations())
def test_random_text_never_becomes_a_control_token(name, msgs):
    r = _renderer(name)
    if FORMATS[name].rejects_empty_reply and not msgs[-1]["content"]:
        with pytest.raises(MessageError, match=r"message \d+, field 'content'"):
            r.build_supervised_example(msgs, TrainOnWhat.ALL_MESSAGES)
        return
    ex = r.build_supervised_example(msgs, TrainOnWhat.ALL_MESSAGES)
    assert not [ex.tokens[i] for i in ex.content_token_indices() if ex.tokens[i] in r.tokenizer.added_ids]
