"""Token- and weight-level comparison shared by the rendered-samples and first-batch layers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from posttrain.parity.artifacts import RunArtifacts
from posttrain.parity.model import Finding

WINDOW = 6
# Weights are float32 in the payload: compare with a tolerance that float32 rounding stays inside.
REL_TOL = 1e-5


def bos_id(a: RunArtifacts, b: RunArtifacts) -> int | None:
    """config.json's ``bos_token_id``; ``null`` there means the tokenizer has none (e.g. Qwen)."""
    for run in (a, b):
        bos = run.config.get("bos_token_id")
        if isinstance(bos, int) and not isinstance(bos, bool):
            return bos
    if any("bos_token_id" in run.config for run in (a, b)):
        return None
    # Infer: the first token every rendered sample of both runs starts with.
    firsts = {s["all_tokens"][0] for r in (a, b) if r.rendered for s in r.rendered["samples"] if s["all_tokens"]}
    return firsts.pop() if len(firsts) == 1 else None


def leading(tokens: Sequence[int], tok: int | None) -> int:
    n = 0
    while tok is not None and n < len(tokens) and tokens[n] == tok:
        n += 1
    return n


def strip(tokens: Sequence[int], tok: int | None) -> list[int]:
    return [t for t in tokens if t != tok]


def ranges(indices: Sequence[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for i in indices:
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


class Decoder:
    """Decodes token windows when the run's tokenizer loads offline; otherwise shows ids only."""

    def __init__(self, config: dict[str, Any]):
        self.tok = None
        name = config.get("tokenizer")
        if isinstance(name, str) and name.startswith("posttrain:"):
            try:
                from posttrain.tokenizer import get_tokenizer

                self.tok = get_tokenizer(name)
            except Exception:  # noqa: BLE001 - decoding is a convenience; ids are always shown
                self.tok = None

    def __call__(self, tokens: Sequence[int]) -> str | None:
        if self.tok is None:
            return None
        try:
            return self.tok.decode(list(tokens))
        except (OverflowError, ValueError, TypeError, IndexError):  # ids outside the vocabulary
            return None


def close(x: float, y: float) -> bool:
    return abs(x - y) <= REL_TOL * max(1.0, abs(x), abs(y))


def _is_01(ws: Sequence[float]) -> bool:
    return all(w in (0.0, 1.0) for w in ws)


def _normalised(w01: Sequence[float], wn: Sequence[float]) -> bool:
    """``wn`` is ``w01`` divided by its sum: the per-datum mean reduction."""
    total = sum(w01)
    return (_is_01(w01) and total > 0 and close(sum(wn), 1.0)
            and all(close(x / total, y) for x, y in zip(w01, wn, strict=True)))


def weight_relation(wa: Sequence[float], wb: Sequence[float]) -> dict[str, Any] | None:
    """How B's weights relate to A's when both train the same tokens; None when equal."""
    if len(wa) != len(wb) or all(close(x, y) for x, y in zip(wa, wb, strict=True)):
        return None
    diff = [k for k, (x, y) in enumerate(zip(wa, wb, strict=True)) if not close(x, y)]
    base = {"sum_a": round(sum(wa), 6), "sum_b": round(sum(wb), 6), "positions_differing": len(diff),
            "first_difference": {"index": diff[0], "a": wa[diff[0]], "b": wb[diff[0]]}}
    if _normalised(wa, wb):
        return {"kind": "normalised_b", "text": "weights normalised per datum (sum 1) vs 0/1 (normalised in B)", **base}
    if _normalised(wb, wa):
        return {"kind": "normalised_a", "text": "weights normalised per datum (sum 1) vs 0/1 (normalised in A)", **base}
    ratios = [y / x for x, y in zip(wa, wb, strict=True) if x]
    if ratios and all(close(r, ratios[0]) for r in ratios):
        factor = round(ratios[0], 6)
        return {"kind": "scaled", "factor": factor, "text": f"weights scaled by {factor:g} in B", **base}
    return {"kind": "other", "text": f"weights differ at {len(diff)} positions, first at index {diff[0]} "
                                     f"({wa[diff[0]]:g} vs {wb[diff[0]]:g})", **base}


def _bos_finding(layer: str, label: str, ta: Sequence[int], tb: Sequence[int], bos: int) -> Finding:
    bos_a = [i for i, t in enumerate(ta) if t == bos]
    bos_b = [i for i, t in enumerate(tb) if t == bos]
    return Finding(
        layer, "bos_duplication",
        f"{label}: BOS ({bos}) appears {len(bos_b)} times in B vs {len(bos_a)} in A "
        f"(leading: {leading(tb, bos)} vs {leading(ta, bos)})",
        {"bos_id": bos, "count_a": len(bos_a), "count_b": len(bos_b), "positions_a": bos_a[:20],
         "positions_b": bos_b[:20], "leading_a": leading(ta, bos), "leading_b": leading(tb, bos)})


def _divergence(layer: str, label: str, ta: Sequence[int], tb: Sequence[int], dec: Decoder) -> Finding:
    i = next((k for k, (x, y) in enumerate(zip(ta, tb, strict=False)) if x != y), min(len(ta), len(tb)))
    start = max(0, i - WINDOW)
    win_a, win_b = list(ta[start : i + WINDOW]), list(tb[start : i + WINDOW])
    prefix = list(ta[: len(tb)]) == list(tb) or list(tb[: len(ta)]) == list(ta)
    return Finding(
        layer, "truncation" if prefix else "token_difference",
        f"{label}: tokens diverge at index {i} (lengths {len(ta)} vs {len(tb)})"
        + ("; one is a prefix of the other" if prefix else ""),
        {"first_divergence": i, "len_a": len(ta), "len_b": len(tb), "window_start": start,
         "window_a": win_a, "window_b": win_b, "decoded_a": dec(win_a), "decoded_b": dec(win_b)})


def _mask(layer: str, label: str, tokens: Sequence[int], wa: Sequence[float], wb: Sequence[float],
          dec: Decoder) -> Finding | None:
    only_a = [k for k, (x, y) in enumerate(zip(wa, wb, strict=False)) if x > 0 and y <= 0]
    only_b = [k for k, (x, y) in enumerate(zip(wa, wb, strict=False)) if y > 0 and x <= 0]
    if not (only_a or only_b):
        return None
    return Finding(
        layer, "mask_difference",
        f"{label}: same tokens, different loss mask: {len(only_b)} tokens trained only in B, "
        f"{len(only_a)} only in A",
        {"trained_only_in_a": len(only_a), "trained_only_in_b": len(only_b),
         "ranges_only_a": ranges(only_a)[:20], "ranges_only_b": ranges(only_b)[:20],
         "decoded_only_a": [dec(list(tokens[s : e + 1])) for s, e in ranges(only_a)[:5]],
         "decoded_only_b": [dec(list(tokens[s : e + 1])) for s, e in ranges(only_b)[:5]]})


def compare_tokens(layer: str, label: str, ta: Sequence[int], tb: Sequence[int], wa: Sequence[float],
                   wb: Sequence[float], bos: int | None, dec: Decoder) -> list[Finding]:
    """BOS count, then tokens (BOS removed), then the loss mask, then the weight values."""
    out: list[Finding] = []
    if bos is not None and ta.count(bos) != tb.count(bos):
        out.append(_bos_finding(layer, label, ta, tb, bos))
        # Compare what remains once BOS is removed (weights of removed tokens dropped too).
        ta, wa = strip(ta, bos), [w for t, w in zip(ta, wa, strict=False) if t != bos]
        tb, wb = strip(tb, bos), [w for t, w in zip(tb, wb, strict=False) if t != bos]
    if list(ta) != list(tb):
        return [*out, _divergence(layer, label, ta, tb, dec)]
    mask = _mask(layer, label, ta, wa, wb, dec)
    if mask is not None:
        return [*out, mask]
    rel = weight_relation(list(wa), list(wb))
    if rel is not None:
        out.append(Finding(layer, "weight_difference", f"{label}: {rel['text']}", rel))
    return out


def group(findings: list[Finding]) -> list[Finding]:
    """One finding per (layer, cause): the first as example, counts and per-item evidence kept."""
    grouped: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        grouped.setdefault((f.layer, f.cause), []).append(f)
    out = []
    for (layer, cause), fs in grouped.items():
        if len(fs) == 1:
            out.append(fs[0])
            continue
        out.append(Finding(layer, cause, f"{len(fs)} items: {fs[0].summary}; …",
                           {"count": len(fs), "items": [{"summary": f.summary, **f.evidence} for f in fs]},
                           fs[0].data_difference))
    return out
