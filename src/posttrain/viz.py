"""``posttrain viz``: show rendered conversations with the trained tokens highlighted.

Each token is shown as its decoded text; trained tokens (weight > 0) are green, control tokens are
dimmed, and token boundaries alternate shading so merges across a header/content boundary are visible.
``--html FILE`` writes the same view as a standalone page (hover a token for its id and weight).
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Sequence

from rich.text import Text as RichText

from posttrain.renderers import Renderer, SupervisedExample
from posttrain.tokenizer import Tokenizer


def token_texts(tokenizer: Tokenizer, tokens: Sequence[int]) -> list[str]:
    """Decode token by token; a token that is part of a multi-byte character shows as its bytes."""
    out = []
    for t in tokens:
        s = tokenizer.decode([t])
        out.append(s if "\ufffd" not in s else f"<{tokenizer.id_to_token(t)}>")
    return out


_NAMED = {"\r": "\\r", "\t": "\\t", "\n": "\\n\n"}


def _visible(s: str) -> str:
    """Message text shown in a terminal: control characters (an ESC starting an escape sequence,
    C1 controls, bidi overrides) are written as escapes, so the data cannot drive the terminal."""
    if s.isprintable():
        return s
    return "".join(_NAMED.get(c) or (c if c.isprintable() or c == " " else _escape(c)) for c in s)


def _escape(c: str) -> str:
    if unicodedata.category(c) == "Zs":  # unusual spaces (NBSP, ...) are harmless and shown as is
        return c
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def rich_view(renderer: Renderer, ex: SupervisedExample) -> RichText:
    texts = token_texts(renderer.tokenizer, ex.tokens)
    out = RichText()
    added = renderer.tokenizer.added_ids
    for i, (tok, s, w) in enumerate(zip(ex.tokens, texts, ex.weights, strict=True)):
        shade = "on grey15" if i % 2 else "on grey23"
        if w > 0:
            style = "bold black on green3" if i % 2 else "bold black on green4"
        elif tok in added:
            style = f"dim cyan {shade}"
        else:
            style = shade
        out.append(_visible(s), style=style)
    return out


def html_view(renderer: Renderer, examples: Sequence[tuple[str, SupervisedExample]]) -> str:
    added = renderer.tokenizer.added_ids
    blocks = []
    for title, ex in examples:
        spans = []
        texts = token_texts(renderer.tokenizer, ex.tokens)
        for i, (tok, s, w) in enumerate(zip(ex.tokens, texts, ex.weights, strict=True)):
            cls = "t" + (" w" if w > 0 else "") + (" s" if tok in added else "") + (" o" if i % 2 else "")
            spans.append(f'<span class="{cls}" title="#{i} id={tok} weight={w:g}">{html.escape(s)}</span>')
        n_trained = sum(1 for w in ex.weights if w > 0)
        blocks.append(
            f"<h2>{html.escape(title)}</h2><p>{len(ex.tokens)} tokens, {n_trained} trained</p>"
            f"<pre>{''.join(spans)}</pre>"
        )
    style = (
        "body{font-family:sans-serif;margin:2em}pre{white-space:pre-wrap;font-size:14px;line-height:1.6}"
        ".t{background:#eee}.t.o{background:#ddd}.w{background:#9be59b}.w.o{background:#6fcf6f}"
        ".s{color:#06c;font-weight:bold}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>posttrain viz ({renderer.name})</title>"
        f"<style>{style}</style></head><body><h1>Renderer {html.escape(renderer.name)}</h1>"
        "<p>Green: trained tokens (weight &gt; 0). Blue: control tokens. Shading alternates per token.</p>"
        f"{''.join(blocks)}</body></html>"
    )
