"""Which tokens of a rendered conversation carry loss. Names and values follow tinker-cookbook."""

from __future__ import annotations

from enum import StrEnum


class TrainOnWhat(StrEnum):
    LAST_ASSISTANT_MESSAGE = "last_assistant_message"
    LAST_ASSISTANT_TURN = "last_assistant_turn"
    ALL_ASSISTANT_MESSAGES = "all_assistant_messages"
    ALL_MESSAGES = "all_messages"
    ALL_TOKENS = "all_tokens"
    ALL_USER_AND_SYSTEM_MESSAGES = "all_user_and_system_messages"
    CUSTOMIZED = "customized"

    @classmethod
    def parse(cls, value: str | TrainOnWhat) -> TrainOnWhat:
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(m.value for m in cls)
            raise ValueError(f"unknown train_on_what {value!r} (expected one of {known})") from None
