"""Which mechanism produced a row order: hypotheses tested against the evidence, never guessed.

The evidence for a first batch is, per datum, the snapshot positions whose rendered tokens the datum
holds (several when the snapshot has duplicates or truncation leaves only a shared prefix; none when
the row lies outside the snapshot). Each hypothesis predicts the positions the first batch would
hold; it *explains* the batch when every prediction is among the datum's candidates (a datum outside
the snapshot must be predicted outside it too). A permutation no hypothesis explains is reported as
such, with the positions, never forced into the nearest hypothesis.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np


@lru_cache(maxsize=4)  # orders of large runs are big: keep only the few a diff asks for
def datasets_order(n: int, seed: int) -> tuple[int, ...]:
    """The permutation ``datasets.Dataset.shuffle(seed)`` applies to ``n`` rows (what ``set_epoch`` does)."""
    import datasets

    return tuple(datasets.Dataset.from_dict({"i": range(n)}).shuffle(seed=seed)["i"])


def _python_order(n: int, seed: int) -> tuple[int, ...]:
    rows = list(range(n))
    random.Random(seed).shuffle(rows)
    return tuple(rows)


def _numpy_legacy_order(n: int, seed: int) -> tuple[int, ...]:
    return tuple(int(i) for i in np.random.RandomState(seed).permutation(n))


# Dataset shuffles a port may use instead of datasets': name → order(n, seed).
SHUFFLES: dict[str, Callable[[int, int], tuple[int, ...]]] = {
    "datasets.Dataset.shuffle": datasets_order,
    "random.Random(seed).shuffle": _python_order,
    "numpy.random.RandomState(seed).permutation": _numpy_legacy_order,
}


@dataclass
class Observed:
    """One side's first batch located in that side's own snapshot."""

    candidates: list[tuple[int, ...]]  # per datum: snapshot positions it matches (empty: outside the snapshot)
    n_rows: int  # rows in the epoch (the snapshot's total_count)
    n_known: int  # the snapshot covers positions [0, n_known)
    lengths: list[int]  # token count of each snapshot row, for the by-length hypotheses

    def shown(self) -> list[int | None]:
        """One position per datum (the first candidate not taken by an earlier datum)."""
        used: set[int] = set()
        out: list[int | None] = []
        for cands in self.candidates:
            pick = next((c for c in cands if c not in used), cands[0] if cands else None)
            out.append(pick)
            if pick is not None:
                used.add(pick)
        return out


@dataclass
class Hypothesis:
    name: str  # identity | reshuffle | sorted_length | reversed | strided | contiguous | within_batch
    params: dict[str, Any]
    text: str  # the mechanism, in words
    predicted: list[int]  # snapshot positions the first batch would hold

    def explains(self, obs: Observed) -> bool:
        if len(self.predicted) != len(obs.candidates) or not any(obs.candidates):
            return False
        for pred, cands in zip(self.predicted, obs.candidates, strict=True):
            if not cands:
                if pred < obs.n_known:  # predicted a row the snapshot shows, but the datum matches none
                    return False
            elif pred not in cands:
                return False
        return True

    def brief(self) -> dict[str, Any]:
        return {"hypothesis": self.name, **self.params, "predicted": self.predicted}


@dataclass
class Explanation:
    side: str
    positions: list[int | None]
    explained_by: list[Hypothesis]
    tested: list[str] = field(default_factory=list)
    note: str | None = None  # what the evidence shows even when no hypothesis explains the order

    @property
    def follows_snapshot(self) -> bool:
        return any(h.name == "identity" for h in self.explained_by)


def seed_roles(seeds: dict[str, Any]) -> dict[int, list[str]]:
    """Candidate seeds for a second shuffle: 0, the epoch (0 for the first batch), each run's seed."""
    roles: dict[int, list[str]] = {0: ["epoch 0"]}
    for who, s in seeds.items():
        if isinstance(s, int) and not isinstance(s, bool):
            roles.setdefault(s, []).append(f"{who} seed")
    return roles


def _reshuffles(n: int, m: int, roles: dict[int, list[str]]) -> list[Hypothesis]:
    return [Hypothesis("reshuffle", {"seed": s, "seed_is": r},
                       f"the snapshot order shuffled again with datasets.Dataset.shuffle(seed={s}) ({', '.join(r)})",
                       list(datasets_order(n, s)[:m])) for s, r in sorted(roles.items())]


def _by_length(obs: Observed, m: int) -> list[Hypothesis]:
    if obs.n_known < obs.n_rows or len(obs.lengths) < obs.n_rows:
        return []  # needs every row's length: only a full snapshot shows it
    # A stable sort (ties keep snapshot order), so rows of equal length can never fake a sort.
    rows = range(obs.n_rows)
    out = []
    for direction, sign in (("ascending", 1), ("descending", -1)):
        order = sorted(rows, key=_signed_length(obs, sign))
        out.append(Hypothesis("sorted_length", {"direction": direction},
                              f"rows sorted by token count, {direction} (stable sort)", order[:m]))
    return out


def _strided_prefix(n: int, s: int, m: int) -> list[int]:
    out: list[int] = []
    for w in range(s):
        for i in range(w, n, s):
            if len(out) == m:
                return out
            out.append(i)
    return out


def _strided(obs: Observed, m: int) -> list[Hypothesis]:
    # The stride is fitted on datum 1 (datum 0 must be row 0), then tested on every other datum.
    n = obs.n_rows
    if m < 2 or 0 not in obs.candidates[0]:
        return []
    out = []
    for s in sorted(c for c in obs.candidates[1] if 2 <= c < n):
        out.append(Hypothesis(
            "strided", {"stride": s},
            f"strided / round-robin interleaving with stride {s}: rows 0, {s}, {2 * s}, … then 1, {s + 1}, … "
            f"(a parallel map over {s} workers, row i on worker i mod {s}, results concatenated per worker)",
            _strided_prefix(n, s, m)))
    return out


def _contiguous(obs: Observed, m: int, batch_size: int) -> list[Hypothesis]:
    # The offset is fitted on datum 0, then tested on every other datum.
    n = obs.n_rows
    out = []
    for r in sorted(c for c in obs.candidates[0] if 0 < c <= n - m) if m >= 2 else []:
        if batch_size and r == n % batch_size:
            text = (f"the first {r} rows (n mod batch size = {n} mod {batch_size}) skipped: the partial batch is "
                    "dropped at the start instead of the end (drop_last)")
        elif batch_size and r % batch_size == 0:
            text = (f"the same rows grouped into the same batches, but batch {r // batch_size} comes first: "
                    "batches, not rows, are visited in another order")
        else:
            text = (f"a contiguous block of rows starting at row {r}: chunked processing that returned the chunk "
                    f"starting at row {r} first")
        out.append(Hypothesis("contiguous", {"offset": r}, text, list(range(r, r + m))))
    return out


def _signed_length(obs: Observed, sign: int) -> Callable[[int], int]:
    return lambda i: sign * obs.lengths[i]


def _within_batch(obs: Observed, m: int) -> list[Hypothesis]:
    out = []
    if len(obs.lengths) >= m:
        for direction, sign in (("ascending", 1), ("descending", -1)):
            order = sorted(range(m), key=_signed_length(obs, sign))
            out.append(Hypothesis("within_batch", {"order": f"sorted by token count, {direction}"},
                                  f"the snapshot's first-batch rows sorted by token count, {direction} (stable), "
                                  "inside the batch", order))
    return out


def hypotheses(obs: Observed, roles: dict[int, list[str]], batch_size: int) -> list[Hypothesis]:
    n, m = obs.n_rows, len(obs.candidates)
    return ([Hypothesis("identity", {}, "the snapshot order", list(range(m)))]
            + _reshuffles(n, m, roles) + _by_length(obs, m)
            + [Hypothesis("reversed", {}, "the snapshot order reversed", [n - 1 - k for k in range(m)])]
            + _strided(obs, m) + _contiguous(obs, m, batch_size))


WITHIN_NOTE = ("the batch holds the same rows as the snapshot's first batch, so the order changes after batching "
               "(datums reordered, not rows)")


def explain(side: str, obs: Observed, roles: dict[int, list[str]], batch_size: int) -> Explanation:
    """Every hypothesis that explains ``obs`` exactly (identity first); a summary of those tested."""
    positions = obs.shown()
    m = len(positions)
    if not any(obs.candidates):
        return Explanation(side, positions, [], ["none testable: no datum matches a snapshot row"])
    same_rows = None not in positions and sorted(positions) == list(range(m))  # type: ignore[type-var]
    hyps = hypotheses(obs, roles, batch_size) + (_within_batch(obs, m) if same_rows else [])
    tested = ["snapshot order", f"datasets reshuffle with seed {sorted(roles)}",
              "sorted by token count (ascending, descending)" if _by_length(obs, 1) else
              "sorted by token count: not testable (the snapshot does not cover every row)",
              "reversed", "strided (stride fitted on datum 1)", "contiguous block (offset fitted on datum 0)"]
    tested += ["sorted by token count inside the batch"] if same_rows else []
    return Explanation(side, positions, [h for h in hyps if h.explains(obs)], tested,
                       WITHIN_NOTE if same_rows else None)


@dataclass
class ShuffleMatch:
    side: str
    shuffle: str | None  # name from SHUFFLES, "none" (input order), or None when no tested shuffle fits
    seed: int | None


def identify_shuffle(side: str, indices: Sequence[int], n_rows: int, seeds: Sequence[int]) -> ShuffleMatch:
    """Which tested shuffle (and seed) maps the input rows to a snapshot's ``index`` order."""
    k = len(indices)
    if list(indices) == list(range(k)):
        return ShuffleMatch(side, "none", None)
    for name, order in SHUFFLES.items():
        for s in seeds:
            if list(order(n_rows, s)[:k]) == list(indices):
                return ShuffleMatch(side, name, s)
    return ShuffleMatch(side, None, None)


def why(h: Hypothesis) -> str:
    """The mechanism behind a hypothesis, as the report states it."""
    if h.name == "reshuffle" and "epoch 0" in h.params["seed_is"]:
        return ("a second shuffle before the first batch: the training loop's set_epoch(seed=epoch) at epoch 0 "
                "(tinker-cookbook's SFT loop calls dataset.set_epoch(seed=epoch) at the start of every epoch, "
                "epoch 0 included), on top of the builder's shuffle that the snapshot shows")
    if h.name == "reshuffle":
        return f"a second shuffle with seed {h.params['seed']} before the first batch, on top of the snapshot's"
    return h.text


_UNDO = {
    "sorted_length": "do not sort rows by length; batch them in the dataset (snapshot) order",
    "reversed": "iterate the rows forwards",
    "strided": "collect the parallel map's results in row order (an ordered map, or sort results by row index)",
    "within_batch": "keep the datums in row order inside the batch",
}


def fix(h: Hypothesis, side: str) -> str:
    """The change to run B that gives parity with run A (A is the reference)."""
    if side == "A" and h.name == "reshuffle":
        seed = "epoch" if "epoch 0" in h.params["seed_is"] else str(h.params["seed"])
        return (f"in run B, shuffle the rows again with datasets.Dataset.shuffle(seed={seed}) at the start of every "
                "epoch, epoch 0 included (set_epoch(seed=epoch) before taking batch 0), as run A does")
    if side == "A":
        return f"in run B, reproduce run A's order: {h.text}"
    if h.name == "reshuffle":
        return "in run B, drop the second shuffle before the first batch: batch in the snapshot order, as run A does"
    if h.name == "contiguous":
        return "in run B, take batch 0 from rows [0, batch_size) of the epoch order (drop the last partial batch, " \
               "keep batches and chunks in order)"
    return f"in run B, {_UNDO.get(h.name, 'batch in the snapshot order')}, as run A does"
