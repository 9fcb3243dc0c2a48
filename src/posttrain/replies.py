"""Replies to a file of prompts, for quick evaluations and for comparing a run with its base model.

A prompts file is JSON lines, each one of::

    {"messages": [...]}                 a conversation; a final assistant message is the reference
    {"question": "...", "answer": "..."} a question (as a user message) and its reference answer
    {"prompt": "..."}                   a user message

Replies are generated through the renderer (its generation prompt, stop sequences and
``parse_response``), all prompts of a chunk in one batch. The output has one JSON line per prompt:
``{"line", "messages", "reference", "reply"}`` plus ``"base_reply"`` when a base model is compared.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posttrain.errors import InputError, PosttrainError
from posttrain.jsonl import parse_conversation_row, parse_json_line

BATCH = 16  # prompts per generation batch: bounded memory for any file


@dataclass(frozen=True)
class PromptRow:
    line: int
    kind: str  # "conversation" | "qa" | "prompt"
    prompt: list[dict[str, Any]]  # the messages the reply continues
    reference: str | None  # the expected reply or answer, when the row has one
    conversation: list[dict[str, Any]] | None  # prompt + reference as a conversation (for NLL)


def read_prompt_rows(path: str | Path) -> list[PromptRow]:
    """Every row of a prompts file (see the module docstring); a bad row names its file and line."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PosttrainError(f"{source}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise PosttrainError(f"{source}: cannot read ({err})") from err
    rows = [_row(parse_json_line(t, source=source, line=i), source, i)
            for i, t in enumerate(text.splitlines(), 1) if t.strip()]
    if not rows:
        raise PosttrainError(f"{source}: no prompts in the file")
    return rows


def _row(obj: Any, source: str, line: int) -> PromptRow:
    if isinstance(obj, dict) and "messages" in obj:
        msgs = [m.to_dict() for m in parse_conversation_row(obj, source=source, line=line)]
        if msgs and msgs[-1]["role"] == "assistant":
            ref = msgs[-1]["content"]
            return PromptRow(line, "conversation", msgs[:-1], ref if isinstance(ref, str) else None, msgs)
        return PromptRow(line, "conversation", msgs, None, None)
    if isinstance(obj, dict) and isinstance(obj.get("question"), str) and "answer" in obj:
        user = {"role": "user", "content": obj["question"]}
        answer = str(obj["answer"])
        return PromptRow(line, "qa", [user], answer, [user, {"role": "assistant", "content": answer}])
    if isinstance(obj, dict) and isinstance(obj.get("prompt"), str):
        return PromptRow(line, "prompt", [{"role": "user", "content": obj["prompt"]}], None, None)
    raise InputError("expected {\"messages\": [...]}, {\"question\", \"answer\"} or {\"prompt\": \"...\"}",
                     source=source, line=line)


def sampling_params(max_tokens: int, temperature: float, seed: int, stop: Any) -> Any:
    from posttrain.engine import SamplingParams

    if max_tokens < 1:
        raise PosttrainError(f"max_tokens must be at least 1, got {max_tokens}")
    if not temperature >= 0:
        raise PosttrainError(f"temperature must be at least 0, got {temperature}")
    return SamplingParams(max_tokens=max_tokens, temperature=temperature, seed=seed, stop=stop)


def generate_replies(sampler: Any, renderer: Any, prompts: Sequence[Sequence[Any]],
                     max_tokens: int = 256, temperature: float = 0.0, seed: int = 0) -> list[tuple[list[int], str]]:
    """``(tokens, parsed reply text)`` per prompt; greedy by default."""
    params = sampling_params(max_tokens, temperature, seed, renderer.get_stop_sequences())
    out: list[tuple[list[int], str]] = []
    for chunk in _chunks([renderer.build_generation_prompt(p) for p in prompts]):
        for future in sampler.sample_many(chunk, 1, params):
            tokens = list(future.result().sequences[0].tokens)
            out.append((tokens, renderer.parse_response(tokens)[0].text))
    return out


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(items), BATCH):
        yield items[i:i + BATCH]


def reply_records(rows: Sequence[PromptRow], replies: Sequence[str],
                  base_replies: Sequence[str] | None = None) -> list[dict[str, Any]]:
    records = []
    for i, row in enumerate(rows):
        record: dict[str, Any] = {"line": row.line, "messages": row.prompt, "reference": row.reference,
                                  "reply": replies[i]}
        if base_replies is not None:
            record["base_reply"] = base_replies[i]
        records.append(record)
    return records


def write_jsonl(records: Sequence[dict[str, Any]], out: Any) -> None:
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
