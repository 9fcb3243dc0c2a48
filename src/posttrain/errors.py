"""Exception types. Every error about user data says where: file, line, message index, field."""

from __future__ import annotations


class PosttrainError(Exception):
    """Base class for posttrain errors."""


class NonFiniteError(PosttrainError, ArithmeticError):
    """A loss, gradient or metric is NaN or infinite: training diverged, and nothing built on it is kept."""


class MessageError(PosttrainError, ValueError):
    """A message in a conversation is malformed.

    ``message_index`` and ``field`` say where; ``str(err)`` reads like
    ``message 2, field 'role': unknown role 'robot' (expected one of ...)``.
    """

    def __init__(self, reason: str, *, message_index: int | None = None, field: str | None = None):
        self.reason = reason
        self.message_index = message_index
        self.field = field
        where = []
        if message_index is not None:
            where.append(f"message {message_index}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{', '.join(where)}: {reason}" if where else reason)


class InputError(PosttrainError, ValueError):
    """A row of an input source is malformed; ``source`` and ``line`` say where (line is 1-based)."""

    def __init__(self, reason: str, *, source: str | None = None, line: int | None = None):
        self.reason = reason
        self.source = source
        self.line = line
        where = source or "<input>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {reason}")


class RendererError(PosttrainError, ValueError):
    """A conversation cannot be rendered as asked (e.g. the chosen TrainOnWhat trains nothing)."""


class NothingToTrainError(RendererError):
    """Truncation at ``max_length`` leaves a datum with no trained token: it would train on nothing.

    A per-row error like any other, so ``skip_invalid`` skips and counts such rows."""


class TokenizerNotAvailableError(PosttrainError, OSError):
    """A tokenizer could not be loaded; the message says how to provide it."""
