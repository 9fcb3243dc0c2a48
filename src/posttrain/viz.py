"""``posttrain viz``: show rendered conversations with the trained tokens highlighted.

Each token is shown as its decoded text; trained tokens (weight > 0) are green, control tokens are
dimmed, and token boundaries alternate shading so merges across a header/content boundary are visible.
``--html FILE`` writes the same view as a standalone page (hover a token for its id and weight).
"""

from __future__ import annotations

import argparse
import html
from collections.abc import Sequence

from rich.console import Console
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


def _visible(s: str) -> str:
    return s.replace("\r", "\\r").replace("\t", "\\t").replace("\n", "\\n\n")


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


def cmd_viz(args: argparse.Namespace) -> int:
    from posttrain.cli import build_renderer, read_conversations

    renderer = build_renderer(args)
    examples: list[tuple[str, SupervisedExample]] = []
    for line, msgs in read_conversations(args.input):
        if len(examples) >= args.limit:
            break
        examples.append((f"line {line}", renderer.build_supervised_example(msgs, args.train_on)))
    if args.html:
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(html_view(renderer, examples))
        print(f"wrote {args.html} ({len(examples)} conversations)")
        return 0
    console = Console(force_terminal=args.color, highlight=False)
    for title, ex in examples:
        n_trained = sum(1 for w in ex.weights if w > 0)
        console.rule(f"{title}: {len(ex.tokens)} tokens, {n_trained} trained ({renderer.name})")
        console.print(rich_view(renderer, ex))
    return 0


def add_viz_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from posttrain.cli import add_renderer_args

    p = sub.add_parser("viz", help="show rendered conversations with trained tokens highlighted",
                       description="Render conversations and show each token, trained tokens highlighted, "
                                   "to check loss masks by eye.")
    p.add_argument("input", nargs="?", help="JSONL file of {\"messages\": [...]} (default: stdin)")
    add_renderer_args(p)
    p.add_argument("--html", metavar="FILE", help="write an HTML page instead of terminal output")
    p.add_argument("--limit", type=int, default=5, help="conversations to show (default: %(default)s)")
    p.add_argument("--color", action="store_true", default=None, help="force terminal colors (e.g. when piping)")
    p.set_defaults(func=cmd_viz)
