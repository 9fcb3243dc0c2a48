"""gpt-oss renderers vs openai-harmony (OpenAI's reference Harmony encoder), offline with o200k_base."""

from __future__ import annotations

import os

import pytest

from posttrain import MessageError, TrainOnWhat, get_renderer, get_tokenizer
from posttrain.offline.openai_mistral import harmony_encodings_dir
from posttrain.renderers.gpt_oss import GptOssRenderer
from tests.corpus import CONVERSATION_IDS, CONVERSATIONS, control_token_conversations

THINKING = [
    [{"role": "user", "content": "2+2?"},
     {"role": "assistant", "content": [{"type": "thinking", "thinking": "Add them: 4."}, {"type": "text", "text": "4"}]}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": [{"type": "thinking", "thinking": "greet back"}, {"type": "text", "text": "Hello!"}]},
     {"role": "user", "content": "2+3?"},
     {"role": "assistant", "content": [{"type": "thinking", "thinking": "five"}, {"type": "text", "text": "5"}]},
     {"role": "user", "content": "Bye"},
     {"role": "assistant", "content": [{"type": "thinking", "thinking": "farewell"}, {"type": "text", "text": "See you."}]}],
]
NAMES = ["gpt_oss_no_sysprompt", "gpt_oss_low_reasoning", "gpt_oss_medium_reasoning", "gpt_oss_high_reasoning"]


@pytest.fixture(scope="module")
def harmony():
    os.environ["TIKTOKEN_ENCODINGS_BASE"] = str(harmony_encodings_dir())
    import openai_harmony as h

    return h, h.load_harmony_encoding(h.HarmonyEncodingName.HARMONY_GPT_OSS)


@pytest.fixture(scope="module")
def tok():
    return get_tokenizer("posttrain:gpt-oss")


def to_harmony(h, renderer, msgs):
    out = []
    if renderer.reasoning_effort is not None:
        effort = {"low": h.ReasoningEffort.LOW, "medium": h.ReasoningEffort.MEDIUM, "high": h.ReasoningEffort.HIGH}
        sys = h.SystemContent.new().with_reasoning_effort(effort[renderer.reasoning_effort])
        sys = sys.with_conversation_start_date(renderer.current_date) if renderer.current_date else sys
        out.append(h.Message.from_role_and_content(h.Role.SYSTEM, sys))
    for m in msgs:
        if m["role"] == "system":
            out.append(h.Message.from_role_and_content(h.Role.DEVELOPER,
                                                       h.DeveloperContent.new().with_instructions(m["content"])))
        elif m["role"] == "user":
            out.append(h.Message.from_role_and_content(h.Role.USER, m["content"]))
        else:
            parts = m["content"] if isinstance(m["content"], list) else [{"type": "text", "text": m["content"]}]
            for p in parts:
                if p["type"] == "thinking":
                    out.append(h.Message.from_role_and_content(h.Role.ASSISTANT, p["thinking"]).with_channel("analysis"))
            text = "".join(p["text"] for p in parts if p["type"] == "text")
            out.append(h.Message.from_role_and_content(h.Role.ASSISTANT, text).with_channel("final"))
    return out


@pytest.fixture(scope="module", params=NAMES)
def renderer(request, tok):
    return get_renderer(request.param, tok)


def completion(h, enc, renderer, msgs):
    return enc.render_conversation_for_completion(h.Conversation.from_messages(to_harmony(h, renderer, msgs)),
                                                  h.Role.ASSISTANT)


@pytest.mark.parametrize("msgs", CONVERSATIONS + THINKING, ids=CONVERSATION_IDS + ["think0", "think1"])
def test_generation_prompt_equals_harmony(renderer, harmony, msgs):
    h, enc = harmony
    for k in range(1, len(msgs) + 1):
        if msgs[k - 1]["role"] == "user":
            assert renderer.build_generation_prompt(msgs[:k]) == completion(h, enc, renderer, msgs[:k])


@pytest.mark.parametrize("msgs", CONVERSATIONS, ids=CONVERSATION_IDS)
def test_full_sequence_equals_harmony_training_render(renderer, harmony, msgs):
    h, enc = harmony
    ref = enc.render_conversation_for_training(h.Conversation.from_messages(to_harmony(h, renderer, msgs)))
    assert renderer.build_supervised_example(msgs).tokens == ref


@pytest.mark.parametrize("msgs", THINKING, ids=["think0", "think1"])
def test_produced_turn_keeps_its_reasoning(renderer, harmony, msgs):
    """Prompt as Harmony completes it, then the produced turn as Harmony renders its messages."""
    h, enc = harmony
    prompt = completion(h, enc, renderer, msgs[:-1])
    last = to_harmony(h, renderer, msgs[-1:]) if renderer.reasoning_effort is None else to_harmony(
        h, renderer, msgs[-1:])[1:]
    assert renderer.build_supervised_example(msgs).tokens == prompt + produced_turn(h, enc, last)


def produced_turn(h, enc, last_messages) -> list[int]:
    """The produced turn's Harmony messages as Harmony renders each, after the prompt's <|start|>assistant."""
    start = enc.encode("<|start|>assistant", allowed_special="all")
    turn = [t for m in last_messages[:-1] for t in enc.render(m)]
    turn += enc.render_conversation_for_training(h.Conversation.from_messages(last_messages[-1:]))
    assert turn[: len(start)] == start
    return turn[len(start):]


def test_earlier_reasoning_dropped_as_harmony_drops_it(tok):
    r = get_renderer("gpt_oss_no_sysprompt", tok)
    text = tok.decode(r.build_generation_prompt(THINKING[1][:-1]))
    assert "greet back" not in text and "five" in text  # Harmony drops analysis before the first final only
    assert not r.has_extension_property


def test_current_date_is_configurable_and_matches_harmony(tok, harmony):
    h, enc = harmony
    r = GptOssRenderer(tok, reasoning_effort="high", current_date="2025-06-28")
    msgs = CONVERSATIONS[0][:1]
    assert r.build_generation_prompt(msgs) == completion(h, enc, r, msgs)
    assert "Current date: 2025-06-28" in tok.decode(r.build_generation_prompt(msgs))
    with pytest.raises(ValueError, match="reasoning_effort must be one of"):
        GptOssRenderer(tok, reasoning_effort="extreme")


@pytest.mark.parametrize("msgs", control_token_conversations())
def test_control_token_text_equals_harmony(renderer, harmony, msgs):
    """Control-token text stays text (tests/renderers/test_contract.py); here: against Harmony."""
    h, enc = harmony
    ex = renderer.build_supervised_example(msgs, TrainOnWhat.ALL_MESSAGES)
    # Harmony encodes message text as text too: full equality, control strings included.
    ref = enc.render_conversation_for_training(h.Conversation.from_messages(to_harmony(h, renderer, msgs)))
    assert ex.tokens == ref


CALL = {"type": "function", "id": "c1", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
TOOL_CONVS = [
    [{"role": "user", "content": "Weather?"},
     {"role": "assistant", "content": [{"type": "thinking", "thinking": "need tool"}], "tool_calls": [CALL]},
     {"role": "tool", "content": '{"temp":21}', "tool_call_id": "c1"},
     {"role": "assistant", "content": "It is 21."}],
    [{"role": "user", "content": "Weather in two cities?"},
     {"role": "assistant", "content": "Checking both.", "tool_calls": [
         CALL, {"type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
     {"role": "tool", "content": "21", "name": "get_weather"},
     {"role": "tool", "content": "noon", "name": "get_time"},
     {"role": "assistant", "content": [{"type": "thinking", "thinking": "combine"}, {"type": "text", "text": "21, noon."}]}],
]


def to_harmony_with_tools(h, msgs):
    out = []
    for m in msgs:
        if m["role"] == "user":
            out.append(h.Message.from_role_and_content(h.Role.USER, m["content"]))
        elif m["role"] == "tool":
            name = m.get("name") or "get_weather"
            out.append(h.Message.from_author_and_content(h.Author.new(h.Role.TOOL, f"functions.{name}"), m["content"])
                       .with_channel("commentary").with_recipient("assistant"))
        else:
            parts = m["content"] if isinstance(m["content"], list) else [{"type": "text", "text": m["content"]}]
            text = "".join(p["text"] for p in parts if p["type"] == "text")
            for p in parts:
                if p["type"] == "thinking":
                    out.append(h.Message.from_role_and_content(h.Role.ASSISTANT, p["thinking"]).with_channel("analysis"))
            if m.get("tool_calls"):
                if text:
                    out.append(h.Message.from_role_and_content(h.Role.ASSISTANT, text).with_channel("commentary"))
                for c in m["tool_calls"]:
                    out.append(h.Message.from_role_and_content(h.Role.ASSISTANT, c["function"]["arguments"])
                               .with_channel("commentary").with_recipient(f"functions.{c['function']['name']}")
                               .with_content_type("<|constrain|>json"))
            else:
                out.append(h.Message.from_role_and_content(h.Role.ASSISTANT, text).with_channel("final"))
    return out


@pytest.mark.parametrize("msgs", TOOL_CONVS, ids=["thinking_call", "preamble_two_calls"])
def test_tool_calls_equal_harmony(tok, harmony, msgs):
    h, enc = harmony
    r = get_renderer("gpt_oss_no_sysprompt", tok)
    # Histories with tool calls and results, as Harmony renders them for completion; the produced turn keeps
    # its reasoning (Harmony's training render would drop "combine" in the second conversation).
    tokens = r.build_supervised_example(msgs).tokens
    if isinstance(msgs[-1]["content"], list):
        prompt = enc.render_conversation_for_completion(
            h.Conversation.from_messages(to_harmony_with_tools(h, msgs[:-1])), h.Role.ASSISTANT)
        assert tokens == prompt + produced_turn(h, enc, to_harmony_with_tools(h, msgs[-1:]))
    else:
        # Harmony's training render; it drops the reasoning that led to the tool call, which its completion
        # prompt (below) still showed, so here the observation is not the generation prompt.
        assert tokens == enc.render_conversation_for_training(h.Conversation.from_messages(to_harmony_with_tools(h, msgs)))
    for k in range(1, len(msgs)):
        if msgs[k]["role"] == "assistant":
            assert r.build_generation_prompt(msgs[:k]) == enc.render_conversation_for_completion(
                h.Conversation.from_messages(to_harmony_with_tools(h, msgs[:k])), h.Role.ASSISTANT)
    # A turn that ends in a tool call: Harmony's training render keeps its reasoning and ends in <|call|>.
    turn = msgs[:2]
    ex = r.build_supervised_example(turn)
    assert ex.tokens == enc.render_conversation_for_training(h.Conversation.from_messages(to_harmony_with_tools(h, turn)))
    parsed, ok = r.parse_response([t for t, w in zip(ex.tokens, ex.weights, strict=True) if w > 0])
    assert ok and parsed.tool_calls[0].name == "get_weather" and parsed.tool_calls[0].arguments == '{"city":"Paris"}'


def test_tool_result_without_a_name_is_an_error(tok):
    r = get_renderer("gpt_oss_no_sysprompt", tok)
    with pytest.raises(MessageError, match="message 2, field 'name'"):
        r.build_supervised_example([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                                    {"role": "tool", "content": "c"}, {"role": "assistant", "content": "d"}])


def test_offline_tokenizer_matches_harmony_ids(tok, harmony):
    h, enc = harmony
    for text in [m["content"] for c in CONVERSATIONS for m in c]:
        assert tok.encode(text) == enc.encode(text, allowed_special=set())
    for name in ("<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|return|>", "<|call|>", "<|constrain|>",
                 "<|endoftext|>", "<|startoftext|>"):
        assert [tok.token_id(name)] == enc.encode(name, allowed_special="all")
