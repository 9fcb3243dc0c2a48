"""The dataset-snapshot layer: which samples each run shuffled where (serialization notes: :mod:`.serialization`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from posttrain.parity.artifacts import RunArtifacts, content_hash
from posttrain.parity.model import Finding
from posttrain.parity.ordering import ShuffleMatch, identify_shuffle
from posttrain.parity.serialization import nfc, serialization_findings

# Seeds tried when naming the shuffle behind a snapshot order, besides the runs' own seeds.
COMMON_SEEDS = (*range(16), 42)
LARGE = 200_000


def msg_key(messages: Any) -> str:
    """Identity of a sample's content, independent of how it was serialized or normalized."""
    return content_hash(nfc(messages))


def align_by_content(keys_a: Sequence[str], keys_b: Sequence[str]) -> list[int | None]:
    """For each A position, the B position holding the same content.

    Same position first, so duplicate conversations stay paired where they sit; otherwise the first
    unused B position with equal content (a hash alone would send every duplicate to one place)."""
    same = [i < len(keys_b) and keys_b[i] == k for i, k in enumerate(keys_a)]
    free: dict[str, list[int]] = {}
    for j, k in enumerate(keys_b):
        if not (j < len(keys_a) and same[j]):
            free.setdefault(k, []).append(j)
    out: list[int | None] = []
    for i, k in enumerate(keys_a):
        out.append(i if same[i] else (free[k].pop(0) if free.get(k) else None))
    return out


@dataclass
class SnapshotAlignment:
    a_to_b: list[int | None]  # for each A sample position, the B position with the same content
    reordered: bool

    def b_to_a(self) -> dict[int, int]:
        return {j: i for i, j in enumerate(self.a_to_b) if j is not None}


def _indices(run: RunArtifacts) -> list[int] | None:
    idx = [s.get("index") for s in run.snapshot["samples"]] if run.snapshot else []
    return idx if idx and all(isinstance(i, int) for i in idx) else None  # type: ignore[return-value]


def _shuffle_text(m: ShuffleMatch) -> str:
    if m.shuffle is None:
        return f"run {m.side}: none of the tested shuffles"
    if m.shuffle == "none":
        return f"run {m.side}: input order (not shuffled)"
    return f"run {m.side}: {m.shuffle} with seed {m.seed}"


def name_shuffles(a: RunArtifacts, b: RunArtifacts) -> tuple[str, dict[str, Any]]:
    """Test which shuffle and seed produced each snapshot order (from the ``index`` fields)."""
    ia, ib = _indices(a), _indices(b)
    n = a.snapshot.get("total_count") if a.snapshot else None
    if ia is None or ib is None or not isinstance(n, int):
        return "the dataset shuffle differs (seed or PRNG; snapshot indices missing, not tested)", {}
    own = {s for s in (a.config.get("seed"), b.config.get("seed")) if isinstance(s, int) and not isinstance(s, bool)}
    # Each tested shuffle permutes all n rows: on large runs try only the runs' seeds and 0.
    seeds = sorted({*(COMMON_SEEDS if n <= LARGE else (0,)), *own})
    ma, mb = identify_shuffle("A", ia, n, seeds), identify_shuffle("B", ib, n, seeds)
    ev = {"shuffle_a": ma.shuffle, "seed_a": ma.seed, "shuffle_b": mb.shuffle, "seed_b": mb.seed,
          "seeds_tested": seeds}
    if ma.shuffle == mb.shuffle and ma.shuffle not in (None, "none"):
        verdict = f"another seed: {ma.shuffle} with seed {ma.seed} in run A vs {mb.seed} in run B"
    elif ma.shuffle is not None and mb.shuffle is not None:
        verdict = f"another shuffle (PRNG): {_shuffle_text(ma)}; {_shuffle_text(mb)}"
    else:
        verdict = (f"another PRNG or shuffle algorithm: {_shuffle_text(ma)}; {_shuffle_text(mb)} "
                   f"(tested {', '.join(SHUFFLES_TESTED)} with seeds {seeds[0]}..{seeds[-1]})")
    return verdict, ev


SHUFFLES_TESTED = ("datasets.Dataset.shuffle", "random.Random(seed).shuffle",
                   "numpy.random.RandomState(seed).permutation")


def _other_rows_by_shuffle(a: RunArtifacts, b: RunArtifacts) -> tuple[str, dict[str, Any]] | None:
    """Snapshots of the same dataset shuffled differently show other rows: name the shuffles when
    both are known and every row index the two snapshots share holds the same content."""
    ia, ib = _indices(a), _indices(b)
    if ia is None or ib is None or a.snapshot.get("total_count") != b.snapshot.get("total_count"):  # type: ignore[union-attr]
        return None
    by_index = {i: msg_key(s["messages"]) for i, s in zip(ib, b.snapshot["samples"], strict=True)}  # type: ignore[index]
    if any(i in by_index and by_index[i] != msg_key(s["messages"])
           for i, s in zip(ia, a.snapshot["samples"], strict=True)):  # type: ignore[index]
        return None
    verdict, ev = name_shuffles(a, b)
    known = ev and ev["shuffle_a"] is not None and ev["shuffle_b"] is not None
    return (verdict, ev) if known and (ev["shuffle_a"], ev["seed_a"]) != (ev["shuffle_b"], ev["seed_b"]) else None


def diff_snapshot(a: RunArtifacts, b: RunArtifacts) -> tuple[list[Finding], SnapshotAlignment | None]:
    if a.snapshot is None or b.snapshot is None:
        side = "A" if a.snapshot is None else "B"
        return [Finding("dataset_snapshot", "missing_artifact", f"run {side} has no dataset_snapshot.json")], None
    out: list[Finding] = []
    sa, sb = a.snapshot["samples"], b.snapshot["samples"]
    if a.snapshot.get("total_count") != b.snapshot.get("total_count"):
        out.append(Finding("dataset_snapshot", "sample_count",
                           f"total_count {a.snapshot.get('total_count')} vs {b.snapshot.get('total_count')}",
                           {"a": a.snapshot.get("total_count"), "b": b.snapshot.get("total_count")}))
    a_to_b = align_by_content([msg_key(s["messages"]) for s in sa], [msg_key(s["messages"]) for s in sb])
    reordered = any(j is not None and j != i for i, j in enumerate(a_to_b))
    if reordered and all(j is not None for j in a_to_b):
        verdict, ev = name_shuffles(a, b)
        out.append(Finding(
            "dataset_snapshot", "reordering",
            f"the same samples appear in another order already in the dataset snapshot: {verdict}",
            {"permutation_a_to_b": a_to_b, "index_a": [s.get("index") for s in sa],
             "index_b": [s.get("index") for s in sb], "shuffle_verdict": verdict, **ev}))
    missing = [i for i, j in enumerate(a_to_b) if j is None]
    shuffled = _other_rows_by_shuffle(a, b) if missing else None
    if shuffled is not None:
        verdict, ev = shuffled
        out.append(Finding(
            "dataset_snapshot", "reordering",
            f"the snapshots show other rows of the same dataset ({len(missing)} of {len(sa)} of A's rows are not in "
            f"B's snapshot; rows with the same index are equal): {verdict}",
            {"permutation_a_to_b": a_to_b, "index_a": [s.get("index") for s in sa],
             "index_b": [s.get("index") for s in sb], "shuffle_verdict": verdict, **ev}))
    elif missing:
        out.append(Finding("dataset_snapshot", "different_samples",
                           f"{len(missing)} of {len(sa)} snapshot samples of A have no equal sample in B",
                           {"positions_a": missing, "index_a": [sa[i].get("index") for i in missing]}))
    out += serialization_findings(a, b, a_to_b)
    return out, SnapshotAlignment(a_to_b, reordered)
