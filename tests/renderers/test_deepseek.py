"""DeepSeek renderers vs the official DeepSeek-V3 and DeepSeek-V3.1 HF chat templates."""

from __future__ import annotations

import pytest

from posttrain import MessageError, TrainOnWhat, get_renderer, get_tokenizer
from tests.corpus import CONVERSATION_IDS, CONVERSATIONS, control_token_conversations
from tests.reference_hf import reference_ids, reference_ids_of_text, template_text

THINKING = [
    [{"role": "user", "content": "2+2?"},
     {"role": "assistant", "content": [{"type": "thinking", "thinking": "Add: 4."}, {"type": "text", "text": "4"}]}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"},
     {"role": "assistant", "content": [{"type": "thinking", "thinking": "\nsay bye\n"}, {"type": "text", "text": " See you."}]}],
]


@pytest.fixture(scope="module")
def v3():
    tok = get_tokenizer("posttrain:deepseek-v3")
    return tok, get_renderer("deepseekv3", tok)


@pytest.fixture(scope="module")
def v31():
    tok = get_tokenizer("posttrain:deepseek-v3.1")
    return tok, get_renderer("deepseekv3_thinking", tok)


@pytest.mark.parametrize("msgs", CONVERSATIONS, ids=CONVERSATION_IDS)
def test_v3_generation_and_full_equal_template(v3, msgs):
    tok, r = v3
    for k in range(1, len(msgs) + 1):
        if msgs[k - 1]["role"] == "user":
            assert r.build_generation_prompt(msgs[:k]) == reference_ids(tok, msgs[:k], generation=True)
    assert r.build_supervised_example(msgs).tokens == reference_ids(tok, msgs, generation=False)


def _v31_supervised_reference(tok, msgs):
    """V3.1 defines the produced turn as its thinking prompt + reasoning</think>reply<eos>."""
    last = msgs[-1]
    if isinstance(last["content"], str):
        reasoning, reply = "", last["content"]
    else:
        reasoning = "".join(p["thinking"] for p in last["content"] if p["type"] == "thinking")
        reply = "".join(p["text"] for p in last["content"] if p["type"] == "text")
    text = template_text(tok, msgs[:-1], True, thinking=True) + reasoning + "</think>" + reply + "<｜end▁of▁sentence｜>"
    return reference_ids_of_text(tok, text)


@pytest.mark.parametrize("msgs", CONVERSATIONS + THINKING, ids=CONVERSATION_IDS + ["think0", "think1"])
def test_v31_thinking_equals_template(v31, msgs):
    tok, r = v31
    for k in range(1, len(msgs) + 1):
        if msgs[k - 1]["role"] == "user":
            assert r.build_generation_prompt(msgs[:k]) == reference_ids(tok, msgs[:k], generation=True, thinking=True)
    assert r.build_supervised_example(msgs).tokens == _v31_supervised_reference(tok, msgs)


def test_v31_history_is_the_templates_history(v31):
    tok, r = v31
    msgs = CONVERSATIONS[2]
    # All but the produced turn are written exactly as the template writes a finished conversation.
    full_template = template_text(tok, msgs[:-1], False, thinking=True)
    ex = r.build_supervised_example(msgs)
    assert tok.decode(ex.tokens).startswith(full_template)
    assert not r.has_extension_property


@pytest.mark.parametrize("msgs", control_token_conversations())
def test_control_token_text_against_template(v3, msgs):
    """Control-token text stays text (tests/renderers/test_contract.py); here: against the V3 template."""
    tok, r = v3
    ex = r.build_supervised_example(msgs, TrainOnWhat.ALL_MESSAGES)
    text = template_text(tok, msgs, False)
    assert tok.decode(ex.tokens) == text  # same characters; the template's tokenization would differ
    ref = reference_ids_of_text(tok, text)
    # Where the template's tokenization differs from ours, it is only by making control tokens of text.
    if ref != ex.tokens:
        assert sum(t in tok.added_ids for t in ref) > sum(t in tok.added_ids for t in ex.tokens)


def test_unsupported_shapes_name_the_message(v3, v31):
    _, r = v3
    with pytest.raises(MessageError, match="message 2, field 'role'.*system messages"):
        r.build_supervised_example([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                                    {"role": "system", "content": "late"}, {"role": "user", "content": "c"},
                                    {"role": "assistant", "content": "d"}])
    with pytest.raises(MessageError, match="message 1, field 'tool_calls'"):
        r.build_supervised_example([{"role": "user", "content": "a"}, {"role": "assistant", "content": "",
                                    "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}])
    with pytest.raises(MessageError, match="message 1, field 'content'.*use deepseekv3_thinking"):
        r.build_supervised_example(THINKING[0])


@pytest.mark.parametrize("msgs", CONVERSATIONS, ids=CONVERSATION_IDS)
def test_v31_disable_thinking_equals_template(msgs):
    tok = get_tokenizer("posttrain:deepseek-v3.1")
    r = get_renderer("deepseekv3_disable_thinking", tok)
    for k in range(1, len(msgs) + 1):
        if msgs[k - 1]["role"] == "user":
            assert r.build_generation_prompt(msgs[:k]) == reference_ids(tok, msgs[:k], generation=True, thinking=False)
    assert r.build_supervised_example(msgs).tokens == reference_ids(tok, msgs, generation=False, thinking=False)
    assert r.has_extension_property
    ex = r.build_supervised_example(msgs)
    prompt = r.build_generation_prompt(msgs[:-1])
    assert ex.tokens[: len(prompt)] == prompt and not any(ex.weights[: len(prompt)])
