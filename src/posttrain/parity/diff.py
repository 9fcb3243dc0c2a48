"""Compare two runs layer by layer and diagnose each difference by root cause.

Layers: config → dataset snapshot → rendered samples → first batch → metrics. Causes named:
``config_difference``, ``sample_count``, ``reordering``, ``different_samples``, ``serialization_only``,
``bos_duplication``, ``token_difference``, ``mask_difference``, ``truncation``, ``length_delta``,
``metrics_difference``, ``missing_artifact``. Serialization-only findings never make runs differ.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from posttrain.parity.artifacts import RunArtifacts, canonical_json, content_hash

# Config fields that change the training data or the run; others (paths, timestamps) are informational.
KEY_CONFIG_FIELDS = (
    "model_name", "tokenizer", "renderer", "train_on_what", "max_length", "batch_size", "seed", "shuffle",
    "truncation_side", "learning_rate", "lr", "num_epochs", "lora_rank",
)
WINDOW = 6


@dataclass
class Finding:
    layer: str
    cause: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    data_difference: bool = True


@dataclass
class ParityReport:
    run_a: str
    run_b: str
    findings: list[Finding]

    @property
    def match(self) -> bool:
        return not any(f.data_difference for f in self.findings)

    def causes(self) -> list[str]:
        return [f.cause for f in self.findings]

    def find(self, cause: str) -> list[Finding]:
        return [f for f in self.findings if f.cause == cause]

    def to_json(self) -> dict[str, Any]:
        return {"run_a": self.run_a, "run_b": self.run_b, "match": self.match,
                "findings": [asdict(f) for f in self.findings]}


# -- helpers ------------------------------------------------------------------------------------


def _bos_id(a: RunArtifacts, b: RunArtifacts) -> int | None:
    for run in (a, b):
        bos = run.config.get("bos_token_id")
        if isinstance(bos, int):
            return bos
    # Infer: the first token every rendered sample of both runs starts with.
    firsts = {s["all_tokens"][0] for r in (a, b) if r.rendered for s in r.rendered["samples"] if s.get("all_tokens")}
    return firsts.pop() if len(firsts) == 1 else None


def _leading(tokens: Sequence[int], tok: int | None) -> int:
    n = 0
    while tok is not None and n < len(tokens) and tokens[n] == tok:
        n += 1
    return n


def _strip(tokens: Sequence[int], tok: int | None) -> list[int]:
    return [t for t in tokens if t != tok]


def _msg_key(messages: Any) -> str:
    """Identity of a sample's content, independent of how it was serialized or normalized."""
    return content_hash(_nfc(messages))


def _nfc(obj: Any) -> Any:
    if isinstance(obj, str):
        return unicodedata.normalize("NFC", obj)
    if isinstance(obj, list):
        return [_nfc(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _nfc(v) for k, v in obj.items()}
    return obj


def _escaped_chars(raw: bytes) -> list[str]:
    """Non-ASCII characters a JSON file writes as \\uXXXX escapes (surrogate pairs joined)."""
    found = re.findall(rb"\\u([0-9a-fA-F]{4})(?:\\u(d[c-f][0-9a-fA-F]{2}))?", raw)
    chars: list[str] = []
    for hi, lo in found:
        code = int(hi, 16)
        if code < 0x80:
            continue
        ch = (chr(code) + chr(int(lo, 16))).encode("utf-16", "surrogatepass").decode("utf-16") if lo else chr(code)
        if ch not in chars:
            chars.append(ch)
    return chars


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
        return self.tok.decode(list(tokens)) if self.tok is not None else None


def _missing(layer: str, in_a: bool) -> Finding:
    name = {"dataset_snapshot": "dataset_snapshot.json", "rendered_samples": "rendered_samples.json",
            "first_batch": "first_batch_payload.json"}[layer]
    return Finding(layer, "missing_artifact", f"run {'A' if in_a else 'B'} has no {name}")


# -- layers -------------------------------------------------------------------------------------


def _diff_config(a: RunArtifacts, b: RunArtifacts) -> list[Finding]:
    out = []
    keys = sorted(set(a.config) | set(b.config))
    key_diffs = {k: [a.config.get(k), b.config.get(k)] for k in keys if k in KEY_CONFIG_FIELDS
                 and a.config.get(k) != b.config.get(k)}
    other = {k: [a.config.get(k), b.config.get(k)] for k in keys if k not in KEY_CONFIG_FIELDS
             and a.config.get(k) != b.config.get(k)}
    if key_diffs:
        out.append(Finding("config", "config_difference",
                           "config differs on " + ", ".join(f"{k} ({v[0]!r} vs {v[1]!r})" for k, v in key_diffs.items()),
                           {"fields": key_diffs}))
    if other:
        out.append(Finding("config", "config_difference", "config differs on informational fields: "
                           + ", ".join(other), {"fields": other}, data_difference=False))
    return out


@dataclass
class _SnapshotAlignment:
    a_to_b: list[int | None]  # for each A sample position, the B position with the same content
    reordered: bool


def _diff_snapshot(a: RunArtifacts, b: RunArtifacts) -> tuple[list[Finding], _SnapshotAlignment | None]:
    out: list[Finding] = []
    if a.snapshot is None or b.snapshot is None:
        return [_missing("dataset_snapshot", a.snapshot is None)], None
    sa, sb = a.snapshot["samples"], b.snapshot["samples"]
    if a.snapshot.get("total_count") != b.snapshot.get("total_count"):
        out.append(Finding("dataset_snapshot", "sample_count",
                           f"total_count {a.snapshot.get('total_count')} vs {b.snapshot.get('total_count')}",
                           {"a": a.snapshot.get("total_count"), "b": b.snapshot.get("total_count")}))
    keys_a = [_msg_key(s["messages"]) for s in sa]
    keys_b = [_msg_key(s["messages"]) for s in sb]
    pos_b: dict[str, int] = {}
    for j, k in enumerate(keys_b):
        pos_b.setdefault(k, j)
    a_to_b = [pos_b.get(k) for k in keys_a]
    same_position = [j == i for i, j in enumerate(a_to_b)]
    reordered = any(j is not None for j in a_to_b) and not all(same_position[: min(len(sa), len(sb))])
    if reordered and all(j is not None for j in a_to_b):
        out.append(Finding(
            "dataset_snapshot", "reordering",
            "the same samples appear in another order already in the dataset snapshot: the dataset shuffle "
            "differs (seed or PRNG)",
            {"permutation_a_to_b": a_to_b, "index_a": [s.get("index") for s in sa],
             "index_b": [s.get("index") for s in sb]}))
    missing = [i for i, j in enumerate(a_to_b) if j is None]
    if missing:
        out.append(Finding("dataset_snapshot", "different_samples",
                           f"{len(missing)} of {len(sa)} snapshot samples of A have no equal sample in B",
                           {"positions_a": missing, "index_a": [sa[i].get("index") for i in missing]}))
    out += _serialization(a, b, sa, sb, a_to_b)
    return out, _SnapshotAlignment(a_to_b, reordered)


def _serialization(a: RunArtifacts, b: RunArtifacts, sa: list[dict[str, Any]], sb: list[dict[str, Any]],
                   a_to_b: list[int | None]) -> list[Finding]:
    out: list[Finding] = []
    hash_mismatch = [i for i, j in enumerate(a_to_b) if j is not None
                     and sa[i].get("content_hash") != sb[j].get("content_hash")]
    exact_mismatch = [i for i, j in enumerate(a_to_b) if j is not None
                      and canonical_json(sa[i]["messages"]) != canonical_json(sb[j]["messages"])]
    raw_a = a.raw.get("dataset_snapshot.json", b"")
    raw_b = b.raw.get("dataset_snapshot.json", b"")
    esc_a, esc_b = _escaped_chars(raw_a), _escaped_chars(raw_b)
    if hash_mismatch:
        how = {}
        for side, samples, idx in (("a", sa, hash_mismatch), ("b", sb, [a_to_b[i] for i in hash_mismatch])):
            s = samples[idx[0]]  # type: ignore[index]
            ascii_hash = hashlib.sha256(
                json.dumps(s["messages"], sort_keys=True, ensure_ascii=True, separators=(",", ":")).encode()
            ).hexdigest()
            stored = s.get("content_hash", "")
            how[side] = ("canonical" if stored == content_hash(s["messages"])
                         else "ASCII-escaped JSON" if stored.split(":")[-1] == ascii_hash
                         else "unknown")
        out.append(Finding(
            "dataset_snapshot", "serialization_only",
            f"content_hash differs for {len(hash_mismatch)} samples whose text is equal: hashes computed over "
            f"different JSON (A: {how['a']}, B: {how['b']}); not a data difference",
            {"positions_a": hash_mismatch, "hash_method": how, "escaped_chars_a": esc_a, "escaped_chars_b": esc_b},
            data_difference=False))
    elif esc_a != esc_b:
        side = "B" if esc_b else "A"
        chars = esc_b or esc_a
        out.append(Finding(
            "dataset_snapshot", "serialization_only",
            f"run {side} writes non-ASCII characters as \\u escapes ({', '.join(_describe(c) for c in chars[:8])}); "
            "the decoded text is equal, not a data difference",
            {"escaped_chars_a": esc_a, "escaped_chars_b": esc_b}, data_difference=False))
    if exact_mismatch:
        out.append(Finding(
            "dataset_snapshot", "serialization_only",
            f"{len(exact_mismatch)} samples are equal only after Unicode NFC normalization",
            {"positions_a": exact_mismatch}, data_difference=False))
    return out


def _describe(ch: str) -> str:
    code = "+".join(f"U+{ord(c):04X}" for c in ch)
    try:
        name = " ".join(unicodedata.name(c) for c in ch)
    except ValueError:
        name = "?"
    escaped = "".join(f"\\u{u:04x}" for u in _utf16(ch))
    return f"'{ch}' {code} {name} as {escaped}"


def _utf16(ch: str) -> list[int]:
    data = ch.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def _compare_tokens(layer: str, label: str, ta: Sequence[int], tb: Sequence[int], wa: Sequence[float],
                    wb: Sequence[float], bos: int | None, dec: _Decoder) -> list[Finding]:
    out: list[Finding] = []
    bos_a = [i for i, t in enumerate(ta) if t == bos]
    bos_b = [i for i, t in enumerate(tb) if t == bos]
    if bos is not None and len(bos_a) != len(bos_b):
        out.append(Finding(
            layer, "bos_duplication",
            f"{label}: BOS ({bos}) appears {len(bos_b)} times in B vs {len(bos_a)} in A "
            f"(leading: {_leading(tb, bos)} vs {_leading(ta, bos)})",
            {"bos_id": bos, "count_a": len(bos_a), "count_b": len(bos_b), "positions_a": bos_a[:20],
             "positions_b": bos_b[:20], "leading_a": _leading(ta, bos), "leading_b": _leading(tb, bos)}))
        # Compare what remains once BOS is removed (weights of removed tokens dropped too).
        ta, wa = [t for t in ta if t != bos], [w for t, w in zip(ta, wa, strict=False) if t != bos]
        tb, wb = [t for t in tb if t != bos], [w for t, w in zip(tb, wb, strict=False) if t != bos]
    if list(ta) != list(tb):
        i = next((k for k, (x, y) in enumerate(zip(ta, tb, strict=False)) if x != y), min(len(ta), len(tb)))
        win_a, win_b = list(ta[max(0, i - WINDOW) : i + WINDOW]), list(tb[max(0, i - WINDOW) : i + WINDOW])
        cause = "truncation" if (list(ta[: len(tb)]) == list(tb) or list(tb[: len(ta)]) == list(ta)) else "token_difference"
        out.append(Finding(
            layer, cause,
            f"{label}: tokens diverge at index {i} (lengths {len(ta)} vs {len(tb)})"
            + ("; one is a prefix of the other" if cause == "truncation" else ""),
            {"first_divergence": i, "len_a": len(ta), "len_b": len(tb), "window_start": max(0, i - WINDOW),
             "window_a": win_a, "window_b": win_b, "decoded_a": dec(win_a), "decoded_b": dec(win_b)}))
        return out
    only_a = [k for k, (x, y) in enumerate(zip(wa, wb, strict=False)) if x > 0 and y <= 0]
    only_b = [k for k, (x, y) in enumerate(zip(wa, wb, strict=False)) if y > 0 and x <= 0]
    if only_a or only_b:
        dec_b = [dec(list(ta[s : e + 1])) for s, e in _ranges(only_b)[:5]]
        dec_a = [dec(list(ta[s : e + 1])) for s, e in _ranges(only_a)[:5]]
        out.append(Finding(
            layer, "mask_difference",
            f"{label}: same tokens, different loss mask: {len(only_b)} tokens trained only in B, "
            f"{len(only_a)} only in A",
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
                               rb[j]["weights"], bos, dec)
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
        out.append(Finding(layer, cause, f"{len(fs)} items: {fs[0].summary}; …",
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
        trunc = 0
        if sa != sb and (sa[: len(sb)] == sb or sb[: len(sa)] == sa):
            trunc = len(sb) - len(sa)
        residual = (len(ib) - len(ia)) - extra_bos - trunc
        if len(ib) != len(ia) or residual:
            deltas.append({"datum": i, "len_a": len(ia), "len_b": len(ib), "extra_bos": extra_bos,
                           "different_sample": 0, "truncation": trunc, "residual": residual,
                           "a_at_max_length": max_a is not None and len(ia) == max_a - 1,
                           "b_at_max_length": max_b is not None and len(ib) == max_b - 1})
        elif ia != ib or wa != wb or ta != tb:
            out += _compare_tokens("first_batch", f"datum {i}", ia, ib, wa, wb, bos, dec)
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
    if stored_a != stored_b and content_hash(da) == content_hash(db):
        out.append(Finding("first_batch", "serialization_only",
                           "payload_hash differs but the datums are identical: the hash was computed over "
                           "differently serialized JSON", {"payload_hash_a": stored_a, "payload_hash_b": stored_b},
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
    dec = _Decoder(a.config)
    findings = _diff_config(a, b)
    snap, align = _diff_snapshot(a, b)
    findings += snap
    findings += _diff_rendered(a, b, align, bos, dec)
    findings += _diff_batch(a, b, align, bos, dec)
    findings += _diff_metrics(a, b)
    return ParityReport(str(a.path), str(b.path), findings)
