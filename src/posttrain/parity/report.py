"""Markdown rendering of a :class:`~posttrain.parity.model.ParityReport`."""

from __future__ import annotations

import json
from typing import Any

from posttrain.parity.model import Finding, ParityReport

LAYERS = ("config", "dataset_snapshot", "rendered_samples", "first_batch", "metrics")
CAUSE_TITLES = {
    "config_difference": "Config difference",
    "sample_count": "Different dataset size",
    "reordering": "Reordering",
    "different_samples": "Different samples",
    "serialization_only": "Serialization only (not a data difference)",
    "bos_duplication": "BOS duplication",
    "token_difference": "Token difference",
    "mask_difference": "Mask difference",
    "truncation": "Truncation",
    "length_delta": "Length delta",
    "metrics_difference": "Metrics difference",
    "missing_artifact": "Missing artifact",
}
MAX_ITEMS = 5
MAX_VALUE_CHARS = 300
_DELTA_COLUMNS = ("datum", "len_a", "len_b", "extra_bos", "different_sample", "truncation", "residual")


def _value(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=False)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + " …"


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> list[str]:
    out = ["  | " + " | ".join(columns) + " |", "  |" + "---|" * len(columns)]
    out += ["  | " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    return out


def _item_lines(item: dict[str, Any]) -> list[str]:
    """One grouped item: its summary, then the token window and text divergence when present."""
    out = [f"  - {item.get('summary', '')}"]
    if "window_a" in item:
        out.append(f"    - token ids from index {item['window_start']}: A {item['window_a']} / B {item['window_b']}")
    if div := item.get("decoded_text_divergence"):
        out.append(f"    - decoded text at character {div['char_index']}: A {div['text_a']!r} / B {div['text_b']!r}")
    return out


def _finding(f: Finding) -> list[str]:
    title = CAUSE_TITLES.get(f.cause, f.cause)
    out = [f"- **{title}** — {f.summary}"]
    for k, v in f.evidence.items():
        if k == "items":
            continue
        if k == "datums" and f.cause == "length_delta":
            out += ["  - per datum:", ""] + _table(v, _DELTA_COLUMNS) + [""]
            continue
        out.append(f"  - `{k}`: {_value(v)}")
    if "items" not in f.evidence and ("window_a" in f.evidence or "decoded_text_divergence" in f.evidence):
        out += _item_lines({**f.evidence, "summary": "evidence"})[1:]
    items = f.evidence.get("items", [])
    for item in items[:MAX_ITEMS]:
        out += _item_lines(item)
    if len(items) > MAX_ITEMS:
        out.append(f"  - … {len(items) - MAX_ITEMS} more (see --json)")
    return out


def render_markdown(report: ParityReport) -> str:
    """A readable report: verdict, root causes, then each layer's findings with their evidence."""
    verdict = "MATCH" if report.match else "DIFFERENT"
    data = [f for f in report.findings if f.data_difference]
    lines = [
        "# Parity report",
        "",
        f"- A: `{report.run_a}`",
        f"- B: `{report.run_b}`",
        f"- Verdict: **{verdict}** ({len(data)} data difference(s), {len(report.findings) - len(data)} note(s))",
        "",
    ]
    if data:
        lines += ["## Root causes", ""]
        lines += [f"{i}. **{CAUSE_TITLES.get(f.cause, f.cause)}** ({f.layer}): {f.summary}"
                  for i, f in enumerate(data, start=1)]
        lines.append("")
    for layer in LAYERS:
        fs = [f for f in report.findings if f.layer == layer]
        lines += [f"## {layer}", ""]
        if not fs:
            lines += ["identical", ""]
            continue
        for f in fs:
            lines += _finding(f)
        lines.append("")
    return "\n".join(lines)
