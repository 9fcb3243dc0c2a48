"""Llama 3 renderer vs Meta's official encoder (llama-models ChatFormat), token for token."""

from __future__ import annotations

import json

import pytest
from llama_models.datatypes import RawMessage, ToolPromptFormat
from llama_models.datatypes import ToolCall as MetaToolCall

from posttrain import RendererError, TrainOnWhat, get_renderer
from posttrain.errors import MessageError
from tests.corpus import CONTROL_STRINGS, CONVERSATION_IDS, CONVERSATIONS, control_token_conversations


@pytest.fixture(scope="module")
def renderer(llama3_tokenizer):
    return get_renderer("llama3", llama3_tokenizer)


def meta_messages(msgs: list[dict]) -> list[RawMessage]:
    out = []
    for m in msgs:
        calls = [
            MetaToolCall(call_id=f"c{i}", tool_name=tc["function"]["name"], arguments=json.loads(tc["function"]["arguments"]))
            for i, tc in enumerate(m.get("tool_calls", []))
        ]
        out.append(RawMessage(role=m["role"], content=m["content"], tool_calls=calls))
    return out


def meta_dialog(cf, msgs: list[dict]) -> list[int]:
    """encode_dialog_prompt ends with the assistant header; that is the generation prompt."""
    return cf.encode_dialog_prompt(meta_messages(msgs)).tokens


def meta_header_len(cf, role: str) -> int:
    return len(cf._encode_header(role))


def meta_message(cf, msg: dict) -> list[int]:
    return cf.encode_message(meta_messages([msg])[0], ToolPromptFormat.json)[0]


LONG_RUNS = [
    [{"role": "user", "content": "x" * 60_000}, {"role": "assistant", "content": "ok " + "y" * 26_000 + " end"}],
    [{"role": "user", "content": "a" + " " * 30_000 + "b"}, {"role": "assistant", "content": "\n" * 25_001}],
]
ALL = CONVERSATIONS + control_token_conversations() + LONG_RUNS
ALL_IDS = CONVERSATION_IDS + [f"control{i}" for i in range(len(control_token_conversations()))] + ["long_run0", "long_run1"]


@pytest.mark.parametrize("msgs", ALL, ids=ALL_IDS)
def test_full_conversation_equals_meta(renderer, meta_chat_format, msgs):
    ref = meta_dialog(meta_chat_format, msgs)
    tokens, weights = renderer.build_supervised_example(msgs)
    # Meta's dialog prompt = our full conversation + the assistant header that opens the next turn.
    assert tokens == ref[: -meta_header_len(meta_chat_format, "assistant")]
    assert len(weights) == len(tokens)


@pytest.mark.parametrize("msgs", ALL, ids=ALL_IDS)
def test_generation_prompt_equals_meta(renderer, meta_chat_format, msgs):
    prefix = msgs[:-1]
    assert renderer.build_generation_prompt(prefix) == meta_dialog(meta_chat_format, prefix)
    assert renderer.build_generation_prompt(msgs) == meta_dialog(meta_chat_format, msgs)


@pytest.mark.parametrize("msgs", CONVERSATIONS, ids=CONVERSATION_IDS)
def test_last_assistant_weights_cover_exactly_its_output(renderer, meta_chat_format, msgs):
    ref_last = meta_message(meta_chat_format, msgs[-1])
    n_output = len(ref_last) - meta_header_len(meta_chat_format, "assistant")
    tokens, weights = renderer.build_supervised_example(msgs, TrainOnWhat.LAST_ASSISTANT_MESSAGE)
    assert weights == [0.0] * (len(tokens) - n_output) + [1.0] * n_output
    assert tokens[-1] == meta_chat_format.tokenizer.special_tokens["<|eot_id|>"]


def _expected_weights(cf, msgs, trained_roles=None, trained_idx=None, headers=False):
    weights = [0.0]  # BOS
    for i, m in enumerate(msgs):
        toks = meta_message(cf, m)
        h = meta_header_len(cf, m["role"])
        on = (trained_idx is not None and i in trained_idx) or (trained_roles is not None and m["role"] in trained_roles)
        weights += [1.0 if headers else 0.0] * h + [1.0 if on else 0.0] * (len(toks) - h)
    return weights


def test_train_on_what_modes(renderer, meta_chat_format):
    msgs = CONVERSATIONS[2]  # multi-turn, no system
    sys_msgs = CONVERSATIONS[1]  # with a system prompt
    cf = meta_chat_format
    _, w = renderer.build_supervised_example(msgs, TrainOnWhat.ALL_ASSISTANT_MESSAGES)
    assert w == _expected_weights(cf, msgs, trained_roles={"assistant"})
    _, w = renderer.build_supervised_example(sys_msgs, TrainOnWhat.ALL_USER_AND_SYSTEM_MESSAGES)
    assert w == _expected_weights(cf, sys_msgs, trained_roles={"user", "system"})
    _, w = renderer.build_supervised_example(msgs, TrainOnWhat.ALL_MESSAGES)
    assert w == _expected_weights(cf, msgs, trained_roles={"user", "assistant"})
    _, w = renderer.build_supervised_example(msgs, TrainOnWhat.ALL_TOKENS)
    assert w == _expected_weights(cf, msgs, trained_roles={"user", "assistant"}, headers=True)
    custom = [dict(m, trainable=(i == 1)) for i, m in enumerate(msgs)]
    _, w = renderer.build_supervised_example(custom, TrainOnWhat.CUSTOMIZED)
    assert w == _expected_weights(cf, msgs, trained_idx={1})
    _, w = renderer.build_supervised_example(msgs, "last_assistant_turn")
    assert w == _expected_weights(cf, msgs, trained_idx={len(msgs) - 1})


def test_bos_exactly_once(renderer, llama3_tokenizer):
    bos = llama3_tokenizer.token_id("<|begin_of_text|>")
    for msgs in ALL[:10]:
        tokens, _ = renderer.build_supervised_example(msgs)
        assert tokens[0] == bos and tokens.count(bos) == 1
        prompt = renderer.build_generation_prompt(msgs[:-1])
        assert prompt[0] == bos and prompt.count(bos) == 1


def test_mode_that_trains_nothing_is_an_error(renderer):
    with pytest.raises(RendererError, match="last_assistant_message trains no token.*roles: user"):
        renderer.build_supervised_example([{"role": "user", "content": "hi"}])
    with pytest.raises(RendererError, match="trains no token"):
        renderer.build_supervised_example(
            [{"role": "user", "content": "a", "trainable": False}, {"role": "assistant", "content": "b", "trainable": False}],
            TrainOnWhat.CUSTOMIZED,
        )


def test_customized_needs_flags_on_every_message(renderer):
    msgs = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "trainable": True}]
    with pytest.raises(MessageError, match="message 0, field 'trainable'"):
        renderer.build_supervised_example(msgs, TrainOnWhat.CUSTOMIZED)
    with pytest.raises(MessageError, match="message 1, field 'trainable'.*only used with"):
        renderer.build_supervised_example(msgs, TrainOnWhat.LAST_ASSISTANT_MESSAGE)


def test_thinking_part_is_rejected_with_index(renderer):
    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm"}]}]
    with pytest.raises(MessageError, match="message 1, field 'content'.*no reasoning"):
        renderer.build_supervised_example(msgs)


def test_tool_calls_equal_meta(renderer, meta_chat_format):
    msgs = [
        {"role": "system", "content": "You can call tools."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "c"}'}}]},
        {"role": "tool", "content": '{"temp": 21}'},
        {"role": "assistant", "content": "It is 21°C in Paris."},
    ]
    tokens, _ = renderer.build_supervised_example(msgs)
    ref = meta_dialog(meta_chat_format, msgs)
    assert tokens == ref[: -meta_header_len(meta_chat_format, "assistant")]
    assert renderer.build_generation_prompt(msgs[:2]) == meta_dialog(meta_chat_format, msgs[:2])
    # ipython header for tool results, as Meta writes it
    assert "<|start_header_id|>ipython<|end_header_id|>" in renderer.tokenizer.decode(tokens)
    # the tool-call turn parses back into the call
    ex = renderer.build_supervised_example(msgs[:3])
    out = [t for t, w in zip(ex.tokens, ex.weights, strict=True) if w > 0]
    parsed, ok = renderer.parse_response(out)
    assert ok and parsed.tool_calls[0].name == "get_weather"
    assert json.loads(parsed.tool_calls[0].arguments) == {"city": "Paris", "unit": "c"}


def test_chunks_describe_every_token(renderer):
    ex = renderer.build_supervised_example(CONVERSATIONS[1])
    assert ex.chunks[0].kind == "bos" and ex.chunks[0].special
    covered = [i for c in ex.chunks for i in range(c.start, c.end)]
    assert covered == list(range(len(ex.tokens)))
    assert {c.message_index for c in ex.chunks} == {None, 0, 1, 2}
    for c in ex.message_chunks(2):
        assert c.kind in ("header", "output")


def test_special_ids_only_where_the_format_places_them(llama3_tokenizer):
    renderer = get_renderer("llama3", llama3_tokenizer)
    msgs = control_token_conversations()[-1]
    ex = renderer.build_supervised_example(msgs)
    specials = [t for t in ex.tokens if t in llama3_tokenizer.added_ids]
    # BOS + 3 x (start_header, end_header, eot): nothing from the control strings in the text.
    assert len(specials) == 1 + 3 * 3
    assert all(s in llama3_tokenizer.decode(ex.tokens) for s in CONTROL_STRINGS[:5])
