"""Qwen3 chat formats, token-exact against Qwen3's HF chat template (``tokenizer_config.json`` of
Qwen3) applied with ``transformers`` and tokenized with Qwen3's ``tokenizer.json``.

Layout::

    <|im_start|>system\\n{system}<|im_end|>\\n
    <|im_start|>user\\n{content}<|im_end|>\\n
    <|im_start|>assistant\\n<think>\\n{reasoning}\\n</think>\\n\\n{content}<|im_end|>\\n   (after the last user query)
    <|im_start|>assistant\\n{content}<|im_end|>\\n                                     (earlier turns: reasoning dropped)
    <|im_start|>user\\n<tool_response>\\n{result}\\n</tool_response><|im_end|>\\n          (consecutive tool messages share one turn)

Tool calls follow the content as ``<tool_call>\\n{"name": ..., "arguments": ...}\\n</tool_call>``.
``<|im_start|>``, ``<|im_end|>``, ``<think>``, ``</think>``, ``<tool_call>``, ``<tool_response>`` and their
closers are placed by id. Text between two of them is encoded as one string, as the template's
tokenization does (``merge_text_runs``), so ``"assistant\\n"`` followed by content starting with ``"\\n"``
merges exactly as in the reference.

Deliberate differences from the template: message text is never turned into control tokens
(the template's tokenization would make ``<think>`` inside a user message the ``<think>`` token), and
reasoning is taken from thinking parts only — a ``</think>`` string inside content stays content.

* ``qwen3`` — thinking. No extension property: reasoning of turns before the last user query is dropped.
* ``qwen3_disable_thinking`` — the template's ``enable_thinking=False``: the generation prompt ends with an
  empty ``<think>\\n\\n</think>\\n\\n`` block, which supervised examples keep as (untrained) prompt.
* ``qwen3_instruct`` — Qwen3 instruct-2507 style: no think block at all; has the extension property.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import ClassVar

from posttrain.errors import MessageError
from posttrain.messages import Message, ToolCall
from posttrain.renderers.base import Piece, RenderContext, RenderedMessage, Renderer, Special, Text

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
THINK, END_THINK = "<think>", "</think>"
TOOL_CALL, END_TOOL_CALL = "<tool_call>", "</tool_call>"
TOOL_RESPONSE, END_TOOL_RESPONSE = "<tool_response>", "</tool_response>"


def last_query_index(messages: Sequence[Message]) -> int:
    """The template's ``last_query_index``: the last user message that is not a wrapped tool response."""
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if m.role == "user" and not (m.text.startswith(TOOL_RESPONSE) and m.text.endswith(END_TOOL_RESPONSE)):
            return i
    return len(messages) - 1


def tool_call_pieces(calls: Sequence[ToolCall], after_content: bool) -> list[Piece]:
    pieces: list[Piece] = []
    for j, call in enumerate(calls):
        if j > 0 or after_content:
            pieces.append(Text("\n"))
        pieces += [Special(TOOL_CALL), Text(f'\n{{"name": "{call.name}", "arguments": ', content=True),
                   Text(call.arguments, content=True), Text("}\n"), Special(END_TOOL_CALL)]
    return pieces


class Qwen3Renderer(Renderer):
    name = "qwen3"
    control_tokens = (IM_START, IM_END, THINK, END_THINK, TOOL_CALL, END_TOOL_CALL, TOOL_RESPONSE, END_TOOL_RESPONSE)
    merge_text_runs = True
    has_extension_property = False
    #: think block in assistant turns after the last user query
    thinking: ClassVar[bool] = True
    #: generation prompt pre-fills an empty think block (enable_thinking=False)
    prefill_empty_think: ClassVar[bool] = False

    def _turn(self, role: str) -> list[Piece]:
        return [Special(IM_START), Text(role + "\n")]

    def check_messages(self, messages: list[Message]) -> None:
        for i, m in enumerate(messages):
            if m.thinking is not None and m.role != "assistant":
                raise MessageError("only assistant messages can have a thinking part", message_index=i, field="content")
            if m.thinking and not self.thinking:
                raise MessageError(f"{self.name} renders no reasoning; use the qwen3 renderer for thinking turns",
                                   message_index=i, field="content")

    def render_message(self, ctx: RenderContext) -> RenderedMessage:
        m = ctx.message
        end: list[Piece] = [Special(IM_END)]
        if m.role in ("system", "user", "developer"):
            return RenderedMessage(self._turn(m.role), [Text(m.text, content=True), *end], suffix=[Text("\n")])
        if m.role == "tool":
            msgs, i = ctx.messages, ctx.idx
            first = i == 0 or msgs[i - 1].role != "tool"
            last = i == len(msgs) - 1 or msgs[i + 1].role != "tool"
            header: list[Piece] = [Special(IM_START), Text("user")] if first else []
            output: list[Piece] = [Text("\n"), Special(TOOL_RESPONSE), Text("\n"), Text(m.text, content=True),
                                   Text("\n"), Special(END_TOOL_RESPONSE)]
            return RenderedMessage(header, output + (end if last else []), suffix=[Text("\n")] if last else [])
        return self._assistant(ctx)

    def _assistant(self, ctx: RenderContext) -> RenderedMessage:
        m = ctx.message
        header = self._turn("assistant")
        content = m.text
        reasoning = m.thinking or ""
        output: list[Piece] = []
        if self.thinking and ctx.idx > last_query_index(ctx.messages) and (ctx.is_last or reasoning):
            think: list[Piece] = [Special(THINK), Text("\n"), Text(reasoning.strip("\n"), content=True), Text("\n"),
                     Special(END_THINK), Text("\n\n")]
            if self.prefill_empty_think and reasoning:
                raise MessageError(
                    f"{self.name} prompts with an empty think block (thinking off), so this turn's reasoning "
                    "would be trained after the model was told not to reason; use qwen3 or drop the reasoning",
                    message_index=ctx.idx, field="content")
            if self.prefill_empty_think:
                header += think  # given by the generation prompt, so never trained
            else:
                output += think
            content = content.lstrip("\n")
        output.append(Text(content, content=True))
        output += tool_call_pieces(m.tool_calls, after_content=bool(content))
        output.append(Special(IM_END))
        return RenderedMessage(header, output, suffix=[Text("\n")])

    def generation_header(self, role: str, ctx: RenderContext) -> list[Piece]:
        pieces = self._turn(role)
        if role == "assistant" and self.prefill_empty_think:
            pieces += [Special(THINK), Text("\n\n"), Special(END_THINK), Text("\n\n")]
        return pieces

    def get_stop_sequences(self) -> list[int]:
        return [self.special_id(IM_END)]

    def parse_response(self, tokens: Sequence[int]) -> tuple[Message, bool]:
        toks, ended = self.cut_at_stop(tokens)
        think_id, end_think_id = self.special_id(THINK), self.special_id(END_THINK)
        thinking: str | None = None
        if end_think_id in toks:
            cut = toks.index(end_think_id)
            inner = toks[1:cut] if toks and toks[0] == think_id else toks[:cut]
            thinking = self.tokenizer.decode(inner).strip("\n")
            toks = toks[cut + 1 :]
        text = self.tokenizer.decode(toks)
        if thinking is not None:
            text = text.lstrip("\n")
        calls, text, ok = _split_tool_calls(text)
        content: str | tuple = text
        if thinking is not None and self.thinking:
            from posttrain.messages import TextPart, ThinkingPart

            content = (ThinkingPart(thinking), TextPart(text))
        return Message(role="assistant", content=content, tool_calls=calls), ended and ok


def _split_tool_calls(text: str) -> tuple[tuple[ToolCall, ...], str, bool]:
    """Cut ``<tool_call>{...}</tool_call>`` blocks off the end of a reply, keeping argument text as written."""
    if TOOL_CALL not in text:
        return (), text, True
    head, *blocks = text.split(TOOL_CALL)
    calls = []
    ok = True
    prefix = '\n{"name": "'
    for block in blocks:
        body = block.split(END_TOOL_CALL)[0]
        try:
            name, rest = body[len(prefix):].split('", "arguments": ', 1)
            if not body.startswith(prefix) or not rest.endswith("}\n"):
                raise ValueError(body)
            arguments = rest[: -len("}\n")]
            json.loads(arguments)
            calls.append(ToolCall(name=name, arguments=arguments))
        except ValueError:
            ok = False
    return tuple(calls), head.removesuffix("\n") if calls else head, ok


class Qwen3DisableThinkingRenderer(Qwen3Renderer):
    name = "qwen3_disable_thinking"
    prefill_empty_think = True


class Qwen3InstructRenderer(Qwen3Renderer):
    name = "qwen3_instruct"
    has_extension_property = True
    thinking = False
