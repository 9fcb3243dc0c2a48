"""Compare two runs layer by layer and diagnose each difference by root cause.

Layers: config → dataset snapshot → rendered samples → first batch → metrics. Causes named:
``config_difference``, ``sample_count``, ``reordering``, ``different_samples``, ``serialization_only``,
``bos_duplication``, ``token_difference``, ``mask_difference``, ``truncation``, ``length_delta``,
``metrics_difference``, ``missing_artifact``. Serialization-only findings never make runs differ.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from posttrain.parity.artifacts import RunArtifacts, content_hash, hash_hex
from posttrain.parity.model import Finding, ParityReport
from posttrain.parity.report import render_markdown
from posttrain.parity.serialization import hash_recipe, sample_key, serialization_findings

__all__ = ["Finding", "ParityReport", "diff_runs", "render_markdown"]

# Config fields that change the training data or the run (matched on the flattened, lower-cased key);
# other fields (paths, counts) are reported as notes, and timestamps are not compared at all.
KEY_CONFIG = re.compile(r"model|renderer|tokenizer|train_on|max_len|truncat|batch_size|seed|shuffle|"
                        r"(^|[._])lr($|[._])|learning_rate|epoch|lora|bos")
IGNORED_CONFIG = re.compile(r"time|date|created|started|finished|hostname|duration")
WINDOW = 6


# -- helpers ------------------------------------------------------------------------------------


def _bos_id(a: RunArtifacts, b: RunArtifacts) -> int | None:
    """config.json's ``bos_token_id``; ``null`` there means the tokenizer has none (e.g. Qwen). Without
    the field: inferred as the first token that every rendered sample of both runs starts with."""
    for run in (a, b):
        bos = run.config.get("bos_token_id")
        if isinstance(bos, int) and not isinstance(bos, bool):
            return bos
    if any("bos_token_id" in run.config for run in (a, b)):
        return None
    firsts = {s["all_tokens"][0] for r in (a, b) if r.rendered for s in r.rendered["samples"] if s.get("all_tokens")}
    return firsts.pop() if len(firsts) == 1 else None


def _leading(tokens: Sequence[int], tok: int | None) -> int:
    n = 0
    while tok is not None and n < len(tokens) and tokens[n] == tok:
        n += 1
    return n


def _strip(tokens: Sequence[int], tok: int | None) -> list[int]:
    return [t for t in tokens if t != tok]


def _ranges(indices: Sequence[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for i in indices:
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


class _Decoder:
    """Decodes token windows when the run's tokenizer loads offline; otherwise shows ids only."""

    def __init__(self, *configs: dict[str, Any]):
        self.tok = None
        for config in configs:
            name = config.get("tokenizer")
            if isinstance(name, str) and name.startswith("posttrain:"):
                try:
                    from posttrain.tokenizer import get_tokenizer

                    self.tok = get_tokenizer(name)
                    return
                except Exception:  # noqa: BLE001 - decoding is a convenience; ids are always shown
                    self.tok = None

    def __call__(self, tokens: Sequence[int]) -> str | None:
        return self.tok.decode(list(tokens)) if self.tok is not None else None


def _missing(layer: str, in_a: bool) -> Finding:
    name = {"dataset_snapshot": "dataset_snapshot.json", "rendered_samples": "rendered_samples.json",
            "first_batch": "first_batch_payload.json"}[layer]
    return Finding(layer, "missing_artifact", f"run {'A' if in_a else 'B'} has no {name}")


# -- layers -------------------------------------------------------------------------------------


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _diff_config(a: RunArtifacts, b: RunArtifacts) -> list[Finding]:
    ca, cb = _flatten(a.config), _flatten(b.config)
    diffs = {k: [ca.get(k), cb.get(k)] for k in sorted(set(ca) | set(cb))
             if ca.get(k) != cb.get(k) and not IGNORED_CONFIG.search(k.lower())}
    key = {k: v for k, v in diffs.items() if KEY_CONFIG.search(k.lower())}
    other = {k: v for k, v in diffs.items() if k not in key}
    out = []
    if key:
        out.append(Finding("config", "config_difference",
                           "config differs on " + ", ".join(f"{k} ({v[0]!r} vs {v[1]!r})" for k, v in key.items()),
                           {"fields": key}))
    if other:
        out.append(Finding("config", "config_difference", "config differs on informational fields: "
                           + ", ".join(other), {"fields": other}, data_difference=False))
    return out


@dataclass
class _SnapshotAlignment:
    a_to_b: list[int | None]  # for each A sample position, the B position with the same content
    reordered: bool


def _match(keys_a: Sequence[Any], keys_b: Sequence[Any]) -> list[int | None]:
    """For each A position, a B position with an equal key: same position first, then the first unused."""
    free: dict[Any, list[int]] = {}
    for j, k in enumerate(keys_b):
        free.setdefault(k, []).append(j)
    out: list[int | None] = [None] * len(keys_a)
    for i, k in enumerate(keys_a):
        if i < len(keys_b) and keys_b[i] == k:
            out[i] = i
            free[k].remove(i)
    for i, k in enumerate(keys_a):
        if out[i] is None and free.get(k):
            out[i] = free[k].pop(0)
    return out


def _diff_snapshot(a: RunArtifacts, b: RunArtifacts) -> tuple[list[Finding], _SnapshotAlignment | None]:
    out: list[Finding] = []
    if a.snapshot is None or b.snapshot is None:
        return [_missing("dataset_snapshot", a.snapshot is None)], None
    sa, sb = a.snapshot["samples"], b.snapshot["samples"]
    if a.snapshot["total_count"] != b.snapshot["total_count"]:
        out.append(Finding("dataset_snapshot", "sample_count",
                           f"the datasets hold {a.snapshot['total_count']} vs {b.snapshot['total_count']} samples "
                           "(different source, filtering or skipped rows)",
                           {"a": a.snapshot["total_count"], "b": b.snapshot["total_count"]}))
    a_to_b = _match([sample_key(s["messages"]) for s in sa], [sample_key(s["messages"]) for s in sb])
    reordered = any(j is not None and j != i for i, j in enumerate(a_to_b))
    if reordered:
        moved = sum(j is not None and j != i for i, j in enumerate(a_to_b))
        out.append(Finding(
            "dataset_snapshot", "reordering",
            f"{moved} of {len(sa)} samples sit at other positions already in the dataset snapshot: the dataset "
            "shuffle differs (seed, PRNG, or shuffling something other than dataset rows)",
            {"permutation_a_to_b": a_to_b, "index_a": [s["index"] for s in sa], "index_b": [s["index"] for s in sb]}))
    missing = [i for i, j in enumerate(a_to_b) if j is None]
    if missing:
        out.append(_different_samples(sa, sb, missing))
    out += serialization_findings(a, b, a_to_b)
    return out, _SnapshotAlignment(a_to_b, reordered)


def _different_samples(sa: list[dict[str, Any]], sb: list[dict[str, Any]], missing: list[int]) -> Finding:
    """Samples of A with no equal sample in B: other rows picked (shuffle) or the same row with other text."""
    by_index_b = {s["index"]: s for s in sb}
    same_row_other_text = [i for i in missing if sa[i]["index"] in by_index_b]
    if same_row_other_text:
        why = (f"{len(same_row_other_text)} of them are the same dataset rows (index) with other content: the "
               "source or its preprocessing differs")
    else:
        why = ("B holds other dataset rows at these positions (dataset index "
               f"{[sa[i]['index'] for i in missing[:8]]} in A vs "
               f"{[sb[i]['index'] for i in missing[:8] if i < len(sb)]} in B): the dataset shuffle "
               "(seed or PRNG) or the source differs")
    return Finding("dataset_snapshot", "different_samples",
                   f"{len(missing)} of {len(sa)} snapshot samples of A have no equal sample in B; {why}",
                   {"positions_a": missing, "index_a": [sa[i]["index"] for i in missing],
                    "same_index_other_content": same_row_other_text})


def _text_divergence(text_a: str | None, text_b: str | None, context: int = 40) -> dict[str, Any] | None:
    """Where two ``decoded`` texts first differ, with some context: evidence that needs no tokenizer."""
    if not isinstance(text_a, str) or not isinstance(text_b, str) or text_a == text_b:
        return None
    i = next((k for k, (x, y) in enumerate(zip(text_a, text_b, strict=False)) if x != y), min(len(text_a), len(text_b)))
    lo = max(0, i - context)
    return {"char_index": i, "text_a": text_a[lo : i + context], "text_b": text_b[lo : i + context]}


def _bos_finding(layer: str, label: str, ta: Sequence[int], tb: Sequence[int], bos: int,
                 dec: _Decoder) -> Finding:
    pos_a = [i for i, t in enumerate(ta) if t == bos]
    pos_b = [i for i, t in enumerate(tb) if t == bos]
    more, fewer = (tb, ta) if len(pos_b) > len(pos_a) else (ta, tb)
    extra = [i for i, t in enumerate(more) if t == bos][_leading(fewer, bos) :][:8]
    # What each extra BOS precedes: a role name, "\n\n" or message text means every encoded piece got one.
    after = [dec([more[i + 1]]) if i + 1 < len(more) else None for i in extra]
    side = "B" if more is tb else "A"
    shown = [x for x in after if x is not None][:4]
    where = (f"; in {side} each extra BOS starts an encoded piece ({', '.join(repr(x) for x in shown)}, …): "
             "encoding adds special tokens (add_special_tokens=False ignored)" if shown else "")
    return Finding(
        layer, "bos_duplication",
        f"{label}: BOS ({bos}) appears {len(pos_b)} times in B vs {len(pos_a)} in A "
        f"(leading: {_leading(tb, bos)} vs {_leading(ta, bos)}){where}",
        {"bos_id": bos, "count_a": len(pos_a), "count_b": len(pos_b), "positions_a": pos_a[:20],
         "positions_b": pos_b[:20], "leading_a": _leading(ta, bos), "leading_b": _leading(tb, bos),
         "extra_bos_followed_by": after})


def _compare_tokens(layer: str, label: str, ta: Sequence[int], tb: Sequence[int], wa: Sequence[float],
                    wb: Sequence[float], bos: int | None, dec: _Decoder,
                    texts: tuple[str | None, str | None] = (None, None), report_bos: bool = True) -> list[Finding]:
    """BOS count, then tokens (BOS removed when the counts differ), then the loss mask over the common prefix."""
    out: list[Finding] = []
    if bos is not None and list(ta).count(bos) != list(tb).count(bos):
        if report_bos:
            out.append(_bos_finding(layer, label, ta, tb, bos, dec))
        # Compare what remains once BOS is removed (weights of removed tokens dropped too).
        ta, wa = [t for t in ta if t != bos], [w for t, w in zip(ta, wa, strict=True) if t != bos]
        tb, wb = [t for t in tb if t != bos], [w for t, w in zip(tb, wb, strict=True) if t != bos]
    ta, tb = list(ta), list(tb)
    common = next((k for k, (x, y) in enumerate(zip(ta, tb, strict=False)) if x != y), min(len(ta), len(tb)))
    if ta != tb:
        i = common
        lo = max(0, i - WINDOW)
        win_a, win_b = ta[lo : i + WINDOW], tb[lo : i + WINDOW]
        prefix = ta[: len(tb)] == tb or tb[: len(ta)] == ta
        cause = "truncation" if prefix else "token_difference"
        evidence: dict[str, Any] = {
            "first_divergence": i, "len_a": len(ta), "len_b": len(tb), "window_start": lo,
            "window_a": win_a, "window_b": win_b, "decoded_a": dec(win_a), "decoded_b": dec(win_b)}
        if not prefix and (text := _text_divergence(*texts)) is not None:
            evidence["decoded_text_divergence"] = text
        shown = (f": A …{evidence['decoded_a']!r}… vs B …{evidence['decoded_b']!r}…"
                 if evidence["decoded_a"] is not None and not prefix else "")
        out.append(Finding(
            layer, cause,
            f"{label}: tokens diverge at index {i} (lengths {len(ta)} vs {len(tb)})"
            + ("; one is a prefix of the other" if prefix else shown), evidence))
    only_a = [k for k in range(common) if wa[k] > 0 and wb[k] <= 0]
    only_b = [k for k in range(common) if wb[k] > 0 and wa[k] <= 0]
    if only_a or only_b:
        dec_b = [dec(ta[s : e + 1]) for s, e in _ranges(only_b)[:5]]
        dec_a = [dec(ta[s : e + 1]) for s, e in _ranges(only_a)[:5]]
        out.append(Finding(
            layer, "mask_difference",
            f"{label}: different loss mask on equal tokens: {len(only_b)} tokens trained only in B "
            f"{dec_b if any(dec_b) else _ranges(only_b)[:5]}, {len(only_a)} only in A"
            + (f" {dec_a if any(dec_a) else _ranges(only_a)[:5]}" if only_a else ""),
            {"trained_only_in_a": len(only_a), "trained_only_in_b": len(only_b),
             "ranges_only_a": _ranges(only_a)[:20], "ranges_only_b": _ranges(only_b)[:20],
             "decoded_only_a": dec_a, "decoded_only_b": dec_b}))
    return out


def _diff_rendered(a: RunArtifacts, b: RunArtifacts, align: _SnapshotAlignment | None, bos: int | None,
                   dec: _Decoder) -> list[Finding]:
    if a.rendered is None or b.rendered is None:
        return [_missing("rendered_samples", a.rendered is None)]
    ra, rb = a.rendered["samples"], b.rendered["samples"]
    out: list[Finding] = []
    for i, s in enumerate(ra):
        j = align.a_to_b[i] if align is not None and i < len(align.a_to_b) else i
        if j is None or j >= len(rb):
            continue
        label = f"sample {i}" + (f" (B position {j})" if j != i else "")
        out += _compare_tokens("rendered_samples", label, s["all_tokens"], rb[j]["all_tokens"], s["weights"],
                               rb[j]["weights"], bos, dec, (s.get("decoded"), rb[j].get("decoded")))
    if len(ra) != len(rb):
        out.append(Finding("rendered_samples", "sample_count", f"{len(ra)} vs {len(rb)} rendered samples",
                           {"a": len(ra), "b": len(rb)}, data_difference=False))
    return _group(out)


def _group(findings: list[Finding]) -> list[Finding]:
    """One finding per (layer, cause): the first as example, counts and per-item evidence kept."""
    grouped: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        grouped.setdefault((f.layer, f.cause), []).append(f)
    out = []
    for (layer, cause), fs in grouped.items():
        if len(fs) == 1:
            out.append(fs[0])
            continue
        unit = "samples" if layer == "rendered_samples" else "datums"
        out.append(Finding(layer, cause, f"{len(fs)} {unit} — first, {fs[0].summary}",
                           {"count": len(fs), "items": [{"summary": f.summary, **f.evidence} for f in fs]},
                           fs[0].data_difference))
    return out


def _datum_tokens(d: dict[str, Any]) -> tuple[list[list[int]], list[int], list[float]]:
    chunks = [list(c.get("tokens", [])) for c in d["model_input"]["chunks"]]
    lfi = d["loss_fn_inputs"]
    return chunks, list(lfi["target_tokens"]["data"]), list(lfi["weights"]["data"])


def _align_prefix(xs: list[list[int]], ys: list[list[int]]) -> list[int | None]:
    """Match each x to a y with equal content, where truncation may have cut either one short.

    Same position is preferred; otherwise the first unused y of which x is a prefix or vice versa."""

    def compatible(x: list[int], y: list[int]) -> bool:
        n = min(len(x), len(y))
        return n > 0 and x[:n] == y[:n]

    used: set[int] = set()
    out: list[int | None] = []
    for i, x in enumerate(xs):
        if i < len(ys) and x == ys[i]:
            out.append(i)
            used.add(i)
            continue
        exact = next((j for j, y in enumerate(ys) if j not in used and y == x), None)
        j = exact if exact is not None else (
            i if i < len(ys) and i not in used and compatible(x, ys[i])
            else next((j for j, y in enumerate(ys) if j not in used and compatible(x, y)), None))
        out.append(j)
        if j is not None:
            used.add(j)
    return out


def _diff_batch(a: RunArtifacts, b: RunArtifacts, align: _SnapshotAlignment | None, bos: int | None,
                dec: _Decoder) -> list[Finding]:
    if a.first_batch is None or b.first_batch is None:
        return [_missing("first_batch", a.first_batch is None)]
    da, db = a.first_batch["datums"], b.first_batch["datums"]
    out: list[Finding] = []
    pa, pb = [_datum_tokens(d) for d in da], [_datum_tokens(d) for d in db]
    # BOS per datum and per chunk: extra BOS at chunk starts is the signature of a per-chunk encode
    # that adds special tokens.
    if bos is not None:
        totals_a = [sum(c.count(bos) for c in ch) for ch, _, _ in pa]
        totals_b = [sum(c.count(bos) for c in ch) for ch, _, _ in pb]
        if totals_a != totals_b:
            chunk_bos_a = sum(1 for ch, _, _ in pa for c in ch if c and c[0] == bos)
            chunk_bos_b = sum(1 for ch, _, _ in pb for c in ch if c and c[0] == bos)
            side, more = ("B", pb) if sum(totals_b) > sum(totals_a) else ("A", pa)
            n_chunks = sum(len(ch) for ch, _, _ in more)
            at_chunk_starts = max(chunk_bos_a, chunk_bos_b) > min(chunk_bos_a, chunk_bos_b)
            cause = ("the extra BOS sit at chunk starts: the per-chunk encode adds special tokens — encode each "
                     "chunk with add_special_tokens=False and place BOS once" if at_chunk_starts
                     else "the extra BOS are inside chunks: special tokens are added when encoding pieces of text")
            out.append(Finding(
                "first_batch", "bos_duplication",
                f"run {side} has {sum(totals_b if side == 'B' else totals_a)} BOS in {len(more)} datums vs "
                f"{sum(totals_a if side == 'B' else totals_b)}; {max(chunk_bos_a, chunk_bos_b)} of {n_chunks} "
                f"model_input chunks start with BOS (vs {min(chunk_bos_a, chunk_bos_b)}); {cause}",
                {"bos_id": bos, "bos_per_datum_a": totals_a, "bos_per_datum_b": totals_b,
                 "chunks_starting_with_bos_a": chunk_bos_a, "chunks_starting_with_bos_b": chunk_bos_b,
                 "leading_bos_per_datum_a": [_leading(sum(ch, []), bos) for ch, _, _ in pa],
                 "leading_bos_per_datum_b": [_leading(sum(ch, []), bos) for ch, _, _ in pb]}))
    # Align datums by content (BOS removed): a permutation means batch order differs.
    a_to_b = _align_prefix([_strip(sum(p[0], []), bos) for p in pa], [_strip(sum(p[0], []), bos) for p in pb])
    if all(j is not None for j in a_to_b) and a_to_b != list(range(len(pa))):
        snapshot_same = align is not None and not align.reordered
        out.append(Finding(
            "first_batch", "reordering",
            "the first batch holds the same samples in another order"
            + ("; the dataset snapshot order is identical, so the epoch shuffle is applied at another level "
               "(e.g. to built datums instead of dataset rows) or with another PRNG" if snapshot_same
               else "; the dataset snapshot order differs too (dataset shuffle)"),
            {"permutation_a_to_b": a_to_b, "snapshot_order_same": snapshot_same}))
    max_a, max_b = a.config.get("max_length"), b.config.get("max_length")
    deltas = []
    for i, j in enumerate(a_to_b):
        same_sample = j is not None
        if j is None and i < len(pb) and align is not None and i < len(align.a_to_b) and align.a_to_b[i] == i:
            j = i  # the snapshot says position i holds the same sample on both sides: tokens differ
        if j is None:
            if i < len(pb):
                deltas.append({"datum": i, "len_a": len(pa[i][1]), "len_b": len(pb[i][1]),
                               "different_sample": len(pb[i][1]) - len(pa[i][1]), "extra_bos": 0,
                               "truncation": 0, "residual": 0})
            continue
        (ca, ta, wa), (cb, tb, wb) = pa[i], pb[j]
        ia, ib = sum(ca, []), sum(cb, [])
        extra_bos = (ib.count(bos) - ia.count(bos)) if bos is not None else 0
        sa, sb = _strip(ia, bos), _strip(ib, bos)
        trunc = len(sb) - len(sa) if same_sample and sa != sb and (sa[: len(sb)] == sb or sb[: len(sa)] == sa) else 0
        residual = (len(ib) - len(ia)) - extra_bos - trunc
        if len(ib) != len(ia) or residual:
            deltas.append({"datum": i, "len_a": len(ia), "len_b": len(ib), "extra_bos": extra_bos,
                           "different_sample": 0, "truncation": trunc, "residual": residual,
                           "a_at_max_length": max_a is not None and len(ia) == max_a - 1,
                           "b_at_max_length": max_b is not None and len(ib) == max_b - 1})
        if not same_sample or (len(ib) == len(ia) and (ia != ib or wa != wb or ta != tb)):
            # Whole sequences (first input token + targets) so mask positions are token positions.
            out += _compare_tokens("first_batch", f"datum {i}", ia[:1] + ta, ib[:1] + tb, [0.0, *wa], [0.0, *wb],
                                   bos, dec, report_bos=False)  # BOS is reported per batch above
    if deltas:
        tot = {k: sum(d[k] for d in deltas) for k in ("extra_bos", "different_sample", "truncation", "residual")}
        out.append(Finding(
            "first_batch", "length_delta",
            f"{len(deltas)} datums differ in length: total delta "
            f"{sum(d['len_b'] - d['len_a'] for d in deltas):+d} tokens = extra BOS {tot['extra_bos']:+d} + "
            f"different sample {tot['different_sample']:+d} + truncation {tot['truncation']:+d} + "
            f"residual {tot['residual']:+d}",
            {"totals": tot, "datums": deltas, "max_length_a": max_a, "max_length_b": max_b}))
        if tot["truncation"]:
            out.append(Finding(
                "first_batch", "truncation",
                f"{sum(1 for d in deltas if d['truncation'])} datums are cut at another length "
                f"(max_length {max_a} vs {max_b})",
                {"max_length_a": max_a, "max_length_b": max_b,
                 "datums": [d["datum"] for d in deltas if d["truncation"]]}))
    stored_a, stored_b = a.first_batch.get("payload_hash"), b.first_batch.get("payload_hash")
    if (isinstance(stored_a, str) and isinstance(stored_b, str) and hash_hex(stored_a) != hash_hex(stored_b)
            and content_hash(da) == content_hash(db)):
        how = {"a": hash_recipe(da, stored_a), "b": hash_recipe(db, stored_b)}
        out.append(Finding("first_batch", "serialization_only",
                           "payload_hash differs but the datums are identical: the hash covers differently "
                           f"serialized JSON (A: {how['a']}, B: {how['b']})",
                           {"payload_hash_a": stored_a, "payload_hash_b": stored_b, "hash_method": how},
                           data_difference=False))
    return _group(out)


def _diff_metrics(a: RunArtifacts, b: RunArtifacts) -> list[Finding]:
    if a.metrics is None and b.metrics is None:
        return []
    if a.metrics is None or b.metrics is None:
        return [Finding("metrics", "missing_artifact", f"only run {'A' if a.metrics else 'B'} has metrics.jsonl",
                        data_difference=False)]
    diffs = []
    for step, (ma, mb) in enumerate(zip(a.metrics, b.metrics, strict=False)):
        for k in sorted(set(ma) & set(mb)):
            x, y = ma[k], mb[k]
            if isinstance(x, int | float) and isinstance(y, int | float) and abs(x - y) > 1e-6 * max(1.0, abs(x)):
                diffs.append({"step": step, "metric": k, "a": x, "b": y})
    if not diffs and len(a.metrics) == len(b.metrics):
        return []
    first = diffs[0] if diffs else None
    return [Finding("metrics", "metrics_difference",
                    f"{len(diffs)} metric values differ" + (f"; first at step {first['step']} ({first['metric']}: "
                                                            f"{first['a']} vs {first['b']})" if first else "")
                    + (f"; {len(a.metrics)} vs {len(b.metrics)} steps" if len(a.metrics) != len(b.metrics) else ""),
                    {"differences": diffs[:50]})]


def diff_runs(a: RunArtifacts, b: RunArtifacts) -> ParityReport:
    bos = _bos_id(a, b)
    dec = _Decoder(a.config, b.config)
    findings = _diff_config(a, b)
    snap, align = _diff_snapshot(a, b)
    findings += snap
    findings += _diff_rendered(a, b, align, bos, dec)
    findings += _diff_batch(a, b, align, bos, dec)
    findings += _diff_metrics(a, b)
    return ParityReport(str(a.path), str(b.path), findings)
