"""Qwen3 renderers vs Qwen3's official HF chat template and tokenizer."""

from __future__ import annotations

import json

import pytest

from posttrain import MessageError, TrainOnWhat, get_renderer, get_tokenizer
from tests.corpus import CONVERSATION_IDS, CONVERSATIONS, control_token_conversations
from tests.reference_hf import reference_ids, reference_ids_of_text, template_text

THINKING = [
    [{"role": "user", "content": "2+2?"},
     {"role": "assistant", "content": [{"type": "thinking", "thinking": "Add them.\nIt is 4."}, {"type": "text", "text": "4"}]}],
    [{"role": "system", "content": "Think first."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": [{"type": "thinking", "thinking": "greet"}, {"type": "text", "text": "Hello!"}]},
     {"role": "user", "content": "Bye"},
     {"role": "assistant", "content": [{"type": "thinking", "thinking": "\nfarewell\n"}, {"type": "text", "text": "\nSee you."}]}],
]
TOOLS = [
    [{"role": "user", "content": "Weather in Paris and Rome?"},
     {"role": "assistant", "content": "Checking.", "tool_calls": [
         {"type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}},
         {"type": "function", "function": {"name": "weather", "arguments": '{"city": "Rome"}'}}]},
     {"role": "tool", "content": '{"temp": 21}'},
     {"role": "tool", "content": '{"temp": 25}'},
     {"role": "assistant", "content": "Paris 21°C, Rome 25°C."}],
    [{"role": "user", "content": "Time?"},
     {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "now", "arguments": "{}"}}]},
     {"role": "tool", "content": "12:00"},
     {"role": "assistant", "content": "It is noon."}],
]


@pytest.fixture(scope="module")
def tok():
    return get_tokenizer("posttrain:qwen3")


@pytest.fixture(scope="module", params=["qwen3", "qwen3_disable_thinking", "qwen3_instruct"])
def renderer(request, tok):
    return get_renderer(request.param, tok)


def _ref_prompt(renderer, tok, msgs):
    kwargs = {"enable_thinking": False} if renderer.name == "qwen3_disable_thinking" else {}
    return reference_ids(tok, msgs, generation=True, **kwargs)


@pytest.mark.parametrize("msgs", CONVERSATIONS + TOOLS, ids=CONVERSATION_IDS + ["tools0", "tools1"])
def test_generation_prompt_equals_template(renderer, tok, msgs):
    for k in range(1, len(msgs) + 1):
        if msgs[k - 1]["role"] in ("user", "tool"):
            assert renderer.build_generation_prompt(msgs[:k]) == _ref_prompt(renderer, tok, msgs[:k])


@pytest.mark.parametrize("msgs", CONVERSATIONS + TOOLS, ids=CONVERSATION_IDS + ["tools0", "tools1"])
def test_full_sequence_equals_template(renderer, tok, msgs):
    tokens, _ = renderer.build_supervised_example(msgs)
    if renderer.name == "qwen3_instruct":
        # Instruct-2507 writes no think block: the template's prompt (identical to Qwen3's for these
        # conversations) followed by the reply and its end-of-turn, tokenized as one string.
        text = template_text(tok, msgs[:-1], True) + msgs[-1]["content"] + "<|im_end|>\n"
        ref = reference_ids_of_text(tok, text)
    else:
        ref = reference_ids(tok, msgs, generation=False)
    assert tokens == ref


@pytest.mark.parametrize("msgs", THINKING, ids=["think0", "think1"])
def test_thinking_turns_equal_template(tok, msgs):
    r = get_renderer("qwen3", tok)
    assert r.build_supervised_example(msgs).tokens == reference_ids(tok, msgs, generation=False)
    assert r.build_generation_prompt(msgs[:-1]) == reference_ids(tok, msgs[:-1], generation=True)
    # earlier reasoning is dropped: no extension property
    assert not r.has_extension_property
    if len(msgs) > 3:
        prompt = r.build_generation_prompt(msgs[:-1])
        assert "greet" not in tok.decode(prompt)


def test_disable_thinking_rejects_reasoning_and_does_not_train_the_prefill(tok):
    r = get_renderer("qwen3_disable_thinking", tok)
    with pytest.raises(MessageError, match="message 1, field 'content'.*empty think block"):
        r.build_supervised_example(THINKING[0])
    msgs = CONVERSATIONS[0]
    ex = r.build_supervised_example(msgs)
    prompt = r.build_generation_prompt(msgs[:1])
    assert ex.tokens[: len(prompt)] == prompt
    assert not any(ex.weights[: len(prompt)])
    assert tok.decode([t for t, w in zip(ex.tokens, ex.weights, strict=True) if w]) == "2+2 is 4.<|im_end|>"
    with pytest.raises(MessageError, match="message 1.*use the qwen3 renderer"):
        get_renderer("qwen3_instruct", tok).build_supervised_example(THINKING[0])


def test_merge_across_header_boundary_is_trained(tok):
    r = get_renderer("qwen3", tok)
    msgs = CONVERSATIONS[CONVERSATION_IDS.index("leading_newline")]
    ex = r.build_supervised_example(msgs[:1] + [{"role": "assistant", "content": "\nhi"}], TrainOnWhat.LAST_ASSISTANT_MESSAGE)
    assert ex.tokens == reference_ids(tok, msgs[:1] + [{"role": "assistant", "content": "\nhi"}], generation=False)


def test_parse_tool_calls(tok):
    r = get_renderer("qwen3", tok)
    msgs = TOOLS[0][:2]
    ex = r.build_supervised_example(msgs)
    parsed, ok = r.parse_response([t for t, w in zip(ex.tokens, ex.weights, strict=True) if w > 0])
    assert ok and parsed.text == "Checking."
    assert [(c.name, json.loads(c.arguments)) for c in parsed.tool_calls] == [("weather", {"city": "Paris"}),
                                                                             ("weather", {"city": "Rome"})]


@pytest.mark.parametrize("msgs", control_token_conversations())
def test_control_token_text_against_template(renderer, tok, msgs):
    """Control-token text stays text (tests/renderers/test_contract.py); here: against the template."""
    ex = renderer.build_supervised_example(msgs, TrainOnWhat.ALL_MESSAGES)
    # Same characters as the template's text; the template's tokenization would make control tokens of them.
    kwargs = {"enable_thinking": False} if renderer.name == "qwen3_disable_thinking" else {}
    if any("</think>" in m["content"] for m in msgs if m["role"] == "assistant"):
        # The template re-parses "</think>" inside assistant content as a reasoning block; we keep content
        # as written (deliberate difference).
        assert msgs[-1]["content"] in tok.decode(ex.tokens)
        return
    if renderer.name == "qwen3_instruct":  # no think block: the template's prompt, the reply, its end-of-turn
        text = template_text(tok, msgs[:-1], True) + msgs[-1]["content"] + "<|im_end|>\n"
    else:
        text = template_text(tok, msgs, False, **kwargs)
    assert tok.decode(ex.tokens) == text
    ref = reference_ids_of_text(tok, text)
    qwen_controls = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "<tool_call>")
    if any(c in m["content"] for m in msgs for c in qwen_controls):
        assert sum(t in tok.added_ids for t in ref) > sum(t in tok.added_ids for t in ex.tokens)
    else:
        assert ref == ex.tokens
