"""The renderer interface: a conversation in, tokens and per-token loss weights out.

A renderer describes each message as *pieces*: :class:`Special` control tokens, placed by id, and
:class:`Text`, encoded with :meth:`posttrain.tokenizer.Tokenizer.encode` (which never adds BOS and
never parses control tokens). The base class turns pieces into tokens, weights and a chunk map.

Two encoding policies exist, chosen per family to match its official encoder:

* ``merge_text_runs = False`` — every text piece is encoded on its own (Meta's ``ChatFormat`` encodes
  role, ``"\\n\\n"`` and content separately, so no token ever spans a header/content boundary).
* ``merge_text_runs = True`` — consecutive text pieces between two control tokens are encoded as
  one string, as a HF chat template does when it tokenizes the rendered text. A token may then span
  a boundary (content starting with ``"\\n"`` right after ``"assistant\\n"``). **Weight rule:** such a
  token is trained if any of its characters is trained, because the model must emit it to
  produce the trained text; it is attributed (in :attr:`SupervisedExample.chunks`) to the piece in
  which it starts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from posttrain.errors import MessageError, RendererError
from posttrain.messages import Message, MessageLike, to_messages
from posttrain.tokenizer import Tokenizer, as_tokenizer
from posttrain.train_on_what import TrainOnWhat


@dataclass(frozen=True, slots=True)
class Special:
    """A control token, placed by id (never produced by encoding text)."""

    token: str


@dataclass(frozen=True, slots=True)
class Text:
    """Text to encode. ``content=True`` marks text that came from a message (user data)."""

    text: str
    content: bool = False


Piece = Special | Text
ChunkKind = Literal["bos", "header", "output", "stop_overlap", "suffix", "generation_header"]


@dataclass(frozen=True)
class RenderedMessage:
    """One message as pieces: ``header`` (observed, never trained except with ALL_TOKENS),
    ``output`` (what the model produces for this turn, end-of-turn marker included),
    ``stop_overlap`` (stop-sequence tail appended only after the last message; role_colon), and
    ``suffix`` (observed text after the end-of-turn marker, such as Qwen's ``"\n"`` after ``<|im_end|>``)."""

    header: list[Piece]
    output: list[Piece]
    stop_overlap: list[Piece] = field(default_factory=list)
    suffix: list[Piece] = field(default_factory=list)


@dataclass(frozen=True)
class RenderContext:
    idx: int
    messages: Sequence[Message]
    last_user_index: int

    @property
    def is_last(self) -> bool:
        return self.idx == len(self.messages) - 1

    @property
    def message(self) -> Message:
        return self.messages[self.idx]


@dataclass(frozen=True, slots=True)
class Chunk:
    """Tokens ``[start, end)`` came from one piece of message ``message_index`` (None for BOS and
    the generation header). ``from_content`` is True when the piece is message text."""

    kind: ChunkKind
    message_index: int | None
    start: int
    end: int
    weight: float
    from_content: bool
    special: bool


@dataclass
class SupervisedExample:
    """Tokens, one weight per token, and the chunk map. Unpacks as ``tokens, weights = example``."""

    tokens: list[int]
    weights: list[float]
    chunks: list[Chunk]

    def __iter__(self) -> Iterator[Any]:
        yield self.tokens
        yield self.weights

    def __len__(self) -> int:
        return len(self.tokens)

    def message_chunks(self, message_index: int) -> list[Chunk]:
        return [c for c in self.chunks if c.message_index == message_index]

    def content_token_indices(self) -> list[int]:
        """Indices of tokens that came from message text (for control-token safety checks)."""
        return [i for c in self.chunks if c.from_content for i in range(c.start, c.end)]


@dataclass(frozen=True, slots=True)
class _Span:
    piece: Piece
    weight: float
    kind: ChunkKind
    message_index: int | None


class Renderer(ABC):
    """Base class for chat-format renderers. Subclasses implement :meth:`render_message`,
    :meth:`generation_header`, :meth:`parse_response` and :meth:`get_stop_sequences`."""

    name: str  # the registry name; a renderer configured per instance (gpt-oss effort) sets its own
    merge_text_runs: ClassVar[bool] = True
    #: True when rendering a conversation and then appending a turn only appends tokens, so one
    #: sequence can train every assistant turn with the context it was sampled in.
    has_extension_property: ClassVar[bool] = True
    #: Control tokens the format places by id. Checked against the tokenizer at construction, so a
    #: tokenizer of another family fails at once rather than with a KeyError at the first render.
    control_tokens: ClassVar[tuple[str, ...]] = ()

    def __init__(self, tokenizer: Any):
        self.tokenizer: Tokenizer = as_tokenizer(tokenizer)
        self._special_cache: dict[str, int] = {}
        self._template_cache: dict[str, list[int]] = {}
        self._check_control_tokens()

    def _check_control_tokens(self) -> None:
        missing = []
        for token in self.control_tokens:
            try:
                self.special_id(token)
            except KeyError:
                missing.append(token)
        if missing:
            raise RendererError(
                f"renderer {self.name!r} needs control token(s) {', '.join(missing)}, which tokenizer "
                f"{self.tokenizer.name!r} lacks; use a tokenizer of the renderer's model family"
            )

    # -- hooks ------------------------------------------------------------------------------------
    def bos_pieces(self) -> list[Piece]:
        return []

    @abstractmethod
    def render_message(self, ctx: RenderContext) -> RenderedMessage: ...

    @abstractmethod
    def generation_header(self, role: str, ctx: RenderContext) -> list[Piece]:
        """Pieces that open a new turn of ``role`` after the messages in ``ctx``."""

    def parse_response(self, tokens: Sequence[int]) -> tuple[Message, bool]:
        """Turn sampled tokens back into an assistant message; the bool says it ended cleanly.

        Default: the text before the first stop token. Formats with reasoning or tool calls override it."""
        body, ended = self.cut_at_stop(tokens)
        return Message(role="assistant", content=self.tokenizer.decode(body)), ended

    def cut_at_stop(self, tokens: Sequence[int]) -> tuple[list[int], bool]:
        """Tokens before the first stop token of :meth:`get_stop_sequences`, and whether one was found."""
        stops = {s for s in self.get_stop_sequences() if isinstance(s, int)}
        toks = list(tokens)
        end = next((i for i, t in enumerate(toks) if t in stops), None)
        return (toks, False) if end is None else (toks[:end], True)

    @abstractmethod
    def get_stop_sequences(self) -> list[int] | list[str]: ...

    def encode_text(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def check_messages(self, messages: list[Message]) -> None:  # noqa: B027 (optional hook)
        """Reject what this format cannot express (called before rendering)."""

    # -- public API ---------------------------------------------------------------------------------
    def build_supervised_example(
        self,
        messages: Sequence[MessageLike],
        train_on_what: TrainOnWhat | str = TrainOnWhat.LAST_ASSISTANT_MESSAGE,
    ) -> SupervisedExample:
        """Render a conversation with weights; raises when ``train_on_what`` trains no token."""
        train_on_what = TrainOnWhat.parse(train_on_what)
        msgs = to_messages(messages)
        _check_trainable_flags(msgs, train_on_what)
        self.check_messages(msgs)
        spans = self._conversation_spans(msgs, train_on_what)
        example = self._encode(spans)
        if max(example.weights[1:], default=0.0) <= 0:  # max runs in C; weights are never negative
            roles = ", ".join(m.role for m in msgs)
            raise RendererError(
                f"train_on_what={train_on_what.value} trains no token of this conversation "
                f"(roles: {roles}); choose another mode or fix the data"
            )
        return example

    def build_supervised_examples(
        self,
        messages: Sequence[MessageLike],
        train_on_what: TrainOnWhat | str = TrainOnWhat.ALL_ASSISTANT_MESSAGES,
    ) -> list[SupervisedExample]:
        """Like :meth:`build_supervised_example`, but correct for renderers without the extension
        property: one example per trained assistant message, each ending at that message, so every
        turn is trained in the context it is sampled in."""
        train_on_what = TrainOnWhat.parse(train_on_what)
        if self.has_extension_property:
            return [self.build_supervised_example(messages, train_on_what)]
        msgs = to_messages(messages)
        match train_on_what:
            case TrainOnWhat.LAST_ASSISTANT_MESSAGE:
                candidates = [len(msgs) - 1]
            case TrainOnWhat.LAST_ASSISTANT_TURN:
                candidates = list(range(_last_user_index(msgs) + 1, len(msgs)))
            case TrainOnWhat.ALL_ASSISTANT_MESSAGES:
                candidates = list(range(len(msgs)))
            case _:
                raise RendererError(
                    f"{self.name} lacks the extension property, so train_on_what={train_on_what.value} cannot be "
                    "split into one example per assistant turn"
                )
        examples = [
            self.build_supervised_example(msgs[: i + 1], TrainOnWhat.LAST_ASSISTANT_MESSAGE)
            for i in candidates
            if msgs[i].role == "assistant"
        ]
        if not examples:
            raise RendererError(f"train_on_what={train_on_what.value} trains no assistant message of this conversation")
        return examples

    def build_generation_prompt(
        self, messages: Sequence[MessageLike], role: str = "assistant"
    ) -> list[int]:
        """Tokens of the conversation followed by the header that opens a ``role`` turn."""
        return self.build_generation_example(messages, role).tokens

    def build_generation_example(
        self, messages: Sequence[MessageLike], role: str = "assistant"
    ) -> SupervisedExample:
        """:meth:`build_generation_prompt` with its chunk map (all weights zero)."""
        msgs = to_messages(messages) if messages else []
        self.check_messages(msgs)
        spans = self._conversation_spans(msgs, None)
        ctx = RenderContext(idx=len(msgs), messages=msgs, last_user_index=_last_user_index(msgs))
        spans += [_Span(p, 0.0, "generation_header", None) for p in self.generation_header(role, ctx)]
        return self._encode(spans)

    # -- machinery ----------------------------------------------------------------------------------
    def special_id(self, token: str) -> int:
        tid = self._special_cache.get(token)
        if tid is None:
            tid = self._special_cache[token] = self.tokenizer.token_id(token)
        return tid

    def output_is_trained(self, ctx: RenderContext, train_on_what: TrainOnWhat) -> bool:
        role = ctx.message.role
        match train_on_what:
            case TrainOnWhat.LAST_ASSISTANT_MESSAGE:
                return ctx.is_last and role == "assistant"
            case TrainOnWhat.LAST_ASSISTANT_TURN:
                return role == "assistant" and ctx.idx > ctx.last_user_index
            case TrainOnWhat.ALL_ASSISTANT_MESSAGES:
                return role == "assistant"
            case TrainOnWhat.ALL_MESSAGES | TrainOnWhat.ALL_TOKENS:
                return True
            case TrainOnWhat.ALL_USER_AND_SYSTEM_MESSAGES:
                return role in ("user", "system", "developer")
            case TrainOnWhat.CUSTOMIZED:
                return bool(ctx.message.trainable)
        raise RendererError(f"unknown train_on_what {train_on_what!r}")

    def _conversation_spans(self, msgs: list[Message], train_on_what: TrainOnWhat | None) -> list[_Span]:
        spans = [_Span(p, 0.0, "bos", None) for p in self.bos_pieces()]
        last_user = _last_user_index(msgs)
        for idx in range(len(msgs)):
            ctx = RenderContext(idx=idx, messages=msgs, last_user_index=last_user)
            rendered = self.render_message(ctx)
            header_w = 1.0 if train_on_what == TrainOnWhat.ALL_TOKENS else 0.0
            out_w = 1.0 if train_on_what is not None and self.output_is_trained(ctx, train_on_what) else 0.0
            spans += [_Span(p, header_w, "header", idx) for p in rendered.header]
            spans += [_Span(p, out_w, "output", idx) for p in rendered.output]
            if ctx.is_last and train_on_what is not None:
                spans += [_Span(p, out_w, "stop_overlap", idx) for p in rendered.stop_overlap]
            spans += [_Span(p, header_w, "suffix", idx) for p in rendered.suffix]
        return spans

    def encode_texts(self, texts: list[str]) -> list[list[int]]:
        """Encode many texts in one call (the tokenizer parallelizes); override with :meth:`encode_text`."""
        return self.tokenizer.encode_batch(texts)

    def _encode(self, spans: list[_Span]) -> SupervisedExample:
        units, plain, merged = self._units(spans)
        plain_ids = self.encode_texts(plain) if plain else []
        merged_enc = self.tokenizer.encode_batch_with_offsets(merged) if merged else []
        return self._emit_units(units, plain_ids, merged_enc)

    def _units(self, spans: list[_Span]) -> tuple[list[tuple[list[_Span], int]], list[str], list[str]]:
        """Pass 1: units — a control token, or text spans encoded as one string (one span each when
        merge_text_runs is off) — and the texts to encode in one batch. Template text seen before comes
        from the cache (ref -1); ref ≥ 0 indexes the single-span texts, ref ≤ -2 the merged runs."""
        units: list[tuple[list[_Span], int]] = []  # (spans, index into the batch or -1)
        plain: list[str] = []  # single-span texts: ids only
        merged: list[str] = []  # multi-span runs: ids and offsets
        i = 0
        while i < len(spans):
            if isinstance(spans[i].piece, Special):
                units.append(([spans[i]], -1))
                i += 1
                continue
            j = i + 1
            if self.merge_text_runs:
                while j < len(spans) and isinstance(spans[j].piece, Text):
                    j += 1
            run = [s for s in spans[i:j] if s.piece.text]  # type: ignore[union-attr]
            i = j
            if len(run) == 1:
                piece = run[0].piece
                if not piece.content and piece.text in self._template_cache:  # type: ignore[union-attr]
                    units.append((run, -1))
                else:
                    units.append((run, len(plain)))
                    plain.append(piece.text)  # type: ignore[union-attr]
            elif run:
                units.append((run, -2 - len(merged)))
                merged.append("".join(s.piece.text for s in run))  # type: ignore[union-attr]
        return units, plain, merged

    def _emit_units(self, units: list[tuple[list[_Span], int]], plain_ids: list[list[int]],
                    merged_enc: list[tuple[list[int], list[tuple[int, int]]]]) -> SupervisedExample:
        """Pass 2: emit tokens, weights and chunks."""
        tokens: list[int] = []
        weights: list[float] = []
        chunks: list[Chunk] = []

        def emit(span: _Span, ids: list[int], ws: list[float] | None = None) -> None:
            if not ids:
                return
            start = len(tokens)
            tokens.extend(ids)
            weights.extend(ws if ws is not None else [span.weight] * len(ids))
            p = span.piece
            chunks.append(Chunk(span.kind, span.message_index, start, len(tokens), span.weight,
                                isinstance(p, Text) and p.content, isinstance(p, Special)))

        for run, ref in units:
            piece = run[0].piece
            if isinstance(piece, Special):
                emit(run[0], [self.special_id(piece.token)])
            elif ref == -1:
                emit(run[0], self._template_cache[piece.text])
            elif ref >= 0:
                ids = plain_ids[ref]
                if not piece.content:
                    self._template_cache[piece.text] = ids
                emit(run[0], ids)
            else:
                ids, offsets = merged_enc[-2 - ref]
                self._emit_run(run, ids, offsets, emit)
        return SupervisedExample(tokens, weights, chunks)

    @staticmethod
    def _emit_run(run: list[_Span], ids: list[int], offsets: list[tuple[int, int]], emit: Any) -> None:
        """Attribute a merged run's tokens to the piece each starts in; a token straddling pieces
        takes the largest weight among them (trained if any of its characters is trained)."""
        bounds: list[int] = []
        pos = 0
        for s in run:
            bounds.append(pos)
            pos += len(s.piece.text)  # type: ignore[union-attr]
        k = 0  # piece of the current token's first character
        start_tok = 0
        ws: list[float] = []
        for t, (a, b) in enumerate(offsets):
            while k + 1 < len(run) and a >= bounds[k + 1]:
                emit(run[k], ids[start_tok:t], ws[start_tok:t])
                start_tok, k = t, k + 1
            last = k
            while last + 1 < len(run) and b > bounds[last + 1]:
                last += 1
            ws.append(max(run[x].weight for x in range(k, last + 1)) if last > k else run[k].weight)
        emit(run[k], ids[start_tok:], ws[start_tok:])


def _last_user_index(msgs: Sequence[Message]) -> int:
    return max((i for i, m in enumerate(msgs) if m.role == "user"), default=-1)


def _check_trainable_flags(msgs: list[Message], train_on_what: TrainOnWhat) -> None:
    for i, m in enumerate(msgs):
        if train_on_what == TrainOnWhat.CUSTOMIZED and m.trainable is None:
            raise MessageError("train_on_what=customized needs 'trainable' (true/false) on every message",
                               message_index=i, field="trainable")
        if train_on_what != TrainOnWhat.CUSTOMIZED and m.trainable is not None:
            raise MessageError(f"'trainable' is only used with train_on_what=customized, not {train_on_what.value}",
                               message_index=i, field="trainable")


def reject_tools(messages: Sequence[Message], renderer: str) -> None:
    """For formats whose tool calling posttrain does not render: name the first message that needs it."""
    for i, m in enumerate(messages):
        if m.role == "tool" or m.tool_calls:
            raise MessageError(f"{renderer} does not render tool calls or tool results yet", message_index=i,
                               field="tool_calls" if m.tool_calls else "role")


def text_content(ctx: RenderContext, renderer: str) -> str:
    """The message's text, rejecting thinking parts for formats that have no place for them."""
    m = ctx.message
    if m.thinking is not None:
        raise MessageError(f"the {renderer} format has no reasoning section; remove the thinking part",
                           message_index=ctx.idx, field="content")
    return m.text
