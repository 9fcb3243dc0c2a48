"""``Role: content`` format for base models (as in tinker-cookbook's role_colon)::

    <bos>User: {content}\\n\\nAssistant: {content}\\n\\n ... User:

Header (``"User:"``) and output (``" {content}\\n\\n"``) are encoded separately. The stop sequence
is ``"\\n\\nUser:"``; its ``"User:"`` tail is appended after the last assistant message only.
"""

from __future__ import annotations

from collections.abc import Sequence

from posttrain.messages import Message
from posttrain.renderers.base import (
    Piece,
    RenderContext,
    RenderedMessage,
    Renderer,
    Special,
    Text,
    text_content,
)

_STOP = "\n\nUser:"


class RoleColonRenderer(Renderer):
    name = "role_colon"
    merge_text_runs = False
    has_extension_property = True

    def bos_pieces(self) -> list[Piece]:
        bos = self.tokenizer.bos_token
        return [Special(bos)] if bos else []

    def check_messages(self, messages: list[Message]) -> None:
        for i, m in enumerate(messages):
            if m.tool_calls:
                from posttrain.errors import MessageError

                raise MessageError("role_colon has no tool-call format", message_index=i, field="tool_calls")

    def render_message(self, ctx: RenderContext) -> RenderedMessage:
        m = ctx.message
        content = text_content(ctx, self.name)
        output: list[Piece] = [Text(" "), Text(content, content=True), Text("\n\n")]
        overlap: list[Piece] = [Text("User:")] if m.role == "assistant" else []
        return RenderedMessage(header=[Text(m.role.capitalize() + ":")], output=self._joined(output), stop_overlap=overlap)

    @staticmethod
    def _joined(pieces: list[Piece]) -> list[Piece]:
        # tinker-cookbook encodes " " + content + "\n\n" as one string; keep the content flag.
        text = "".join(p.text for p in pieces if isinstance(p, Text))
        return [Text(text, content=True)]

    def generation_header(self, role: str, ctx: RenderContext) -> list[Piece]:
        return [Text(role.capitalize() + ":")]

    def get_stop_sequences(self) -> list[str]:
        return [_STOP]

    def parse_response(self, tokens: Sequence[int]) -> tuple[Message, bool]:
        toks = list(tokens)
        eos = self.tokenizer.eos_token_id
        ended_eos = bool(toks) and eos is not None and toks[-1] == eos
        if ended_eos:
            toks = toks[:-1]
        text = self.tokenizer.decode(toks)
        parts = text.split(_STOP)
        content = parts[0].removeprefix(" ").removesuffix("\n\n")
        ok = (len(parts) == 2 and not ended_eos) or (len(parts) == 1 and ended_eos)
        return Message(role="assistant", content=content), ok
