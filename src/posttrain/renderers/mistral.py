"""Mistral instruct formats, token-exact against ``mistral-common``'s ``MistralTokenizer``
(``encode_chat_completion``) with its SentencePiece tokenizers.

* ``mistral`` — tokenizer v7 (``[SYSTEM_PROMPT]``)::

      <s>[SYSTEM_PROMPT]{system}[/SYSTEM_PROMPT][INST]{user}[/INST]{reply}</s>[INST]{user}[/INST]

* ``mistral_v3`` — tokenizer v3: no system token; the system prompts (joined by ``"\\n\\n"``) are
  prepended to the **last** user message, ``[INST]{system}\\n\\n{user}[/INST]``. Adding a turn moves
  the system prompt, so v3 lacks the extension property; v7 has it.

Each text is encoded on its own with SentencePiece's dummy-prefix space, as mistral-common does
(``merge_text_runs = False``). Replies lose trailing spaces (mistral-common's ``rstrip(" ")``). The
generation prompt ends with ``[/INST]``. mistral-common rejects an empty reply; so does posttrain,
naming the message. Tool calls are not rendered by these renderers yet.
"""

from __future__ import annotations

from typing import ClassVar

from posttrain.errors import MessageError
from posttrain.messages import Message
from posttrain.renderers.base import (
    Piece,
    RenderContext,
    RenderedMessage,
    Renderer,
    Special,
    Text,
    reject_tools,
    text_content,
)

BOS, EOS = "<s>", "</s>"
INST, END_INST = "[INST]", "[/INST]"
SYSTEM, END_SYSTEM = "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]"


class MistralRenderer(Renderer):
    name = "mistral"
    control_tokens: ClassVar[tuple[str, ...]] = (BOS, EOS, INST, END_INST, SYSTEM, END_SYSTEM)
    merge_text_runs = False
    has_extension_property = True
    system_token: ClassVar[bool] = True

    def bos_pieces(self) -> list[Piece]:
        return [Special(BOS)]

    def check_messages(self, messages: list[Message]) -> None:
        reject_tools(messages, self.name)
        for i, m in enumerate(messages):
            if m.role == "assistant" and not m.text:
                raise MessageError("Mistral formats need a non-empty assistant reply (mistral-common rejects it)",
                                   message_index=i, field="content")
            if i > 0 and m.role == messages[i - 1].role and m.role in ("user", "assistant"):
                raise MessageError(f"two {m.role} messages in a row; Mistral formats alternate user and assistant",
                                   message_index=i, field="role")

    def render_message(self, ctx: RenderContext) -> RenderedMessage:
        m = ctx.message
        if m.role in ("system", "developer"):
            if not self.system_token:
                return RenderedMessage([], [])  # v3: folded into the last user message
            return RenderedMessage([], [Special(SYSTEM), Text(text_content(ctx, self.name), content=True),
                                        Special(END_SYSTEM)])
        if m.role == "user":
            return RenderedMessage([], [Special(INST), Text(self._user_text(ctx), content=True), Special(END_INST)])
        return RenderedMessage([], [Text(text_content(ctx, self.name).rstrip(" "), content=True), Special(EOS)])

    def _user_text(self, ctx: RenderContext) -> str:
        text = text_content(ctx, self.name)
        if self.system_token or ctx.idx != ctx.last_user_index:
            return text
        systems = [m.text for m in ctx.messages if m.role in ("system", "developer") and m.text]
        return "\n\n".join([*systems, text]) if systems else text

    def generation_header(self, role: str, ctx: RenderContext) -> list[Piece]:
        if role != "assistant":
            raise MessageError(f"{self.name} can only open an assistant turn, not {role!r}")
        return []

    def get_stop_sequences(self) -> list[int]:
        return [self.special_id(EOS)]


class MistralV3Renderer(MistralRenderer):
    name = "mistral_v3"
    has_extension_property = False
    system_token = False
    control_tokens = (BOS, EOS, INST, END_INST)
