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
* Tool calls are Harmony function calls: ``<|start|>assistant to=functions.NAME<|channel|>commentary
  <|constrain|>json<|message|>{arguments}<|call|>``; text beside them is a commentary preamble; tool
  results are ``<|start|>functions.NAME to=assistant<|channel|>commentary<|message|>{result}<|end|>``.
  Tool definitions (the developer message's tools namespace) are not rendered. Harmony's completion prompt
  after a tool result still shows the reasoning that led to the call, while its render of the finished
  conversation drops it; finished conversations follow the latter.
"""

from __future__ import annotations

from collections.abc import Sequence

from posttrain.errors import MessageError
from posttrain.messages import ContentPart, Message, TextPart, ThinkingPart, ToolCall
from posttrain.renderers.base import (
    Piece,
    RenderContext,
    RenderedMessage,
    Renderer,
    Special,
    Text,
)

START, END, MESSAGE, CHANNEL, CONSTRAIN = "<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|constrain|>"
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
    control_tokens = (START, END, MESSAGE, CHANNEL, CONSTRAIN, RETURN, CALL)
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
        for i, m in enumerate(messages):
            if m.thinking is not None and m.role != "assistant":
                raise MessageError("only assistant messages can have a thinking part", message_index=i,
                                   field="content")
            if m.role == "tool":
                tool_name(messages, i)  # raises when the tool cannot be named

    def render_message(self, ctx: RenderContext) -> RenderedMessage:
        m = ctx.message
        if m.role == "assistant":
            return self._assistant(ctx)
        if m.role == "tool":
            header: list[Piece] = [Special(START), Text(f"functions.{tool_name(ctx.messages, ctx.idx)} to=assistant")]
            return RenderedMessage(header, [Special(CHANNEL), Text("commentary"), Special(MESSAGE),
                                            Text(m.text, content=True), Special(END)])
        role: str = m.role
        text: str | None = m.text
        if role == "system":
            role, text = "developer", None
        header = [Special(START), Text(role)]
        body: list[Piece] = [Text("# Instructions\n\n"), Text(m.text, content=True)] if text is None else [Text(text, content=True)]
        return RenderedMessage(header, [Special(MESSAGE), *body, Special(END)])

    def _assistant(self, ctx: RenderContext) -> RenderedMessage:
        m, msgs = ctx.message, ctx.messages
        # Harmony drops analysis that precedes the conversation's first final message, when the last
        # assistant message is a final one (a message with tool calls ends in <|call|>, not a final).
        assistants = [i for i, x in enumerate(msgs) if x.role == "assistant"]
        first_final = next((i for i in assistants if not msgs[i].tool_calls), None)
        drops = not msgs[assistants[-1]].tool_calls and first_final is not None and ctx.idx <= first_final
        output: list[Piece] = []
        opened = False  # whether the pieces so far already closed one Harmony message

        def start(recipient: str = "") -> list[Piece]:
            return [Special(START), Text("assistant" + recipient)] if opened else [Text(recipient)] if recipient else []

        if m.thinking is not None and (ctx.is_last or not drops):
            output += [Special(CHANNEL), Text("analysis"), Special(MESSAGE), Text(m.thinking, content=True),
                       Special(END)]
            opened = True
        if m.tool_calls:
            if m.text:
                output += [*start(), Special(CHANNEL), Text("commentary"), Special(MESSAGE),
                           Text(m.text, content=True), Special(END)]
                opened = True
            for call in m.tool_calls:
                output += [*start(f" to=functions.{call.name}"), Special(CHANNEL), Text("commentary "),
                           Special(CONSTRAIN), Text("json"), Special(MESSAGE), Text(call.arguments, content=True),
                           Special(CALL)]
                opened = True
        else:
            output += [*start(), Special(CHANNEL), Text("final"), Special(MESSAGE), Text(m.text, content=True),
                       Special(RETURN if ctx.is_last else END)]
        return RenderedMessage([Special(START), Text("assistant")], output)

    def generation_header(self, role: str, ctx: RenderContext) -> list[Piece]:
        return [Special(START), Text(role)]

    def get_stop_sequences(self) -> list[int]:
        return [self.special_id(RETURN), self.special_id(CALL)]

    def parse_response(self, tokens: Sequence[int]) -> tuple[Message, bool]:
        """Split ``[<|start|>assistant[ to=R]]<|channel|>C[ <|constrain|>json]<|message|>TEXT<|end|>`` blocks
        into reasoning (analysis), the reply (final) and a tool call (a block with a recipient)."""
        ids = {name: self.special_id(name) for name in (START, END, MESSAGE, CHANNEL, CONSTRAIN)}
        body, ended = self.cut_at_stop(tokens)
        blocks: list[tuple[str, str, str]] = []  # (recipient, channel, text)
        current: list[int] = []
        for t in [*body, ids[END]]:
            if t == ids[END]:
                if current:
                    head, _, text = _split_at(current, ids[MESSAGE])
                    before, _, after = _split_at(head, ids[CHANNEL])
                    _, _, recipient = self.tokenizer.decode(before).partition("to=")
                    channel_toks, _, _ = _split_at(after, ids[CONSTRAIN])
                    blocks.append((recipient.strip(), self.tokenizer.decode(channel_toks).strip(),
                                   self.tokenizer.decode(text)))
                current = []
            elif t == ids[START]:
                current = []
            else:
                current.append(t)
        thinking = "".join(text for r, ch, text in blocks if ch == "analysis" and not r)
        calls = tuple(ToolCall(name=r.removeprefix("functions."), arguments=text) for r, ch, text in blocks if r)
        reply = "".join(text for r, ch, text in blocks if not r and ch in ("final", "commentary"))
        well_formed = ended and bool(blocks) and all(ch in ("analysis", "final", "commentary") for _, ch, _ in blocks)
        content: str | tuple[ContentPart, ...] = reply
        if any(ch == "analysis" for _, ch, _ in blocks):
            content = (ThinkingPart(thinking), TextPart(reply))
        return Message(role="assistant", content=content, tool_calls=calls), well_formed


def tool_name(messages: Sequence[Message], index: int) -> str:
    """The function a tool result answers: its ``name``, else the call with its ``tool_call_id``, else the
    only call of the assistant message before it."""
    m = messages[index]
    if m.name:
        return m.name
    calls = [c for x in messages[:index] if x.role == "assistant" for c in x.tool_calls]
    if m.tool_call_id is not None:
        match = [c.name for c in calls if c.id == m.tool_call_id]
        if match:
            return match[-1]
    previous = next((x for x in reversed(messages[:index]) if x.role == "assistant"), None)
    if previous is not None and len(previous.tool_calls) == 1:
        return previous.tool_calls[0].name
    raise MessageError("a tool result needs 'name' or a 'tool_call_id' matching an earlier tool call",
                       message_index=index, field="name")


def _split_at(tokens: list[int], sep: int) -> tuple[list[int], bool, list[int]]:
    if sep not in tokens:
        return tokens, False, []
    i = tokens.index(sep)
    return tokens[:i], True, tokens[i + 1 :]
