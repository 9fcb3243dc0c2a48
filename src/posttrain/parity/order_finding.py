"""The first batch's row order: which snapshot rows each side holds, and the mechanism that put them there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from posttrain.parity.artifacts import RunArtifacts
from posttrain.parity.model import Finding
from posttrain.parity.ordering import Explanation, Observed, explain, fix, seed_roles, why
from posttrain.parity.snapshot import SnapshotAlignment


@dataclass
class Located:
    obs_a: Observed | None
    obs_b: Observed | None
    rows_a: list[int | None]  # per A datum: its row, as a position in A's snapshot
    rows_b: list[int | None]  # per B datum: its row, as a position in A's snapshot
    rows_b_own: list[int | None]  # per B datum: its row, as a position in B's snapshot

    @classmethod
    def build(cls, obs_a: Observed | None, obs_b: Observed | None, align: SnapshotAlignment | None,
              n_a: int, n_b: int) -> Located:
        rows_a: list[int | None] = obs_a.shown() if obs_a else [None] * n_a
        own_b: list[int | None] = obs_b.shown() if obs_b else [None] * n_b
        b_to_a = align.b_to_a() if align is not None else {p: p for p in own_b if p is not None}
        return cls(obs_a, obs_b, rows_a, [None if p is None else b_to_a.get(p) for p in own_b], own_b)


def _sources(run: RunArtifacts, rows: list[int | None]) -> list[Any]:
    samples = run.snapshot["samples"] if run.snapshot else []
    return [samples[p].get("index") if p is not None and p < len(samples) else None for p in rows]


def _mechanism(ex: Explanation) -> dict[str, Any]:
    fits = [h for h in ex.explained_by if h.name != "identity"]
    if not fits:
        return {"side": ex.side, "hypothesis": None, "positions": ex.positions, "tested": ex.tested, "note": ex.note}
    h = fits[0]
    return {"side": ex.side, "hypothesis": h.name, **h.params, "positions": ex.positions, "predicted": h.predicted,
            "ambiguous_with": [o.brief() for o in fits[1:]], "why": why(h), "fix": fix(h, ex.side)}


def _side_text(ex: Explanation) -> str:
    fits = [h for h in ex.explained_by if h.name != "identity"]
    if not fits:
        return (f"run {ex.side}'s order is explained by no tested hypothesis (tested: {'; '.join(ex.tested)}); "
                f"its batch holds its snapshot rows {ex.positions}" + (f"; {ex.note}" if ex.note else ""))
    text = f"run {ex.side}'s order = {fits[0].text}, exactly (predicted rows {fits[0].predicted})"
    if fits[0].name == "reshuffle" and "epoch 0" in fits[0].params["seed_is"]:
        text += ": the set_epoch(seed=epoch) at epoch 0"
    if len(fits) > 1:
        text += "; equally explained by " + "; ".join(h.text for h in fits[1:])
    return text


def _grouping(a: RunArtifacts, b: RunArtifacts, loc: Located) -> Finding:
    na, nb = len(loc.rows_a), len(loc.rows_b)
    bs_a, bs_b = a.config.get("batch_size"), b.config.get("batch_size")
    return Finding(
        "first_batch", "batch_grouping",
        f"the same global order grouped differently into batches: run A's first batch holds snapshot rows "
        f"[0, {na}) ({na} datums), run B's rows [0, {nb}) ({nb} datums); batch_size "
        f"{a.config.get('batch_size')!r} vs {b.config.get('batch_size')!r}",
        {"datums_a": na, "datums_b": nb, "rows_a": loc.rows_a, "rows_b": loc.rows_b,
         "why": f"run B groups {nb} rows per batch instead of {na} (the global row order is the same): "
                + (f"config batch_size {bs_a!r} vs {bs_b!r}" if bs_a != bs_b else "another batch size or drop_last"),
         "fix": f"in run B, group the rows into batches of {na}, as run A does"})


def _evidence(a: RunArtifacts, b: RunArtifacts, loc: Located, pairs: list[int | None],
              snapshot_same: bool) -> dict[str, Any]:
    return {"rows_a": loc.rows_a, "rows_b": loc.rows_b, "rows_b_own": loc.rows_b_own,
            "source_rows_a": _sources(a, loc.rows_a), "source_rows_b": _sources(b, loc.rows_b_own),
            "permutation_a_to_b": pairs if None not in pairs else None, "snapshot_order_same": snapshot_same}


def _same_set(loc: Located, pairs: list[int | None]) -> bool:
    return None not in pairs and len(loc.rows_a) == len(loc.rows_b)


def order_findings(a: RunArtifacts, b: RunArtifacts, loc: Located, pairs: list[int | None],
                   align: SnapshotAlignment | None) -> list[Finding]:
    identity = list(range(len(pairs)))
    if pairs == identity and len(loc.rows_a) == len(loc.rows_b):
        return []
    snapshot_same = align is not None and not align.reordered
    ev = _evidence(a, b, loc, pairs, snapshot_same)
    what = "the same rows in another order" if _same_set(loc, pairs) else "other rows"
    head = (f"the first batches hold {what}: run A holds snapshot rows {loc.rows_a}, run B holds {loc.rows_b} "
            f"(positions in A's snapshot; the dataset snapshots are {'in the same order' if snapshot_same else 'ordered differently'})")
    if loc.obs_a is None or loc.obs_b is None or not any(loc.obs_a.candidates) or not any(loc.obs_b.candidates):
        return [Finding("first_batch", "reordering", head + "; rows not located in the rendered samples, "
                        "mechanism not tested", ev)] if None not in pairs else []
    roles = seed_roles({"run A": a.config.get("seed"), "run B": b.config.get("seed")})
    configured = a.config.get("batch_size")
    bs = configured if isinstance(configured, int) else len(loc.rows_a)
    ex = {"A": explain("A", loc.obs_a, roles, bs), "B": explain("B", loc.obs_b, roles, bs)}
    if ex["A"].follows_snapshot and ex["B"].follows_snapshot:
        if len(loc.rows_a) != len(loc.rows_b) and snapshot_same:
            return [_grouping(a, b, loc)]
        if snapshot_same:
            return []
        text = "; each run batches in its own snapshot order, so the difference comes from the dataset shuffle " \
               "(see dataset_snapshot)"
        return [Finding("first_batch", "reordering", head + text, {**ev, "mechanisms": []})]
    deviating = [e for e in ex.values() if not e.follows_snapshot]
    mechanisms = [_mechanism(e) for e in deviating]
    texts = [_side_text(e) for e in deviating]
    texts += [f"run {e.side} batches in the snapshot order" for e in ex.values() if e.follows_snapshot]
    main = mechanisms[0]
    return [Finding("first_batch", "reordering", head + ". " + "; ".join(texts),
                    {**ev, "mechanism": main, "mechanisms": mechanisms, "explained": main["hypothesis"] is not None,
                     "why": main.get("why"), "fix": main.get("fix")})]
