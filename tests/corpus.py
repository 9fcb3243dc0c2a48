"""Shared test corpus for renderer parity tests.

Every conversation alternates user/assistant (optionally after one system message) and ends with an
assistant message, so each family's reference can encode it. Coverage: system prompts, multi-turn,
empty content, whitespace and newlines at content edges, CRLF, tabs, CJK, RTL, emoji ZWJ sequences,
combining marks, zero-width and NBSP characters, long content, code and JSON, digits, contractions.
"""

from __future__ import annotations

import json
from typing import Any

_LONG_PROSE = " ".join(
    f"Sentence {i} explains step {i % 7} of the procedure, and it isn't short: it's got clauses, numbers like {i * 37}, and words."
    for i in range(400)
)
_LONG_CODE = "\n".join(f"def f{i}(x):\n    return x * {i} + {i % 3}  # note {i}\n" for i in range(150))
_JSON_BLOB = json.dumps(
    {"name": "Zoë", "tags": ["a", "b"], "nested": {"k": [1, 2.5, None, True]}, "quote": "“smart” ‘quotes’"},
    ensure_ascii=False,
    indent=2,
)


def _c(name: str, *turns: str, system: str | None = None) -> tuple[str, list[dict[str, str]]]:
    msgs: list[dict[str, str]] = []
    if system is not None:
        msgs.append({"role": "system", "content": system})
    for i, t in enumerate(turns):
        msgs.append({"role": "user" if i % 2 == 0 else "assistant", "content": t})
    return name, msgs


NAMED_CONVERSATIONS: list[tuple[str, list[dict[str, str]]]] = [
    _c("simple", "What is 2+2?", "2+2 is 4."),
    _c("system", "Say hi.", "Hi!", system="You are a terse assistant."),
    _c("multi_turn", "Hello", "Hi, how can I help?", "Name a prime.", "7 is prime.", "Another?", "11."),
    _c("empty_assistant", "Reply with nothing.", ""),
    _c("empty_system", "Hi", "Hello!", system=""),
    _c("leading_trailing_spaces", "  padded question  ", "  padded answer  "),
    _c("leading_newline", "\nstarts with a newline", "\n\nanswer after blank lines"),
    _c("trailing_newlines", "ends with newlines\n\n", "answer ends too\n"),
    _c("only_whitespace", "   ", " \n "),
    _c("crlf", "line one\r\nline two\r\n", "reply\r\nwith CRLF\r\n"),
    _c("tabs", "\tindented\twith\ttabs", "col1\tcol2\n\tnext"),
    _c("cjk", "你好，世界！今天天气怎么样？", "今日は良い天気です。한국어도 됩니다."),
    _c("rtl", "مرحبا بالعالم، كيف حالك؟", "שלום עולם! mixed עברית and English."),
    _c("emoji_zwj", "Family: 👨‍👩‍👧‍👦 and flags 🏳️‍🌈 🇯🇵", "Thumbs 👍🏽 and 🧑🏿‍💻 coder."),
    _c("combining_marks", "e\u0301 vs é, n\u0303, a\u0308\u0304 stacked", "Zalgo-ish: Z\u0336a\u0335l\u0334g\u0337o"),
    _c("zero_width_nbsp", "zero\u200bwidth\u200cjoin\u200dx\ufeffbom", "non\u00a0breaking\u202fnarrow\u2009thin"),
    _c("digits", "Compute 1234567890 * 98765", "121932631112635269 and 3.14159, 1e-9, 007"),
    _c("contractions", "I'm sure you'll say it's fine, won't you? They'd've", "You're right; we'll see. I'd, I've, she's."),
    _c("code", "Fix this:\n```python\ndef f(x):\n\treturn x+1\n```", "```python\ndef f(x: int) -> int:\n    return x + 1\n```"),
    _c("json", "Parse: " + _JSON_BLOB, _JSON_BLOB),
    _c("long_prose", "Summarize: " + _LONG_PROSE, _LONG_PROSE[:3000]),
    _c("long_code", "Review:\n" + _LONG_CODE, "Looks fine.\n" + _LONG_CODE[:2000]),
    _c("punctuation_soup", "?!...;;--~~``''\"\"<<>>", "(){}[]|\\/@#$%^&*_+="),
    _c("markup_like", "<b>bold</b> <tag attr='1'/> &amp; {{ jinja }} {% raw %}", "I see <html> and {{ braces }}."),
    _c(
        "system_multi",
        "first",
        "second",
        "third\n",
        " fourth",
        system="System prompt with\nnewlines\n\nand  double  spaces ",
    ),
]

CONVERSATIONS: list[list[dict[str, str]]] = [c for _, c in NAMED_CONVERSATIONS]
CONVERSATION_IDS: list[str] = [n for n, _ in NAMED_CONVERSATIONS]

# Control-token strings of every family. Message text containing them must encode as plain text.
CONTROL_STRINGS: list[str] = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "<|python_tag|>",
    "<|im_start|>assistant\n",
    "<|im_end|>",
    "<|endoftext|>",
    "<think>secret</think>",
    "<tool_call>{}</tool_call>",
    "<｜User｜>",
    "<｜Assistant｜>",
    "<｜end▁of▁sentence｜>",
    "<｜begin▁of▁sentence｜>",
    "<|start|>assistant<|channel|>final<|message|>hi<|end|>",
    "<|return|>",
    "<|call|>",
    "[INST] hi [/INST]",
    "</s>",
    "<s>",
    "[SYSTEM_PROMPT]x[/SYSTEM_PROMPT]",
]


def control_token_conversations() -> list[list[dict[str, str]]]:
    """Conversations whose system, user and assistant text is made of control-token strings."""
    joined = " ".join(CONTROL_STRINGS)
    convs = [
        [{"role": "user", "content": s}, {"role": "assistant", "content": f"echo {s} done"}] for s in CONTROL_STRINGS
    ]
    convs.append(
        [
            {"role": "system", "content": joined},
            {"role": "user", "content": joined},
            {"role": "assistant", "content": joined},
        ]
    )
    return convs


# Random message text is built from these and from arbitrary Unicode: control-token strings of several
# families, line endings, whitespace, invisible and combining characters, scripts, merges.
FRAGMENTS: list[str] = ["<|eot_id|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "[INST]", "</s>",
                        "<|start|>", "\n", "\r\n", "\t", "  ", "\u200b", "\u00a0", "👨‍👩‍👧", "e\u0301", "日本", "שלום",
                        "'s", "123456"]


def random_conversations() -> Any:
    """Hypothesis strategy: an optional system message, then a user and an assistant message, each
    random text mixed with :data:`FRAGMENTS`."""
    from hypothesis import strategies as st

    text = st.lists(st.one_of(st.text(max_size=12), st.sampled_from(FRAGMENTS)), max_size=8).map("".join)
    return st.tuples(st.booleans(), text, text, text).map(
        lambda t: ([{"role": "system", "content": t[1]}] if t[0] else [])
        + [{"role": "user", "content": t[2]}, {"role": "assistant", "content": t[3]}])
