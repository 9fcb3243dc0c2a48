"""gpt-oss (Harmony) chat format, token-exact against ``openai-harmony``.

Layout (no BOS, no newlines between messages)::

    <|start|>system<|message|>{model identity, knowledge cutoff, date, reasoning effort, channels}<|end|>
    <|start|>developer<|message|># Instructions\\n\\n{system message}<|end|>
    <|start|>user<|message|>{content}<|end|>
    <|start|>assistant<|channel|>analysis<|message|>{reasoning}<|end|>
    <|start|>assistant<|channel|>final<|message|>{content}<|end|>     (<|return|> on the produced turn)
    <|start|>assistant                                                 (generation prompt)

* ``gpt_oss_no_sysprompt`` writes no system message; ``gpt_oss_{low,medium,high}_reasoning`` write
  Harmony's system message with that reasoning effort. ``current_date`` (default: none, so prompts are
  deterministic) and ``knowledge_cutoff`` are constructor arguments.
* A ``system`` message becomes Harmony's developer message (``# Instructions``).
* Earlier reasoning is dropped as Harmony drops it: analysis that precedes the conversation's first
  final message is not rendered. The produced (last) assistant turn always keeps its reasoning, so a
  single-turn example trains it (Harmony's ``render_conversation_for_training`` would drop it). No
  extension property.
* Tool calls are not rendered by this renderer yet (an error names the message).
"""

from __future__ import annotations

from collections.abc import Sequence

from posttrain.errors import MessageError
from posttrain.messages import ContentPart, Message, TextPart, ThinkingPart
from posttrain.renderers.base import (
    Piece,
    RenderContext,
    RenderedMessage,
    Renderer,
    Special,
    Text,
    reject_tools,
)

START, END, MESSAGE, CHANNEL = "<|start|>", "<|end|>", "<|message|>", "<|channel|>"
RETURN, CALL = "<|return|>", "<|call|>"
MODEL_IDENTITY = "You are ChatGPT, a large language model trained by OpenAI."
EFFORTS = ("low", "medium", "high")


def system_text(reasoning_effort: str, knowledge_cutoff: str, current_date: str | None) -> str:
    lines = [MODEL_IDENTITY, f"Knowledge cutoff: {knowledge_cutoff}"]
    if current_date is not None:
        lines.append(f"Current date: {current_date}")
    return ("\n".join(lines) + f"\n\nReasoning: {reasoning_effort}\n\n"
            "# Valid channels: analysis, commentary, final. Channel must be included for every message.")


class GptOssRenderer(Renderer):
    name = "gpt_oss"
    merge_text_runs = True
    has_extension_property = False

    def __init__(self, tokenizer: object, reasoning_effort: str | None = None, current_date: str | None = None,
                 knowledge_cutoff: str = "2024-06"):
        super().__init__(tokenizer)
        if reasoning_effort is not None and reasoning_effort not in EFFORTS:
            raise ValueError(f"reasoning_effort must be one of {', '.join(EFFORTS)} or None, got {reasoning_effort!r}")
        self.reasoning_effort = reasoning_effort
        self.current_date = current_date
        self.knowledge_cutoff = knowledge_cutoff
        self.name = f"gpt_oss_{reasoning_effort}_reasoning" if reasoning_effort else "gpt_oss_no_sysprompt"

    def bos_pieces(self) -> list[Piece]:
        if self.reasoning_effort is None:
            return []
        text = system_text(self.reasoning_effort, self.knowledge_cutoff, self.current_date)
        return [Special(START), Text("system"), Special(MESSAGE), Text(text), Special(END)]

    def check_messages(self, messages: list[Message]) -> None:
        reject_tools(messages, self.name)
        for i, m in enumerate(messages):
            if m.thinking is not None and m.role != "assistant":
                raise MessageError("only assistant messages can have a thinking part", message_index=i,
                                   field="content")

    def render_message(self, ctx: RenderContext) -> RenderedMessage:
        m = ctx.message
        if m.role == "assistant":
            return self._assistant(ctx)
        role, text = m.role, m.text
        if role == "system":
            role, text = "developer", None
        header: list[Piece] = [Special(START), Text(role)]
        body = [Text("# Instructions\n\n"), Text(m.text, content=True)] if text is None else [Text(text, content=True)]
        return RenderedMessage(header, [Special(MESSAGE), *body, Special(END)])

    def _assistant(self, ctx: RenderContext) -> RenderedMessage:
        m = ctx.message
        first_assistant = next(i for i, x in enumerate(ctx.messages) if x.role == "assistant")
        keep_analysis = ctx.is_last or ctx.idx > first_assistant
        output: list[Piece] = []
        if m.thinking is not None and keep_analysis:
            output += [Special(CHANNEL), Text("analysis"), Special(MESSAGE), Text(m.thinking, content=True),
                       Special(END), Special(START), Text("assistant")]
        output += [Special(CHANNEL), Text("final"), Special(MESSAGE), Text(m.text, content=True),
                   Special(RETURN if ctx.is_last else END)]
        return RenderedMessage([Special(START), Text("assistant")], output)

    def generation_header(self, role: str, ctx: RenderContext) -> list[Piece]:
        return [Special(START), Text(role)]

    def get_stop_sequences(self) -> list[int]:
        return [self.special_id(RETURN), self.special_id(CALL)]

    def parse_response(self, tokens: Sequence[int]) -> tuple[Message, bool]:
        """Split ``<|channel|>X<|message|>...<|end|><|start|>assistant...`` into analysis and final."""
        ids = {name: self.special_id(name) for name in (START, END, MESSAGE, CHANNEL, RETURN, CALL)}
        toks = list(tokens)
        stop = next((i for i, t in enumerate(toks) if t in (ids[RETURN], ids[CALL])), None)
        body = toks if stop is None else toks[:stop]
        segments: list[tuple[str, str]] = []
        current: list[int] = []
        for t in [*body, ids[END]]:
            if t == ids[END]:
                if current:
                    head, _, text = _split_at(current, ids[MESSAGE])
                    channel = self.tokenizer.decode(_after(head, ids[CHANNEL])).strip()
                    segments.append((channel, self.tokenizer.decode(text)))
                current = []
            elif t == ids[START]:
                current = []
            else:
                current.append(t)
        thinking = "".join(text for ch, text in segments if ch == "analysis")
        final = "".join(text for ch, text in segments if ch == "final")
        well_formed = stop is not None and bool(segments) and all(ch in ("analysis", "final") for ch, _ in segments)
        content: str | tuple[ContentPart, ...] = final
        if any(ch == "analysis" for ch, _ in segments):
            content = (ThinkingPart(thinking), TextPart(final))
        return Message(role="assistant", content=content), well_formed


def _split_at(tokens: list[int], sep: int) -> tuple[list[int], bool, list[int]]:
    if sep not in tokens:
        return tokens, False, []
    i = tokens.index(sep)
    return tokens[:i], True, tokens[i + 1 :]


def _after(tokens: list[int], marker: int) -> list[int]:
    return tokens[tokens.index(marker) + 1 :] if marker in tokens else []
