from __future__ import annotations

import pytest

from posttrain import Message, MessageError, TextPart, ThinkingPart, to_messages
from posttrain.train_on_what import TrainOnWhat


def test_valid_conversation_round_trips():
    raw = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "t"}, {"type": "text", "text": "x"}],
         "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": {"k": 1}}}]},
        {"role": "tool", "content": "r", "tool_call_id": "1"},
    ]
    msgs = to_messages(raw)
    assert msgs[1].text == "ab"
    assert msgs[2].thinking == "t" and msgs[2].text == "x"
    assert msgs[2].tool_calls[0].arguments_json() == {"k": 1}
    assert to_messages([m.to_dict() for m in msgs]) == msgs


def test_reasoning_content_field_becomes_a_thinking_part():
    (m,) = to_messages([{"role": "assistant", "content": "answer", "reasoning_content": "why"}])
    assert m.content == (ThinkingPart("why"), TextPart("answer"))


@pytest.mark.parametrize(
    ("conversation", "pattern"),
    [
        ([{"role": "robot", "content": "x"}], r"message 0, field 'role': unknown role 'robot'"),
        ([{"role": "user", "content": "x"}, {"content": "y"}], r"message 1, field 'role': missing"),
        ([{"role": "user"}], r"message 0, field 'content': missing"),
        ([{"role": "user", "content": 3}], r"message 0, field 'content': expected a string or a list of parts, got int"),
        ([{"role": "user", "content": None}], r"message 0, field 'content': expected a string .* got null"),
        ([{"role": 5, "content": "x"}], r"message 0, field 'role': expected a string, got int"),
        ([{"role": "user", "content": "x"}, {"role": "assistant", "content": [{"type": "image"}]}],
         r"message 1, field 'content\[0\]\.type': unknown part type 'image'"),
        ([{"role": "user", "content": [{"type": "text", "text": 1}]}], r"message 0, field 'content\[0\]\.text'"),
        ([{"role": "user", "content": "x", "trainable": "yes"}], r"message 0, field 'trainable': expected true or false"),
        ([{"role": "user", "content": "x", "tool_calls": [{"function": {"name": "f"}}]}],
         r"message 0, field 'tool_calls': only assistant messages"),
        ([{"role": "assistant", "content": "", "tool_calls": [{"function": {"arguments": "{}"}}]}],
         r"message 0, field 'tool_calls\[0\]\.function\.name'"),
        (["hello"], r"message 0: expected an object with 'role' and 'content', got str"),
        ([], r"at least one message"),
        ("not a list", r"must be a list of messages, got str"),
    ],
)
def test_bad_messages_name_index_and_field(conversation, pattern):
    with pytest.raises(MessageError, match=pattern):
        to_messages(conversation)


def test_message_error_carries_location():
    with pytest.raises(MessageError) as info:
        to_messages([{"role": "user", "content": "x"}, {"role": "bot", "content": "y"}])
    assert info.value.message_index == 1 and info.value.field == "role"


def test_train_on_what_values_match_tinker_cookbook():
    assert {m.name: m.value for m in TrainOnWhat} == {
        "LAST_ASSISTANT_MESSAGE": "last_assistant_message",
        "LAST_ASSISTANT_TURN": "last_assistant_turn",
        "ALL_ASSISTANT_MESSAGES": "all_assistant_messages",
        "ALL_MESSAGES": "all_messages",
        "ALL_TOKENS": "all_tokens",
        "ALL_USER_AND_SYSTEM_MESSAGES": "all_user_and_system_messages",
        "CUSTOMIZED": "customized",
    }
    with pytest.raises(ValueError, match="unknown train_on_what 'everything'"):
        TrainOnWhat.parse("everything")


def test_message_objects_are_accepted_as_is():
    m = Message(role="user", content="hi")
    assert to_messages([m])[0] is m


U = {"role": "user", "content": "q"}


@pytest.mark.parametrize(
    ("message", "pattern"),
    [
        # Tool-call arguments that are not JSON are rejected for every renderer at parsing.
        ({"role": "assistant", "content": None,
          "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{'a': 1}"}}]},
         r"^message 1, field 'tool_calls\[0\]\.function\.arguments': not valid JSON: Expecting property name"),
        ({"role": "assistant", "content": None,
          "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}, {"function": {"name": "g", "arguments": "x"}}]},
         r"^message 1, field 'tool_calls\[1\]\.function\.arguments': not valid JSON"),
        # A lone surrogate (the JSON escape "\ud800") cannot be encoded as UTF-8.
        ({"role": "assistant", "content": "ok \ud800"},
         r"^message 1, field 'content': lone surrogate U\+D800 at character 3"),
        ({"role": "assistant", "content": [{"type": "text", "text": "\udfff"}]},
         r"^message 1, field 'content\[0\]\.text': lone surrogate U\+DFFF"),
        ({"role": "assistant", "content": "a", "thinking": "x\ud83d"}, r"^message 1, field 'thinking': lone surrogate"),
        # Conflicting reasoning is an error, not a silent merge or reorder.
        ({"role": "assistant", "content": "a", "thinking": "t1", "reasoning_content": "t2"},
         r"^message 1, field 'reasoning_content': both 'thinking' and 'reasoning_content' are set"),
        ({"role": "assistant", "content": [{"type": "thinking", "thinking": "t"}, {"type": "text", "text": "a"}],
          "reasoning_content": "r"},
         r"^message 1, field 'reasoning_content': 'reasoning_content' is set and the content also has a thinking"),
        ({"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "thinking", "thinking": "t"},
                                           {"type": "text", "text": "b"}]},
         r"^message 1, field 'content\[1\]': a thinking part follows a text part"),
    ],
)
def test_message_conflicts_and_bad_strings_name_index_and_field(message, pattern):
    with pytest.raises(MessageError, match=pattern):
        to_messages([U, message])


def test_valid_tool_call_arguments_and_thinking_order_are_kept():
    (_, m) = to_messages([U, {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "t1"}, {"type": "thinking", "thinking": "t2"}, {"type": "text", "text": "a"}],
        "tool_calls": [{"function": {"name": "f", "arguments": '{"x": [1, 2]}'}}]}])
    assert m.thinking == "t1t2" and m.text == "a"
    assert m.tool_calls[0].arguments == '{"x": [1, 2]}'
