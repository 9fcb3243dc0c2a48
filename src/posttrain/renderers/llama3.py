"""Llama 3 chat format, token-exact against Meta's ``llama_models.llama3.chat_format.ChatFormat``.

Layout (``encode_dialog_prompt``)::

    <|begin_of_text|>
    <|start_header_id|>{role}<|end_header_id|>\\n\\n{content}<|eot_id|>   (per message)
    <|start_header_id|>assistant<|end_header_id|>\\n\\n                  (generation prompt)

Meta encodes the role, the ``"\\n\\n"`` and the content as separate strings, so no token spans the
header/content boundary (``merge_text_runs = False``). The ``tool`` role is written ``ipython``.
Assistant tool calls follow the content as Meta's JSON tool-call format, each encoded on its own,
closed by ``<|eot_id|>`` (Meta's default when no stop reason is given).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from posttrain.messages import Message, ToolCall
from posttrain.renderers.base import (
    Piece,
    RenderContext,
    RenderedMessage,
    Renderer,
    Special,
    Text,
    text_content,
)

BOS = "<|begin_of_text|>"
START_HEADER = "<|start_header_id|>"
END_HEADER = "<|end_header_id|>"
EOT = "<|eot_id|>"
EOM = "<|eom_id|>"

# Meta's encoder splits text before handing it to tiktoken: 400k-character slices, then runs of at
# most 25k consecutive whitespace or non-whitespace characters. Matching it keeps very long content exact.
_MAX_ENCODE_CHARS = 400_000
_MAX_RUN_CHARS = 25_000


def _meta_slices(s: str) -> Iterator[str]:
    for i in range(0, len(s), _MAX_ENCODE_CHARS):
        part = s[i : i + _MAX_ENCODE_CHARS]
        run_len = 0
        run_space = part[0].isspace() if part else False
        start = 0
        for j, ch in enumerate(part):
            space = ch.isspace()
            if space != run_space:
                run_len, run_space = 1, space
            else:
                run_len += 1
                if run_len > _MAX_RUN_CHARS:
                    yield part[start:j]
                    start, run_len = j, 1
        yield part[start:]


def tool_call_text(call: ToolCall) -> str:
    """Meta's JSON tool-call text (``ToolUtils.encode_tool_call`` with ``ToolPromptFormat.json``)."""
    return json.dumps({"type": "function", "name": call.name, "parameters": call.arguments_json()})


class Llama3Renderer(Renderer):
    name = "llama3"
    control_tokens = (BOS, START_HEADER, END_HEADER, EOT, EOM)
    merge_text_runs = False
    has_extension_property = True

    def bos_pieces(self) -> list[Piece]:
        return [Special(BOS)]

    def _header(self, role: str) -> list[Piece]:
        return [Special(START_HEADER), Text("ipython" if role == "tool" else role), Special(END_HEADER), Text("\n\n")]

    def render_message(self, ctx: RenderContext) -> RenderedMessage:
        m = ctx.message
        output: list[Piece] = [Text(text_content(ctx, self.name), content=True)]
        output += [Text(tool_call_text(tc), content=True) for tc in m.tool_calls]
        output.append(Special(EOT))
        return RenderedMessage(header=self._header(m.role), output=output)

    def generation_header(self, role: str, ctx: RenderContext) -> list[Piece]:
        return self._header(role)

    def encode_text(self, text: str) -> list[int]:
        if len(text) <= _MAX_RUN_CHARS:
            return self.tokenizer.encode(text)
        return [t for part in _meta_slices(text) for t in self.tokenizer.encode(part)]

    def encode_texts(self, texts: list[str]) -> list[list[int]]:
        short = super().encode_texts([t if len(t) <= _MAX_RUN_CHARS else "" for t in texts])
        return [ids if len(t) <= _MAX_RUN_CHARS else self.encode_text(t) for t, ids in zip(texts, short, strict=True)]

    def get_stop_sequences(self) -> list[int]:
        return [self.special_id(EOT), self.special_id(EOM)]

    def parse_response(self, tokens: Sequence[int]) -> tuple[Message, bool]:
        body, ended = self.cut_at_stop(tokens)
        text = self.tokenizer.decode(body)
        calls: tuple[ToolCall, ...] = ()
        # A reply that is exactly Meta's JSON tool call is parsed back into a tool call.
        stripped = text.strip()
        if stripped.startswith("{") and '"type": "function"' in stripped:
            try:
                obj = json.loads(stripped)
                calls = (ToolCall(name=obj["name"], arguments=json.dumps(obj["parameters"])),)
                text = ""
            except (ValueError, KeyError, TypeError):
                calls = ()
        return Message(role="assistant", content=text, tool_calls=calls), ended
