"""Chat with a model through its renderer: the conversation is rendered to the renderer's generation
prompt, the reply is generated token by token (streamed to a callback as text), cut at the renderer's
stop sequences and parsed back with ``parse_response`` — so a trained model is prompted exactly as it
was trained. Formats with a reasoning section stream it apart from the answer.

::

    session = ChatSession(sampler, renderer, temperature=0.7)
    reply = session.send("Hi!", on_text=lambda kind, text: print(text, end=""))
    session.set_system("You are terse.")   # a new conversation with that system prompt
    session.reset()                         # a new conversation
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from posttrain.errors import PosttrainError
from posttrain.messages import Message

#: ``on_text(kind, text)``: kind is "thinking" or "content"; text is what was added since the last call.
OnText = Callable[[str, str], None]


@dataclass
class Streamed:
    """The parsed reply as far as it has been shown: thinking and content printed so far."""

    thinking: str = ""
    content: str = ""

    def advance(self, message: Message, on_text: OnText) -> bool:
        """Show what ``message`` adds to what was shown; False when it does not extend it (the parse
        changed its mind, as when a reasoning block closes), so nothing is shown."""
        thinking, content = message.thinking or "", message.text
        if not (thinking.startswith(self.thinking) and content.startswith(self.content)):
            return False
        for kind, new, old in (("thinking", thinking, self.thinking), ("content", content, self.content)):
            delta = new[len(old):]
            if delta and not delta.endswith("\ufffd"):  # hold a half-decoded UTF-8 character back
                on_text(kind, delta)
                setattr(self, kind, new)
        return True


def _check_temperature(temperature: float) -> None:
    if not temperature >= 0:
        raise PosttrainError(f"temperature must be at least 0, got {temperature}")


@dataclass
class ChatSession:
    """A conversation with ``sampler``'s model (a :class:`posttrain.engine.SamplingClient`)."""

    sampler: Any
    renderer: Any
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 512
    seed: int | None = None
    system: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check_temperature(self.temperature)
        if self.max_tokens < 1:
            raise PosttrainError(f"max_tokens must be at least 1, got {self.max_tokens}")
        self.reset()

    def reset(self) -> None:
        """A new conversation (the system prompt, if set, stays)."""
        self.messages = [{"role": "system", "content": self.system}] if self.system else []

    def set_system(self, text: str) -> None:
        """A new conversation with ``text`` as its system prompt (empty: none)."""
        self.system = text or None
        self.reset()

    def send(self, text: str, on_text: OnText | None = None) -> Message:
        """Add a user turn, generate the reply (streamed to ``on_text``), add it; the parsed reply."""
        self.messages.append({"role": "user", "content": text})
        try:
            message = self._generate(on_text or (lambda kind, text: None))
        except BaseException:
            self.messages.pop()  # an interrupted or failed turn leaves the conversation as it was
            raise
        self.messages.append(message.to_dict())
        return message

    def _generate(self, on_text: OnText) -> Message:
        prompt = self.renderer.build_generation_prompt(self.messages)
        tokens = stream_tokens(self.sampler, prompt, self.renderer.get_stop_sequences(), self.temperature,
                               self.top_p, self.max_tokens, self.seed)
        return show_reply(self.renderer, prompt, tokens, on_text)


def show_reply(renderer: Any, prompt: Sequence[int], tokens: Iterable[int], on_text: OnText) -> Message:
    """Show the reply as its tokens arrive (parsed so far, reasoning apart); the final parse."""
    shown = Streamed()
    so_far: list[int] = []
    for token in tokens:
        so_far.append(token)
        shown.advance(provisional_parse(renderer, prompt, so_far), on_text)
    message = renderer.parse_response(so_far)[0]
    if not shown.advance(message, on_text):  # the parse reshaped the reply: show the final one whole
        on_text("content", "\n")
        Streamed().advance(message, on_text)
    return message


def provisional_parse(renderer: Any, prompt: Sequence[int], tokens: list[int]) -> Message:
    """``parse_response`` of a reply still being generated. While a reasoning block is open (``<think>``
    opened in the reply or at the end of the prompt, not yet closed), parse as if it closed now, so
    the reasoning streams as reasoning instead of as answer text that later turns into reasoning."""
    message: Message = renderer.parse_response(tokens)[0]
    if "</think>" not in getattr(renderer, "control_tokens", ()) or "<think>" not in renderer.control_tokens:
        return message
    think, end = renderer.special_id("<think>"), renderer.special_id("</think>")
    opened = tokens[0] == think or (bool(prompt) and prompt[-1] == think)
    if end in tokens or not opened:
        return message
    closed: Message = renderer.parse_response([*tokens, end])[0]
    return closed if closed.thinking is not None else message


def stream_tokens(sampler: Any, prompt: Sequence[int], stop: Sequence[int] | Sequence[str], temperature: float,
                  top_p: float, max_tokens: int, seed: int | None) -> Iterator[int]:
    """The sampled tokens of one reply, each as soon as it is generated (``transformers``' ``generate``
    with a streamer, in a worker thread). Stops after a stop token or when a stop string appears."""
    room = sampler.base.max_context_length - len(prompt)
    if room < 1:
        raise PosttrainError(f"the conversation ({len(prompt)} tokens) fills the model's context of "
                             f"{sampler.base.max_context_length}; /reset to start again")
    stop_ids = [s for s in stop if isinstance(s, int)]
    stop_strings = [s for s in stop if isinstance(s, str)]
    generation = _Generation(sampler.model, prompt, seed, _generate_kwargs(stop_ids, min(max_tokens, room),
                                                                           temperature, top_p))
    produced: list[int] = []
    try:
        for token in generation.tokens():
            produced.append(token)
            yield token
            if stop_strings and any(s in sampler.base.tokenizer.decode(produced[-32:]) for s in stop_strings):
                break
    finally:
        generation.stop()


def _generate_kwargs(stop_ids: list[int], max_new_tokens: int, temperature: float, top_p: float) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, do_sample=temperature > 0,
                                  eos_token_id=stop_ids or None, pad_token_id=stop_ids[0] if stop_ids else 0)
    if temperature > 0:
        kwargs.update(temperature=temperature, top_p=top_p, top_k=0)
    return kwargs


class _Generation:
    """``model.generate`` in a worker thread, its new tokens handed over through a queue (None: the end);
    :meth:`stop` ends it early (a stop string, Ctrl-C) and re-raises what the worker raised."""

    def __init__(self, model: Any, prompt: Sequence[int], seed: int | None, kwargs: dict[str, Any]):
        import queue
        import threading

        from transformers import StoppingCriteriaList

        self.queue: queue.Queue[int | None] = queue.Queue()
        self.halt = threading.Event()
        self.errors: list[BaseException] = []
        kwargs = {**kwargs, "stopping_criteria": StoppingCriteriaList([lambda *_, **__: self.halt.is_set()])}
        self.worker = threading.Thread(target=self._run, args=(model, list(prompt), seed, kwargs), daemon=True)
        self.worker.start()

    def _run(self, model: Any, prompt: list[int], seed: int | None, kwargs: dict[str, Any]) -> None:
        import torch

        try:
            if seed is not None:
                torch.manual_seed(seed)
            ids = torch.tensor([prompt], device=next(model.parameters()).device)
            with torch.no_grad():
                model.generate(ids, attention_mask=torch.ones_like(ids), streamer=_streamer(self.queue), **kwargs)
        except BaseException as err:  # re-raised in the caller's thread
            self.errors.append(err)
            self.queue.put(None)

    def tokens(self) -> Iterator[int]:
        while (token := self.queue.get()) is not None:
            yield token

    def stop(self) -> None:
        self.halt.set()
        self.worker.join()
        if self.errors:
            raise self.errors[0]


def _streamer(out: Any) -> Any:
    """A ``transformers`` streamer putting each generated token on ``out`` (the prompt, handed over
    first, is skipped), then None."""
    from transformers.generation.streamers import BaseStreamer

    class TokenStreamer(BaseStreamer):  # type: ignore[misc]
        seen_prompt = False

        def put(self, value: Any) -> None:
            if not self.seen_prompt:
                self.seen_prompt = True
                return
            for t in value.reshape(-1).tolist():
                out.put(int(t))

        def end(self) -> None:
            out.put(None)

    return TokenStreamer()


