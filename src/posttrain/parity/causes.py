"""From findings to root causes: per cause, why it happens, the stage where it first appears, the fix.

Several findings can share one root cause (extra BOS seen in the rendered samples and in the first
batch; a max_length config difference and the truncated datums it causes), so findings are merged
here and the report lists each root cause once, at the earliest pipeline stage that shows it.
"""

from __future__ import annotations

from typing import Any

from posttrain.parity.model import STAGES, Finding, RootCause

# The pipeline stage each compared config field acts on.
FIELD_STAGE = {
    "seed": "snapshot", "shuffle": "snapshot", "renderer": "rendering", "tokenizer": "rendering",
    "model_name": "rendering", "train_on_what": "rendering", "max_length": "datum building",
    "truncation_side": "datum building", "reduction": "datum building", "batch_size": "batching",
    "learning_rate": "training", "lr": "training", "num_epochs": "training", "lora_rank": "training",
}


class _Builder:
    def __init__(self, findings: list[Finding]):
        self.data = [f for f in findings if f.data_difference]
        cfg = next((f for f in self.data if f.cause == "config_difference"), None)
        self.fields: dict[str, list[Any]] = dict(cfg.evidence.get("fields", {})) if cfg else {}
        self.out: list[RootCause] = []

    def has(self, cause: str, layer: str | None = None) -> list[Finding]:
        return [f for f in self.data if f.cause == cause and (layer is None or f.layer == layer)]

    def config(self, key: str) -> list[Any] | None:
        """A config difference, consumed: the root cause that explains it names it."""
        return self.fields.pop(key, None)

    def add(self, title: str, explanation: str, stage: str, fix: str, *causes: str) -> None:
        self.out.append(RootCause(title, explanation, stage, fix, list(causes)))


def _snapshot(r: _Builder) -> None:
    for f in r.has("sample_count") + r.has("different_samples"):
        r.add("Different dataset rows", f.summary, "snapshot",
              "load the same rows in run B (same source file, split, revision and filters as run A)", f.cause)
    for f in r.has("reordering", "dataset_snapshot"):
        seed = r.config("seed")
        r.config("shuffle")
        ev = f.evidence
        how = (f"datasets.Dataset.shuffle(seed={ev['seed_a']})" if ev.get("shuffle_a") == "datasets.Dataset.shuffle"
               else "run A's shuffle")
        r.add("Dataset shuffle differs", ev.get("shuffle_verdict", f.summary)
              + (f" (config seed {seed[0]!r} vs {seed[1]!r})" if seed else ""), "snapshot",
              f"in run B, shuffle the rows with {how}, as run A does", "reordering")


def _bos_positions(rendered: Finding) -> str:
    """Where the BOS sit in the first rendered sample that differs: shows where they are added."""
    first = (rendered.evidence.get("items") or [rendered.evidence])[0]
    label = (first.get("summary") or rendered.summary).split(":")[0]
    more, fewer = ("b", "a") if first["count_b"] > first["count_a"] else ("a", "b")
    return (f"{label} of run {more.upper()} has BOS at token positions {first['positions_' + more]} "
            f"(run {fewer.upper()}: {first['positions_' + fewer]})")


def _bos(r: _Builder) -> None:
    found = r.has("bos_duplication")
    if not found:
        return
    batch = next((f for f in found if f.layer == "first_batch"), None)
    stage = "rendering" if any(f.layer == "rendered_samples" for f in found) else "datum building"
    at_starts = bool(batch and batch.evidence.get("at_chunk_starts"))
    why = ("the per-chunk encode adds special tokens: every encoded chunk (one per message) starts with BOS"
           if at_starts else "special tokens are added when pieces of the text are encoded")
    if batch is not None:
        e = batch.evidence
        why += (f" — {sum(e['bos_per_datum_b'])} BOS in run B's first batch vs {sum(e['bos_per_datum_a'])} in A's; "
                f"{max(e['chunks_starting_with_bos_a'], e['chunks_starting_with_bos_b'])} model_input chunks start "
                "with BOS")
    where = "in the rendered samples (before datums are built)" if stage == "rendering" else "in the datums only"
    rendered = next((f for f in found if f.layer == "rendered_samples"), None)
    if rendered is not None:
        where += "; " + _bos_positions(rendered)
    r.add("BOS duplication", f"{why}; first seen {where}", stage,
          "encode each chunk with add_special_tokens=False and add BOS once, at the start of the sequence",
          "bos_duplication")


def _rendering(r: _Builder) -> None:
    for key in ("renderer", "tokenizer", "model_name"):
        diff = r.config(key)
        if diff:
            r.add(f"{key} differs", f"config {key} {diff[0]!r} vs {diff[1]!r}", "rendering",
                  f"use {key} {diff[0]!r} in run B", "config_difference")
    for f in r.has("token_difference"):
        stage = "rendering" if f.layer == "rendered_samples" else "datum building"
        r.add("Token difference", f.summary, stage,
              "make run B produce run A's tokens at the first divergence (decoded windows in the evidence)",
              "token_difference")
        break
    masks = r.has("mask_difference")
    if masks:
        tow = r.config("train_on_what")
        why = f"config train_on_what {tow[0]!r} vs {tow[1]!r}" if tow else "the renderer marks other tokens as trained"
        fix = f"use train_on_what {tow[0]!r} in run B" if tow else "train on the tokens run A trains (ranges in the evidence)"
        r.add("Loss mask differs", f"{why}: {masks[0].summary}", "rendering", fix, "mask_difference")
    for f in r.has("inconsistent_sample"):
        r.add("Inconsistent rendered sample", f.summary, "rendering",
              "write token_count = len(all_tokens) and one weight per token", "inconsistent_sample")


def _datums(r: _Builder) -> None:
    trunc = r.has("truncation", "first_batch")
    max_len = r.config("max_length")
    if trunc or max_len:
        ml = max_len or [trunc[0].evidence.get("max_length_a"), trunc[0].evidence.get("max_length_b")]
        cut = f"{len(trunc[0].evidence['datums'])} datums of the first batch are cut at another length" if trunc \
            else "no datum of the first batch reaches either limit"
        r.add("max_length differs", f"config max_length {ml[0]!r} vs {ml[1]!r}: {cut}", "datum building",
              f"use max_length {ml[0]!r} in run B", "config_difference", "truncation")
    for f in r.has("weight_difference"):
        red = r.config("reduction")
        why = f.summary + (f" (config reduction {red[0]!r} vs {red[1]!r})" if red and not f.evidence.get("config_cause") else "")
        fix = (f"use reduction {red[0]!r} in run B" if red else
               "build weights as run A does: 0/1 from the loss mask" + (", without scaling" if f.evidence.get("kind") == "scaled" else ""))
        r.add("Weights differ", why, "datum building", fix, "weight_difference")
        break
    for f in r.has("targets_not_shifted"):
        r.add("Targets not shifted", f.summary, "datum building",
              "build datums as input = tokens[:-1], target_tokens = tokens[1:]", "targets_not_shifted")
    for f in r.has("inconsistent_datum"):
        r.add("Inconsistent datum", f.summary, "datum building",
              "write one target and one weight per model_input token, with shape [n]", "inconsistent_datum")
    for f in r.has("length_delta"):
        if f.evidence["totals"]["residual"]:
            r.add("Unexplained length difference", f.summary, "datum building",
                  "inspect the datums listed in the evidence", "length_delta")


def _batching(r: _Builder) -> None:
    for f in r.has("reordering", "first_batch"):
        ev = f.evidence
        if ev.get("mechanisms") == [] and not ev.get("snapshot_order_same"):
            continue  # the dataset shuffle explains it (snapshot root cause)
        mech = ev.get("mechanism") or {}
        if mech.get("hypothesis"):
            other = "B" if mech["side"] == "A" else "A"
            straight = len(ev.get("mechanisms", [])) == 1
            r.add("Batch order differs", f"{ev['why']}; run {mech['side']}'s first batch holds its snapshot rows "
                  f"{mech['positions']}" + (f", run {other}'s rows {list(range(len(mech['positions'])))} (straight "
                                            "from the snapshot order)" if straight else "")
                  + ("; the dataset snapshots are identical, so the runs diverge at batching"
                     if ev.get("snapshot_order_same") else ""), "batching", ev["fix"], "reordering")
        else:
            r.add("Batch order differs (unexplained)", f.summary, "batching",
                  "find where run B orders its rows: no tested mechanism produces its permutation", "reordering")
    for f in r.has("batch_grouping"):
        r.config("batch_size")
        r.add("Batch grouping differs", f.evidence["why"], "batching", f.evidence["fix"], "batch_grouping")


def _rest(r: _Builder) -> None:
    for f in r.has("metrics_difference"):
        r.add("Metrics differ", f.summary, "training", "fix the data differences above first; then compare "
              "the optimizer settings", "metrics_difference")
    for f in r.has("missing_artifact"):
        r.add("Missing artifact", f.summary, f.layer, "write every artifact of the run-folder layout", "missing_artifact")
    for key, (va, vb) in sorted(r.fields.items()):
        stage = FIELD_STAGE.get(key, "config")
        r.add(f"{key} differs", f"config {key} {va!r} vs {vb!r}", stage, f"use {key} {va!r} in run B",
              "config_difference")


def root_causes(findings: list[Finding]) -> list[RootCause]:
    r = _Builder(findings)
    for step in (_snapshot, _bos, _rendering, _datums, _batching, _rest):
        step(r)
    order = {s: i for i, s in enumerate(STAGES)}
    return sorted(r.out, key=lambda c: order.get(c.stage, len(STAGES)))
