"""SmolLM2 Instruct chat format (ChatML), token-exact against the chat template carried in
SmolLM2-135M-Instruct's GGUF (the same template as the HF repo's ``tokenizer_config.json``)::

    <|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n   (only when the first message is not a system message)
    <|im_start|>{role}\\n{content}<|im_end|>\\n
    <|im_start|>assistant\\n                                                                               (generation prompt)

No BOS. ``<|im_start|>`` and ``<|im_end|>`` are placed by id; the text between two of them is encoded as
one string, as the template's tokenization does. The turn ends at ``<|im_end|>`` (trained with the
assistant's content); the ``"\\n"`` after it is observed, not trained.

Deliberate difference from the template: message text never becomes a control token (tokenizing the
template's output would turn ``<|im_end|>`` typed in a message into the control token).
The format has no reasoning section and no tool calls: such messages raise an error naming them.
"""

from __future__ import annotations

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

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
DEFAULT_SYSTEM_PROMPT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


class SmolLM2Renderer(Renderer):
    name = "smollm2"
    merge_text_runs = True
    has_extension_property = True
    control_tokens = (IM_START, IM_END)

    def check_messages(self, messages: list[Message]) -> None:
        reject_tools(messages, self.name)

    def _default_system(self, ctx: RenderContext) -> list[Piece]:
        if ctx.idx == 0 and ctx.messages and ctx.messages[0].role != "system":
            return [Special(IM_START), Text("system\n" + DEFAULT_SYSTEM_PROMPT), Special(IM_END), Text("\n")]
        return []

    def render_message(self, ctx: RenderContext) -> RenderedMessage:
        m = ctx.message
        header = [*self._default_system(ctx), Special(IM_START), Text(m.role + "\n")]
        output: list[Piece] = [Text(text_content(ctx, self.name), content=True), Special(IM_END)]
        return RenderedMessage(header, output, suffix=[Text("\n")])

    def generation_header(self, role: str, ctx: RenderContext) -> list[Piece]:
        # With no messages the template's loop never runs, so there is no default system prompt either.
        return [Special(IM_START), Text(role + "\n")]

    def get_stop_sequences(self) -> list[int]:
        return [self.special_id(IM_END)]
