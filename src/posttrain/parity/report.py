"""Markdown rendering of a :class:`~posttrain.parity.diff.ParityReport`."""

from __future__ import annotations

import json
from typing import Any

from posttrain.parity.model import Finding, ParityReport, RootCause

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
    "weight_difference": "Weight difference",
    "batch_grouping": "Batch grouping",
    "targets_not_shifted": "Targets not shifted",
    "inconsistent_datum": "Inconsistent datum",
    "inconsistent_sample": "Inconsistent rendered sample",
    "metrics_difference": "Metrics difference",
    "timing_difference": "Timing only (not compared)",
    "missing_artifact": "Missing artifact",
}
MAX_ITEMS = 5
MAX_VALUE_CHARS = 300


def _evidence(ev: dict[str, Any]) -> list[str]:
    lines = []
    for k, v in ev.items():
        if k == "items":
            continue
        text = json.dumps(v, ensure_ascii=False)
        if len(text) > MAX_VALUE_CHARS:
            text = text[:MAX_VALUE_CHARS] + " …"
        lines.append(f"  - `{k}`: {text}")
    return lines


def _finding(f: Finding) -> list[str]:
    title = CAUSE_TITLES.get(f.cause, f.cause)
    out = [f"- **{title}** — {f.summary}"]
    out += _evidence(f.evidence)
    items = f.evidence.get("items", [])
    for item in items[:MAX_ITEMS]:
        out.append(f"  - {item.get('summary', '')}")
    if len(items) > MAX_ITEMS:
        out.append(f"  - … {len(items) - MAX_ITEMS} more (see --json)")
    return out


def _root_cause(i: int, rc: RootCause) -> list[str]:
    return [f"{i}. **{rc.title}** (first appears in: {rc.stage})",
            f"   - cause: {rc.explanation}",
            f"   - fix: {rc.fix}"]


def render_markdown(report: ParityReport) -> str:
    verdict = "MATCH" if report.match else "DIFFERENT"
    data = [f for f in report.findings if f.data_difference]
    lines = [
        "# Parity report",
        "",
        f"- A: `{report.run_a}`",
        f"- B: `{report.run_b}`",
        f"- Verdict: **{verdict}** ({len(data)} data difference(s), "
        f"{len(report.findings) - len(data)} note(s))",
        "",
    ]
    if report.root_causes:
        lines += ["## Root causes", ""]
        for i, rc in enumerate(report.root_causes, start=1):
            lines += _root_cause(i, rc)
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
