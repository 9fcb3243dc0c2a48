"""Parsing one JSON line and one conversation row, with errors that name the source and line.

Files and stdin are read by :mod:`posttrain.data.readers`."""

from __future__ import annotations

import json
from typing import Any

from posttrain.errors import InputError, MessageError
from posttrain.messages import Message, to_messages


def parse_conversation_row(row: Any, *, source: str, line: int | None) -> list[Message]:
    """Validate one ``{"messages": [...]}`` row; errors read ``source:line: message 2, field 'role': ...``."""
    if not isinstance(row, dict):
        raise InputError(f"expected a JSON object with 'messages', got {type(row).__name__}", source=source, line=line)
    if "messages" not in row:
        raise InputError(f"missing 'messages' (keys present: {', '.join(sorted(row)) or 'none'})", source=source, line=line)
    try:
        return to_messages(row["messages"])
    except MessageError as err:
        raise InputError(str(err), source=source, line=line) from err


def parse_json_line(text: str, *, source: str, line: int) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"invalid JSON: {err.msg} at column {err.colno}", source=source, line=line) from err
