"""DeepSeek V3 chat formats.

* ``deepseekv3`` follows the **DeepSeek-V3** HF chat template (``deepseek-v3`` ``tokenizer_config.json``)::

      <｜begin▁of▁sentence｜>{system}<｜User｜>{user}<｜Assistant｜>{reply}<｜end▁of▁sentence｜>...

  The generation prompt ends with ``<｜Assistant｜>``. Nothing is dropped from history, so it has the
  extension property.

* ``deepseekv3_thinking`` follows the **DeepSeek-V3.1** template with ``thinking=True``: the
  generation prompt ends with ``<｜Assistant｜><think>``; the model writes
  ``{reasoning}</think>{reply}<｜end▁of▁sentence｜>``. Earlier assistant turns are written as the
  template writes history, ``<｜Assistant｜></think>{reply}<｜end▁of▁sentence｜>`` (reasoning dropped),
  so it lacks the extension property. The last assistant turn of a supervised example is the
  generation prompt followed by that turn's output.

* ``deepseekv3_disable_thinking`` follows the **DeepSeek-V3.1** template with ``thinking=False``: the
  prompt ends with ``<｜Assistant｜></think>`` and history is written the same way.

Both templates put every system message, joined by ``"\\n\\n"``, right after BOS; posttrain requires
system messages to come first so that each message keeps its place. Tool calls are not rendered by
these renderers (an error names the message). Message text never becomes a control token; the
V3.1 template's stripping of text before ``</think>`` in history content is not applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from posttrain.errors import MessageError
from posttrain.messages import Message, TextPart, ThinkingPart
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

BOS, EOS = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"
USER, ASSISTANT = "<｜User｜>", "<｜Assistant｜>"
THINK, END_THINK = "<think>", "</think>"


class DeepSeekV3Renderer(Renderer):
    name = "deepseekv3"
    control_tokens: ClassVar[tuple[str, ...]] = (BOS, EOS, USER, ASSISTANT)
    merge_text_runs = True
    has_extension_property = True
    thinking: ClassVar[bool] = False

    def bos_pieces(self) -> list[Piece]:
        return [Special(BOS)]

    def check_messages(self, messages: list[Message]) -> None:
        reject_tools(messages, self.name)
        seen_other = False
        for i, m in enumerate(messages):
            if m.role in ("system", "developer"):
                if seen_other:
                    raise MessageError("DeepSeek templates move system messages to the start; put them first",
                                       message_index=i, field="role")
            else:
                seen_other = True
            if m.thinking is not None and (m.role != "assistant" or not self.thinking):
                raise MessageError(f"{self.name} has no place for this message's reasoning"
                                   + ("; use deepseekv3_thinking" if m.role == "assistant" else ""),
                                   message_index=i, field="content")

    def render_message(self, ctx: RenderContext) -> RenderedMessage:
        m = ctx.message
        if m.role in ("system", "developer"):
            sep = [Text("\n\n")] if ctx.idx > 0 else []
            return RenderedMessage([], [*sep, Text(m.text, content=True)])
        if m.role == "user":
            return RenderedMessage([Special(USER)], [Text(m.text, content=True)])
        return self._assistant(ctx)

    def _assistant(self, ctx: RenderContext) -> RenderedMessage:
        return RenderedMessage([Special(ASSISTANT)], [Text(text_content(ctx, self.name), content=True), Special(EOS)])

    def generation_header(self, role: str, ctx: RenderContext) -> list[Piece]:
        if role != "assistant":
            raise MessageError(f"{self.name} can only open an assistant turn, not {role!r}")
        return [Special(ASSISTANT)]

    def get_stop_sequences(self) -> list[int]:
        return [self.special_id(EOS)]


class DeepSeekV3ThinkingRenderer(DeepSeekV3Renderer):
    name = "deepseekv3_thinking"
    has_extension_property = False
    thinking = True
    control_tokens = (BOS, EOS, USER, ASSISTANT, THINK, END_THINK)

    def _assistant(self, ctx: RenderContext) -> RenderedMessage:
        m = ctx.message
        after_user = ctx.idx > 0 and ctx.messages[ctx.idx - 1].role == "user"
        header: list[Piece] = [Special(ASSISTANT)] if after_user else []
        reply: list[Piece] = [Text(m.text, content=True), Special(EOS)]
        if ctx.is_last and after_user:
            # The turn being produced: the prompt pre-fills <think>, the model writes the rest.
            reasoning = m.thinking or ""
            return RenderedMessage([*header, Special(THINK)],
                                   [Text(reasoning, content=True), Special(END_THINK), *reply])
        end_think: list[Piece] = [Special(END_THINK)] if after_user else []
        return RenderedMessage(header, end_think + reply)

    def generation_header(self, role: str, ctx: RenderContext) -> list[Piece]:
        return [*super().generation_header(role, ctx), Special(THINK)]

    def parse_response(self, tokens: Sequence[int]) -> tuple[Message, bool]:
        body, ended = self.cut_at_stop(tokens)
        end_think = self.special_id(END_THINK)
        if end_think not in body:
            return Message(role="assistant", content=self.tokenizer.decode(body)), False
        cut = body.index(end_think)
        reasoning, reply = self.tokenizer.decode(body[:cut]), self.tokenizer.decode(body[cut + 1 :])
        return Message(role="assistant", content=(ThinkingPart(reasoning), TextPart(reply))), ended


class DeepSeekV3DisableThinkingRenderer(DeepSeekV3Renderer):
    """DeepSeek-V3.1 template with ``thinking=False``: every assistant turn after a user turn opens with
    ``<｜Assistant｜></think>``; prompt and history agree, so it has the extension property."""

    name = "deepseekv3_disable_thinking"
    control_tokens = (BOS, EOS, USER, ASSISTANT, END_THINK)

    def _assistant(self, ctx: RenderContext) -> RenderedMessage:
        after_user = ctx.idx > 0 and ctx.messages[ctx.idx - 1].role == "user"
        header: list[Piece] = [Special(ASSISTANT), Special(END_THINK)] if after_user else []
        return RenderedMessage(header, [Text(text_content(ctx, self.name), content=True), Special(EOS)])

    def generation_header(self, role: str, ctx: RenderContext) -> list[Piece]:
        return [*super().generation_header(role, ctx), Special(END_THINK)]
