"""Reference ids from a family's official HF chat template: apply_chat_template(tokenize=False), then
the real tokenizer.json (which turns every added token in the string into its id)."""

from __future__ import annotations

from typing import Any

from posttrain.tokenizer import Tokenizer


def hf_messages(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our message dicts → the template's shape (thinking parts → reasoning_content, arguments as text)."""
    out = []
    for m in msgs:
        d = dict(m)
        if isinstance(d.get("content"), list):
            parts = d["content"]
            d["content"] = "".join(p["text"] for p in parts if p["type"] == "text")
            thinking = [p["thinking"] for p in parts if p["type"] == "thinking"]
            if thinking:
                d["reasoning_content"] = "".join(thinking)
        out.append(d)
    return out


def template_text(tok: Tokenizer, msgs: list[dict[str, Any]], generation: bool, **kwargs: Any) -> str:
    return tok.hf_tokenizer.apply_chat_template(hf_messages(msgs), tokenize=False,
                                                add_generation_prompt=generation, **kwargs)


def reference_ids(tok: Tokenizer, msgs: list[dict[str, Any]], generation: bool, **kwargs: Any) -> list[int]:
    text = template_text(tok, msgs, generation, **kwargs)
    return tok.hf_tokenizer(text, add_special_tokens=False)["input_ids"]


def reference_ids_of_text(tok: Tokenizer, text: str) -> list[int]:
    return tok.hf_tokenizer(text, add_special_tokens=False)["input_ids"]
