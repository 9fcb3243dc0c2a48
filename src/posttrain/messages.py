"""Messages: the typed, validated form of one conversation turn.

Renderers accept plain dicts in the usual chat shape (``{"role": ..., "content": ...}``) or
:class:`Message` objects; :func:`to_messages` validates and converts, naming the message index and
field of anything malformed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from posttrain.errors import MessageError

Role = Literal["system", "developer", "user", "assistant", "tool"]
ROLES: tuple[str, ...] = ("system", "developer", "user", "assistant", "tool")


@dataclass(frozen=True)
class TextPart:
    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True)
class ThinkingPart:
    """Reasoning the assistant produced before its answer (``<think>`` / analysis channel)."""

    thinking: str
    type: Literal["thinking"] = "thinking"


ContentPart = TextPart | ThinkingPart


@dataclass(frozen=True)
class ToolCall:
    """A function call made by the assistant. ``arguments`` is the JSON text of the arguments."""

    name: str
    arguments: str
    id: str | None = None

    def arguments_json(self) -> Any:
        return json.loads(self.arguments)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "function", "function": {"name": self.name, "arguments": self.arguments}}
        if self.id is not None:
            out["id"] = self.id
        return out


@dataclass(frozen=True)
class Message:
    role: Role
    content: str | tuple[ContentPart, ...] = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    trainable: bool | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def text(self) -> str:
        """The visible text: the content string, or all text parts joined."""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def thinking(self) -> str | None:
        """The reasoning text, or None when the message has no thinking part."""
        if isinstance(self.content, str):
            return None
        parts = [p.thinking for p in self.content if isinstance(p, ThinkingPart)]
        return "".join(parts) if parts else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role}
        if isinstance(self.content, str):
            out["content"] = self.content
        else:
            out["content"] = [
                {"type": "text", "text": p.text} if isinstance(p, TextPart) else {"type": "thinking", "thinking": p.thinking}
                for p in self.content
            ]
        if self.tool_calls:
            out["tool_calls"] = [tc.to_dict() for tc in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            out["name"] = self.name
        if self.trainable is not None:
            out["trainable"] = self.trainable
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], index: int = 0) -> Message:
        return _message_from_dict(d, index)


_KNOWN_KEYS = {"role", "content", "tool_calls", "tool_call_id", "name", "trainable", "thinking", "reasoning_content"}


def _fail(index: int, fld: str | None, reason: str) -> MessageError:
    return MessageError(reason, message_index=index, field=fld)


# A JSON escape such as "\ud800" decodes to a lone surrogate, which no tokenizer or Arrow column
# can encode as UTF-8; caught here so the error names the message instead of a deep traceback.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_string(value: Any, index: int, fld: str, what: str = "a string") -> str:
    if not isinstance(value, str):
        raise _fail(index, fld, f"expected {what}, got {_type_name(value)}")
    if not value.isascii():  # isascii is O(1) in CPython: the common ASCII case costs nothing
        bad = _SURROGATE.search(value)
        if bad is not None:
            raise _fail(index, fld, f"lone surrogate U+{ord(bad.group()):04X} at character {bad.start()} "
                                    "(not encodable as UTF-8)")
    return value


def _type_name(v: object) -> str:
    return "null" if v is None else type(v).__name__


def _parse_part(part: Any, index: int, j: int) -> ContentPart:
    where = f"content[{j}]"
    if not isinstance(part, Mapping):
        raise _fail(index, where, f"expected an object with 'type', got {_type_name(part)}")
    kind = part.get("type")
    if kind == "text":
        return TextPart(_check_string(part.get("text"), index, f"{where}.text"))
    if kind == "thinking":
        return ThinkingPart(_check_string(part.get("thinking"), index, f"{where}.thinking"))
    raise _fail(index, f"{where}.type", f"unknown part type {kind!r} (expected 'text' or 'thinking')")


def _parse_tool_call(tc: Any, index: int, j: int) -> ToolCall:
    where = f"tool_calls[{j}]"
    if isinstance(tc, ToolCall):
        return tc
    if not isinstance(tc, Mapping):
        raise _fail(index, where, f"expected an object, got {_type_name(tc)}")
    fn = tc.get("function", tc)
    if not isinstance(fn, Mapping):
        raise _fail(index, f"{where}.function", f"expected an object, got {_type_name(fn)}")
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise _fail(index, f"{where}.function.name", f"expected a non-empty string, got {name!r}")
    _check_string(name, index, f"{where}.function.name")
    args = fn.get("arguments", "{}")
    if isinstance(args, Mapping):
        args = json.dumps(args, ensure_ascii=False)
    elif not isinstance(args, str):
        raise _fail(index, f"{where}.function.arguments", f"expected a JSON string or object, got {_type_name(args)}")
    _check_arguments(args, index, f"{where}.function.arguments")
    call_id = tc.get("id")
    if call_id is not None:
        _check_string(call_id, index, f"{where}.id")
    return ToolCall(name=name, arguments=args, id=call_id)


def _check_arguments(args: str, index: int, fld: str) -> None:
    """Arguments are trained verbatim by some formats and re-serialised by others (llama3), so text
    that is not JSON is an error here, for every renderer alike."""
    _check_string(args, index, fld)
    try:
        json.loads(args)
    except json.JSONDecodeError as err:
        raise _fail(index, fld, f"not valid JSON: {err.msg} at character {err.pos}") from None


def _check_part_order(content: tuple[ContentPart, ...], index: int) -> None:
    """Reasoning precedes the answer in every format; text before a thinking part cannot be rendered
    in its order, and merging would silently reorder it."""
    seen_text = False
    for j, part in enumerate(content):
        if isinstance(part, TextPart):
            seen_text = True
        elif seen_text:
            raise _fail(index, f"content[{j}]", "a thinking part follows a text part; reasoning must come "
                                               "before the answer (merge or reorder the parts)")


def _content_of(d: Mapping[str, Any], has_tool_calls: bool, index: int) -> str | tuple[ContentPart, ...]:
    if "content" not in d and not has_tool_calls:
        raise _fail(index, "content", "missing")
    raw = d.get("content")
    if raw is None and has_tool_calls:
        return ""
    if isinstance(raw, str):
        return _check_string(raw, index, "content")
    if isinstance(raw, list | tuple):
        parts = tuple(p if isinstance(p, TextPart | ThinkingPart) else _parse_part(p, index, j) for j, p in enumerate(raw))
        _check_part_order(parts, index)
        return parts
    raise _fail(index, "content", f"expected a string or a list of parts, got {_type_name(raw)}")


def _message_from_dict(d: Mapping[str, Any], index: int) -> Message:
    if not isinstance(d, Mapping):
        raise _fail(index, None, f"expected an object with 'role' and 'content', got {_type_name(d)}")
    if "role" not in d:
        raise _fail(index, "role", "missing")
    role = d["role"]
    if not isinstance(role, str):
        raise _fail(index, "role", f"expected a string, got {_type_name(role)}")
    if role not in ROLES:
        raise _fail(index, "role", f"unknown role {role!r} (expected one of {', '.join(ROLES)})")
    tool_calls_raw = d.get("tool_calls") or ()
    content = _fold_reasoning_field(d, _content_of(d, bool(tool_calls_raw), index), index)
    if not isinstance(tool_calls_raw, list | tuple):
        raise _fail(index, "tool_calls", f"expected a list, got {_type_name(tool_calls_raw)}")
    tool_calls = tuple(_parse_tool_call(tc, index, j) for j, tc in enumerate(tool_calls_raw))
    if tool_calls and role != "assistant":
        raise _fail(index, "tool_calls", f"only assistant messages can make tool calls, not {role!r}")
    trainable = d.get("trainable")
    if trainable is not None and not isinstance(trainable, bool):
        raise _fail(index, "trainable", f"expected true or false, got {_type_name(trainable)}")
    for key in ("tool_call_id", "name"):
        v = d.get(key)
        if v is not None:
            _check_string(v, index, key)
    extra = {k: v for k, v in d.items() if k not in _KNOWN_KEYS}
    return Message(
        role=role,  # type: ignore[arg-type]
        content=content,
        tool_calls=tool_calls,
        tool_call_id=d.get("tool_call_id"),
        name=d.get("name"),
        trainable=trainable,
        extra=extra,
    )


def _fold_reasoning_field(d: Mapping[str, Any], content: str | tuple[ContentPart, ...],
                          index: int) -> str | tuple[ContentPart, ...]:
    """HF-style reasoning field: fold into a leading thinking part so renderers see one shape. Two
    sources of reasoning for one message (both fields, or a field and a thinking part) conflict."""
    present = [key for key in ("thinking", "reasoning_content") if d.get(key) is not None]
    if not present:
        return content
    if len(present) == 2:
        raise _fail(index, "reasoning_content", "both 'thinking' and 'reasoning_content' are set; keep one")
    key = present[0]
    extra_thinking = _check_string(d[key], index, key)
    if isinstance(content, str):
        return (ThinkingPart(extra_thinking), TextPart(content))
    if any(isinstance(p, ThinkingPart) for p in content):
        raise _fail(index, key, f"'{key}' is set and the content also has a thinking part; keep one")
    return (ThinkingPart(extra_thinking), *content)


MessageLike = Message | Mapping[str, Any]


def to_messages(conversation: Sequence[MessageLike] | Any) -> list[Message]:
    """Validate a conversation and return it as :class:`Message` objects.

    Raises :class:`MessageError` naming the message index and field of the first problem.
    """
    if isinstance(conversation, str | bytes) or not isinstance(conversation, Sequence):
        raise MessageError(f"a conversation must be a list of messages, got {_type_name(conversation)}")
    if len(conversation) == 0:
        raise MessageError("a conversation must contain at least one message")
    return [m if isinstance(m, Message) else _message_from_dict(m, i) for i, m in enumerate(conversation)]
