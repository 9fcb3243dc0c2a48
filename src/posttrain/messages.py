"""Messages: the typed, validated form of one conversation turn.

Renderers accept plain dicts in the usual chat shape (``{"role": ..., "content": ...}``) or
:class:`Message` objects; :func:`to_messages` validates and converts, naming the message index and
field of anything malformed.
"""

from __future__ import annotations

import json
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


def _type_name(v: object) -> str:
    return "null" if v is None else type(v).__name__


def _parse_part(part: Any, index: int, j: int) -> ContentPart:
    where = f"content[{j}]"
    if not isinstance(part, Mapping):
        raise _fail(index, where, f"expected an object with 'type', got {_type_name(part)}")
    kind = part.get("type")
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise _fail(index, f"{where}.text", f"expected a string, got {_type_name(text)}")
        return TextPart(text)
    if kind == "thinking":
        thinking = part.get("thinking")
        if not isinstance(thinking, str):
            raise _fail(index, f"{where}.thinking", f"expected a string, got {_type_name(thinking)}")
        return ThinkingPart(thinking)
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
    args = fn.get("arguments", "{}")
    if isinstance(args, Mapping):
        args = json.dumps(args, ensure_ascii=False)
    elif not isinstance(args, str):
        raise _fail(index, f"{where}.function.arguments", f"expected a JSON string or object, got {_type_name(args)}")
    call_id = tc.get("id")
    if call_id is not None and not isinstance(call_id, str):
        raise _fail(index, f"{where}.id", f"expected a string, got {_type_name(call_id)}")
    return ToolCall(name=name, arguments=args, id=call_id)


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
    if "content" not in d and not tool_calls_raw:
        raise _fail(index, "content", "missing")
    raw = d.get("content")
    content: str | tuple[ContentPart, ...]
    if raw is None and tool_calls_raw:
        content = ""
    elif isinstance(raw, str):
        content = raw
    elif isinstance(raw, list | tuple):
        content = tuple(p if isinstance(p, TextPart | ThinkingPart) else _parse_part(p, index, j) for j, p in enumerate(raw))
    else:
        raise _fail(index, "content", f"expected a string or a list of parts, got {_type_name(raw)}")
    # HF-style reasoning field: fold into a leading thinking part so renderers see one shape.
    for key in ("reasoning_content", "thinking"):
        extra_thinking = d.get(key)
        if extra_thinking is None:
            continue
        if not isinstance(extra_thinking, str):
            raise _fail(index, key, f"expected a string, got {_type_name(extra_thinking)}")
        text_parts: tuple[ContentPart, ...] = (TextPart(content),) if isinstance(content, str) else content
        content = (ThinkingPart(extra_thinking), *text_parts)
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
        if v is not None and not isinstance(v, str):
            raise _fail(index, key, f"expected a string, got {_type_name(v)}")
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
