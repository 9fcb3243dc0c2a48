"""Compare two runs layer by layer and diagnose each difference by root cause.

Layers: config → dataset snapshot → rendered samples → first batch → metrics. Causes named:
``config_difference``, ``sample_count``, ``reordering``, ``different_samples``, ``serialization_only``,
``bos_duplication``, ``token_difference``, ``mask_difference``, ``weight_difference``, ``truncation``,
``length_delta``, ``batch_grouping``, ``targets_not_shifted``, ``inconsistent_datum``,
``inconsistent_sample``, ``metrics_difference``, ``timing_difference`` (a note), ``missing_artifact``. Serialization-only findings and
timing metrics never make runs differ. Run A is treated as the reference: fixes say what to change in B.

Modules: :mod:`.snapshot` (snapshot alignment, shuffle naming), :mod:`.serialization` (escaping, hash
recipes, Unicode normalization), :mod:`.tokens` (token, mask and weight comparison), :mod:`.batch` and
:mod:`.order_finding` (the first batch), :mod:`.ordering` (row-order hypotheses), :mod:`.consistency` (each
run against itself), :mod:`.causes` (root causes with stage and fix).
"""

from __future__ import annotations

import re

from posttrain.parity.artifacts import RunArtifacts
from posttrain.parity.batch import diff_batch
from posttrain.parity.causes import root_causes
from posttrain.parity.consistency import check_rendered
from posttrain.parity.model import Finding, ParityReport
from posttrain.parity.snapshot import SnapshotAlignment, diff_snapshot
from posttrain.parity.tokens import Decoder, bos_id, compare_tokens, group

__all__ = ["Finding", "ParityReport", "diff_runs"]

# Config fields that change the training data or the run; others (paths, timestamps) are informational.
KEY_CONFIG_FIELDS = (
    "model_name", "tokenizer", "renderer", "train_on_what", "max_length", "batch_size", "seed", "shuffle",
    "truncation_side", "reduction", "learning_rate", "lr", "num_epochs", "lora_rank",
)
# Metric names that measure time, not training: two equal runs never take equally long.
_TIMING_WORDS = {"time", "times", "timestamp", "elapsed", "duration", "seconds", "secs", "sec", "s", "ms", "wall",
                 "walltime", "clock", "throughput", "per_sec", "per_second"}


def _diff_config(a: RunArtifacts, b: RunArtifacts) -> list[Finding]:
    out = []
    keys = sorted(set(a.config) | set(b.config))
    changed = [k for k in keys if a.config.get(k) != b.config.get(k)]
    key_diffs = {k: [a.config.get(k), b.config.get(k)] for k in changed if k in KEY_CONFIG_FIELDS}
    other = {k: [a.config.get(k), b.config.get(k)] for k in changed if k not in KEY_CONFIG_FIELDS}
    if key_diffs:
        out.append(Finding("config", "config_difference",
                           "config differs on " + ", ".join(f"{k} ({v[0]!r} vs {v[1]!r})" for k, v in key_diffs.items()),
                           {"fields": key_diffs}))
    if other:
        out.append(Finding("config", "config_difference", "config differs on informational fields: "
                           + ", ".join(other), {"fields": other}, data_difference=False))
    return out


def _diff_rendered(a: RunArtifacts, b: RunArtifacts, align: SnapshotAlignment | None, bos: int | None,
                   dec: Decoder) -> list[Finding]:
    if a.rendered is None or b.rendered is None:
        side = "A" if a.rendered is None else "B"
        return [Finding("rendered_samples", "missing_artifact", f"run {side} has no rendered_samples.json")]
    ra, rb = a.rendered["samples"], b.rendered["samples"]
    out: list[Finding] = check_rendered(ra, rb)
    for i, s in enumerate(ra):
        j = align.a_to_b[i] if align is not None and i < len(align.a_to_b) else i
        if j is None or j >= len(rb):
            continue
        label = f"sample {i}" + (f" (B position {j})" if j != i else "")
        out += compare_tokens("rendered_samples", label, s["all_tokens"], rb[j]["all_tokens"], s["weights"],
                              rb[j]["weights"], bos, dec)
    return group(out)


def is_timing(metric: str) -> bool:
    words = set(re.split(r"[^a-z0-9]+", metric.lower()))
    return bool(words & _TIMING_WORDS) or bool(re.search(r"per_?s(ec(ond)?)?$", metric.lower()))


def _diff_metrics(a: RunArtifacts, b: RunArtifacts) -> list[Finding]:
    if a.metrics is None and b.metrics is None:
        return []
    if a.metrics is None or b.metrics is None:
        return [Finding("metrics", "missing_artifact", f"only run {'A' if a.metrics else 'B'} has metrics.jsonl",
                        data_difference=False)]
    diffs, timing = [], set()
    for step, (ma, mb) in enumerate(zip(a.metrics, b.metrics, strict=False)):
        for k in sorted(set(ma) & set(mb)):
            x, y = ma[k], mb[k]
            if x == y:
                continue
            if is_timing(k):
                timing.add(k)
            elif not (isinstance(x, int | float) and isinstance(y, int | float)) or abs(x - y) > 1e-6 * max(1.0, abs(x)):
                diffs.append({"step": step, "metric": k, "a": x, "b": y})
    out = []
    if timing:
        out.append(Finding("metrics", "timing_difference", f"timing fields differ ({', '.join(sorted(timing))}): "
                           "not compared", {"timing_fields": sorted(timing)}, data_difference=False))
    if not diffs and len(a.metrics) == len(b.metrics):
        return out
    first = diffs[0] if diffs else None
    return out + [Finding(
        "metrics", "metrics_difference",
        f"{len(diffs)} metric values differ"
        + (f"; first at step {first['step']} ({first['metric']}: {first['a']} vs {first['b']})" if first else "")
        + (f"; {len(a.metrics)} vs {len(b.metrics)} steps" if len(a.metrics) != len(b.metrics) else ""),
        {"differences": diffs[:50]})]


def diff_runs(a: RunArtifacts, b: RunArtifacts) -> ParityReport:
    bos = bos_id(a, b)
    dec = Decoder(a.config)
    findings = _diff_config(a, b)
    snap, align = diff_snapshot(a, b)
    findings += snap
    findings += _diff_rendered(a, b, align, bos, dec)
    findings += diff_batch(a, b, align, bos, dec)
    findings += _diff_metrics(a, b)
    return ParityReport(str(a.path), str(b.path), findings, root_causes(findings))
