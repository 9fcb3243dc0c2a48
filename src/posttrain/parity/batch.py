"""The first-batch layer: which rows each batch holds, why, and how each datum differs.

Every datum is first located in its own run's rendered samples (by its tokens), which tells which
snapshot rows each side's batch holds even when the two batches share no row; the row order is then
explained by :mod:`posttrain.parity.ordering`, and datums holding the same row are compared token by
token, mask by mask and weight by weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from posttrain.parity.artifacts import RunArtifacts, content_hash, hash_hex
from posttrain.parity.consistency import ParsedDatum, check_batches, parse_datum, shift_problem
from posttrain.parity.model import Finding
from posttrain.parity.order_finding import Located, order_findings
from posttrain.parity.ordering import Observed
from posttrain.parity.serialization import hash_recipe
from posttrain.parity.snapshot import SnapshotAlignment
from posttrain.parity.tokens import Decoder, compare_tokens, group, leading, strip


def _fits(tokens: Sequence[int], sample: Sequence[int]) -> bool:
    return len(sample) >= len(tokens) > 0 and list(sample[: len(tokens)]) == list(tokens)


def _candidates(d: ParsedDatum, samples: list[dict[str, Any]], bos: int | None) -> tuple[int, ...]:
    """Rendered samples this datum was cut from: its input tokens are a prefix of the sample's."""
    found = tuple(p for p, s in enumerate(samples) if _fits(d.inputs, s["all_tokens"]))
    if not found and bos is not None:  # a writer whose rendered samples and datums disagree on BOS
        found = tuple(p for p, s in enumerate(samples) if _fits(strip(d.inputs, bos), strip(s["all_tokens"], bos)))
    return found


def locate(run: RunArtifacts, datums: list[ParsedDatum], bos: int | None) -> Observed | None:
    if run.rendered is None:
        return None
    samples = run.rendered["samples"]
    total = run.snapshot.get("total_count") if run.snapshot else None
    n_rows = total if isinstance(total, int) and total >= len(samples) else len(samples)
    return Observed([_candidates(d, samples, bos) for d in datums], n_rows, len(samples),
                    [len(s["all_tokens"]) for s in samples])


def _bos_finding(pa: list[ParsedDatum], pb: list[ParsedDatum], bos: int) -> Finding | None:
    # BOS per datum and per chunk: extra BOS at chunk starts is the signature of a per-chunk encode
    # that adds special tokens.
    totals_a = [d.inputs.count(bos) for d in pa]
    totals_b = [d.inputs.count(bos) for d in pb]
    n = min(len(pa), len(pb))  # a batch with more datums has more BOS without any duplication
    if totals_a[:n] == totals_b[:n]:
        return None
    chunk_a = sum(1 for d in pa for c in d.chunks if c and c[0] == bos)
    chunk_b = sum(1 for d in pb for c in d.chunks if c and c[0] == bos)
    side, more = ("B", pb) if sum(totals_b) > sum(totals_a) else ("A", pa)
    n_chunks = sum(len(d.chunks) for d in more)
    at_starts = max(chunk_a, chunk_b) > min(chunk_a, chunk_b)
    cause = ("the extra BOS sit at chunk starts: the per-chunk encode adds special tokens — encode each chunk with "
             "add_special_tokens=False and place BOS once" if at_starts
             else "the extra BOS are inside chunks: special tokens are added when encoding pieces of text")
    hi, lo = (sum(totals_b), sum(totals_a)) if side == "B" else (sum(totals_a), sum(totals_b))
    return Finding(
        "first_batch", "bos_duplication",
        f"run {side} has {hi} BOS in {len(more)} datums vs {lo}; {max(chunk_a, chunk_b)} of {n_chunks} "
        f"model_input chunks start with BOS (vs {min(chunk_a, chunk_b)}); {cause}",
        {"bos_id": bos, "bos_per_datum_a": totals_a, "bos_per_datum_b": totals_b,
         "chunks_starting_with_bos_a": chunk_a, "chunks_starting_with_bos_b": chunk_b, "at_chunk_starts": at_starts,
         "leading_bos_per_datum_a": [leading(d.inputs, bos) for d in pa],
         "leading_bos_per_datum_b": [leading(d.inputs, bos) for d in pb]})


def _content_pairs(pa: list[ParsedDatum], pb: list[ParsedDatum], bos: int | None) -> list[int | None]:
    """Fallback pairing by content (BOS removed; truncation may have cut either one short)."""
    xs, ys = [strip(d.inputs, bos) for d in pa], [strip(d.inputs, bos) for d in pb]

    def compatible(x: list[int], y: list[int]) -> bool:
        n = min(len(x), len(y))
        return n > 0 and x[:n] == y[:n]

    used: set[int] = set()
    out: list[int | None] = []
    for i, x in enumerate(xs):
        order = [i] if i < len(ys) else []
        order += [j for j in range(len(ys)) if j != i]
        j = next((j for j in order if j not in used and ys[j] == x), None)
        if j is None:
            j = next((j for j in order if j not in used and compatible(x, ys[j])), None)
        out.append(j)
        if j is not None:
            used.add(j)
    return out


def _pairs(loc: Located, fallback: list[int | None]) -> list[int | None]:
    """For each A datum, the B datum holding the same row: by row location, else by content."""
    used: set[int] = set()
    out: list[int | None] = []
    for i, row in enumerate(loc.rows_a):
        order = [i] + [j for j in range(len(loc.rows_b)) if j != i]
        j = next((j for j in order if j < len(loc.rows_b) and j not in used and row is not None
                  and loc.rows_b[j] == row), None)
        if j is None and fallback[i] is not None and fallback[i] not in used:
            j = fallback[i]
        out.append(j)
        if j is not None:
            used.add(j)
    return out


def _compare_pair(label: str, da: ParsedDatum, db: ParsedDatum, bos: int | None, dec: Decoder) -> list[Finding]:
    """Tokens, mask and weights of two datums of one row; BOS and truncation are the length layer's."""
    def clean(d: ParsedDatum) -> tuple[list[int], list[float]]:
        kept = [(t, w) for t, w in zip(d.seq, d.seq_weights, strict=False) if t != bos]
        return [t for t, _ in kept], [w for _, w in kept]

    (ta, wa), (tb, wb) = clean(da), clean(db)
    if shift_problem(da) or shift_problem(db):  # targets are reported already; compare the inputs alone
        ta, tb = strip(da.inputs, bos), strip(db.inputs, bos)
        wa, wb = [0.0] * len(ta), [0.0] * len(tb)
    n = min(len(ta), len(tb))
    if ta[:n] == tb[:n]:  # one cut shorter: compare the part both hold
        ta, wa, tb, wb = ta[:n], wa[:n], tb[:n], wb[:n]
    return compare_tokens("first_batch", label, ta, tb, wa, wb, None, dec)


def _counterfactual(k: int, a: RunArtifacts, loc: Located) -> list[int] | None:
    """Run A's datum input for the row run B's datum k holds: A's rendering of it, cut at A's max_length."""
    row = loc.rows_b[k] if k < len(loc.rows_b) else None
    if row is None or a.rendered is None or row >= len(a.rendered["samples"]):
        return None
    tokens = a.rendered["samples"][row]["all_tokens"]
    max_a = a.config.get("max_length")
    cut = min(len(tokens), max_a) if isinstance(max_a, int) else len(tokens)
    return list(tokens[: cut - 1])


def _delta(k: int, ia: list[int], ib: list[int], base: list[int] | None, bos: int | None) -> dict[str, Any]:
    """len_b - len_a = different sample + extra BOS + truncation + residual, exactly."""
    if base is None:  # the row B holds is unknown to A: the whole delta is the other sample's
        return {"datum": k, "len_a": len(ia), "len_b": len(ib), "different_sample": len(ib) - len(ia),
                "extra_bos": 0, "truncation": 0, "residual": 0}
    extra = (ib.count(bos) - base.count(bos)) if bos is not None else 0
    sb, sc = strip(ib, bos), strip(base, bos)
    trunc = len(sb) - len(sc) if sb != sc and (sb[: len(sc)] == sc or sc[: len(sb)] == sb) else 0
    return {"datum": k, "len_a": len(ia), "len_b": len(ib), "different_sample": len(base) - len(ia),
            "extra_bos": extra, "truncation": trunc, "residual": len(ib) - len(base) - extra - trunc}


def _length_findings(a: RunArtifacts, b: RunArtifacts, pa: list[ParsedDatum], pb: list[ParsedDatum],
                     pairs: list[int | None], loc: Located, bos: int | None) -> list[Finding]:
    max_a, max_b = a.config.get("max_length"), b.config.get("max_length")
    deltas = []
    for k in range(min(len(pa), len(pb))):
        ia, ib = pa[k].inputs, pb[k].inputs
        base = ia if pairs[k] == k else _counterfactual(k, a, loc)
        d = _delta(k, ia, ib, base, bos)
        if d["len_a"] != d["len_b"] or any(d[key] for key in ("different_sample", "extra_bos", "truncation")):
            d.update(row_a=loc.rows_a[k] if k < len(loc.rows_a) else None,
                     row_b=loc.rows_b[k] if k < len(loc.rows_b) else None,
                     a_at_max_length=isinstance(max_a, int) and len(ia) == max_a - 1,
                     b_at_max_length=isinstance(max_b, int) and len(ib) == max_b - 1)
            deltas.append(d)
    if not deltas:
        return []
    keys = ("extra_bos", "different_sample", "truncation", "residual")
    tot = {key: sum(d[key] for d in deltas) for key in keys}
    first = deltas[0]
    labels = {"extra_bos": "extra BOS", "different_sample": "different sample", "truncation": "truncation",
              "residual": "residual"}
    parts = ", ".join(f"{labels[key]} {first[key]:+d}" for key in keys if first[key])
    out = [Finding(
        "first_batch", "length_delta",
        f"{len(deltas)} datums differ in length: total delta {sum(d['len_b'] - d['len_a'] for d in deltas):+d} "
        f"tokens = extra BOS {tot['extra_bos']:+d} + different sample {tot['different_sample']:+d} + truncation "
        f"{tot['truncation']:+d} + residual {tot['residual']:+d}; datum {first['datum']}: {first['len_a']} vs "
        f"{first['len_b']} tokens ({parts or 'no delta'})",
        {"totals": tot, "datums": deltas, "max_length_a": max_a, "max_length_b": max_b})]
    cut = [d["datum"] for d in deltas if d["truncation"]]
    if cut:
        out.append(Finding("first_batch", "truncation",
                           f"{len(cut)} datums are cut at another length (max_length {max_a} vs {max_b})",
                           {"max_length_a": max_a, "max_length_b": max_b, "datums": cut}))
    return out


def _weights_summary(findings: list[Finding], a: RunArtifacts, b: RunArtifacts, n: int) -> list[Finding]:
    """One weight finding for the batch, naming the config field behind it when there is one."""
    ws = [f for f in findings if f.cause == "weight_difference"]
    if not ws:
        return findings
    kinds = {(f.evidence["kind"], f.evidence.get("factor")) for f in ws}
    text = ws[0].evidence["text"] if len(kinds) == 1 else "weights differ"
    ra, rb = a.config.get("reduction"), b.config.get("reduction")
    cause = ""
    if ra != rb and ws[0].evidence["kind"].startswith("normalised"):
        cause = f"; config reduction {ra!r} vs {rb!r} is the cause (mean reduction divides each datum's weights by their sum)"
    merged = Finding("first_batch", "weight_difference",
                     f"{text} in {len(ws)} of {n} datums (same tokens, same loss mask){cause}",
                     {"kind": ws[0].evidence["kind"] if len(kinds) == 1 else "mixed",
                      "factor": ws[0].evidence.get("factor"), "reduction_a": ra, "reduction_b": rb,
                      "config_cause": bool(cause), "items": [{"summary": f.summary, **f.evidence} for f in ws]})
    return [f for f in findings if f.cause != "weight_difference"] + [merged]


def diff_batch(a: RunArtifacts, b: RunArtifacts, align: SnapshotAlignment | None, bos: int | None,
               dec: Decoder) -> list[Finding]:
    if a.first_batch is None or b.first_batch is None:
        side = "A" if a.first_batch is None else "B"
        return [Finding("first_batch", "missing_artifact", f"run {side} has no first_batch_payload.json")]
    da, db = a.first_batch["datums"], b.first_batch["datums"]
    pa, pb = [parse_datum(d) for d in da], [parse_datum(d) for d in db]
    out: list[Finding] = check_batches(pa, pb)
    bos_f = _bos_finding(pa, pb, bos) if bos is not None else None
    out += [bos_f] if bos_f else []
    loc = Located.build(locate(a, pa, bos), locate(b, pb, bos), align, len(pa), len(pb))
    pairs = _pairs(loc, _content_pairs(pa, pb, bos))
    out += order_findings(a, b, loc, pairs, align)
    out += _length_findings(a, b, pa, pb, pairs, loc, bos)
    compared: list[Finding] = []
    for i, j in enumerate(pairs):
        if j is not None:
            compared += _compare_pair(f"datum {i}" + (f" (B datum {j})" if j != i else ""), pa[i], pb[j], bos, dec)
    out += _weights_summary(compared, a, b, len(pa))
    stored_a, stored_b = a.first_batch.get("payload_hash"), b.first_batch.get("payload_hash")
    if (isinstance(stored_a, str) and isinstance(stored_b, str) and hash_hex(stored_a) != hash_hex(stored_b)
            and content_hash(da) == content_hash(db)):
        how = {"a": hash_recipe(da, stored_a), "b": hash_recipe(db, stored_b)}
        out.append(Finding("first_batch", "serialization_only",
                           "payload_hash differs but the datums are identical: the hash covers differently "
                           f"serialized JSON (A: {how['a']}, B: {how['b']})",
                           {"payload_hash_a": stored_a, "payload_hash_b": stored_b, "hash_method": how},
                           data_difference=False))
    return group(out)
