"""Parity runs built with the project's own pipeline (``load_conversations`` → ``Dataset.shuffle`` →
renderer → ``SupervisedDatasetFromHFDataset``, as ``posttrain prepare`` and tinker-cookbook's SFT
loop use them), plus fault switches that reproduce what ports do. Shared by the parity tests."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from posttrain import datum_from_tokens_weights, to_messages
from posttrain.data.sources import load_conversations
from posttrain.data.supervised import SupervisedDatasetFromHFDataset, conversation_to_datum
from posttrain.parity.artifacts import read_run, write_run
from posttrain.parity.diff import ParityReport, diff_runs
from posttrain.types import Datum

N_ROWS = 40


def conversation(i: int) -> list[dict[str, str]]:
    # (17 * i) % 40 takes 40 distinct values: every row has its own length, so sorts are unambiguous.
    return [{"role": "user", "content": f"Question {i}: name a colour."},
            {"role": "assistant", "content": "Blue, " * (1 + (17 * i) % N_ROWS) + f"row {i}."}]


@dataclass
class Faults:
    """Switches that reproduce what ports do differently; the defaults are ``posttrain prepare``."""

    seed: int = 0
    shuffle: str = "datasets"  # datasets | numpy_legacy | python: the PRNG of the dataset shuffle
    epoch_reshuffle: int | None = None  # tinker-cookbook's loop: set_epoch(seed=this) before batch 0
    order: str | None = None  # sorted_asc | sorted_desc | reversed | strided:S | offset:R | random:SEED
    batch_size: int = 4
    max_length: int = 2048
    bos_per_chunk: bool = False  # a tokenizer wrapper that adds BOS to every per-message encode
    reduction: str | None = None  # "mean": conversation_to_datum's per-datum normalisation
    write_reduction: bool = True  # write `reduction` into config.json
    n_snapshot: int | None = None  # default: every row


def write_rows(path: Path, convs: list[list[dict[str, str]]]) -> Path:
    path.write_text("".join(json.dumps({"messages": c}) + "\n" for c in convs), encoding="utf-8")
    return path


def render(renderer, msgs, f: Faults) -> tuple[list[int], list[float], list[list[int]] | None]:
    ex = renderer.build_supervised_example(msgs)
    if not f.bos_per_chunk:
        return list(ex.tokens), list(ex.weights), None
    bos = renderer.tokenizer.bos_token_id
    chunks, weights = [[bos]], [0.0]
    for mi in range(len(msgs)):
        cs = ex.message_chunks(mi)
        chunks.append([bos, *ex.tokens[cs[0].start : cs[-1].end]])
        weights += [0.0, *ex.weights[cs[0].start : cs[-1].end]]
    return [t for c in chunks for t in c], weights, chunks


def _datum(renderer, msgs, f: Faults) -> Datum:
    if f.reduction == "mean" and not f.bos_per_chunk:
        return conversation_to_datum(msgs, renderer, f.max_length, "last_assistant_message", reduction="mean")
    tokens, weights, chunks = render(renderer, msgs, f)
    d = datum_from_tokens_weights(tokens, weights, f.max_length)
    if chunks is not None:  # keep the port's chunk structure, cut where the datum input ends
        cuts = [c for c in np.cumsum([len(c) for c in chunks])[:-1] if c < len(d.input_tokens)]
        d = Datum.from_arrays(tuple(np.split(d.input_tokens, cuts)), d.target_tokens, d.weights)
    return d


def _batch_positions(f: Faults, n: int, lengths: list[int]) -> list[int] | None:
    """The row order a port batches in, as positions in the snapshot order (None: the snapshot order)."""
    if f.order is None:
        return None
    kind, _, arg = f.order.partition(":")
    if kind == "sorted_asc":
        return sorted(range(n), key=lambda p: lengths[p])
    if kind == "sorted_desc":
        return sorted(range(n), key=lambda p: lengths[p], reverse=True)
    if kind == "reversed":
        return list(range(n))[::-1]
    if kind == "strided":  # a parallel map over S workers, results concatenated worker by worker
        return [p for w in range(int(arg)) for p in range(w, n, int(arg))]
    if kind == "offset":  # a chunked map whose chunk starting at row R is returned first
        return list(range(int(arg), n)) + list(range(int(arg)))
    assert kind == "random"
    return random.Random(int(arg)).sample(range(n), n)


def build_pipeline_run(path: Path, rows_file: Path, renderer, f: Faults) -> Path:
    ds = load_conversations(str(rows_file))
    n = len(ds)
    ds = ds.add_column("source_index", list(range(n)))
    if f.shuffle == "datasets":
        ds = ds.shuffle(seed=f.seed)
    elif f.shuffle == "numpy_legacy":
        ds = ds.select(np.random.RandomState(f.seed).permutation(n).tolist())
    else:
        order = list(range(n))
        random.Random(f.seed).shuffle(order)
        ds = ds.select(order)
    msgs = [to_messages(r["messages"]) for r in ds.to_list()]
    rendered = [render(renderer, m, f) for m in msgs]
    positions = _batch_positions(f, n, [len(t) for t, _, _ in rendered])
    batch_rows = ds if positions is None else ds.select(positions)
    sds = SupervisedDatasetFromHFDataset(batch_rows, f.batch_size,
                                         map_fn=lambda row: _datum(renderer, to_messages(row["messages"]), f))
    if f.epoch_reshuffle is not None:
        sds.set_epoch(seed=f.epoch_reshuffle)
    n_snap = n if f.n_snapshot is None else f.n_snapshot
    config: dict[str, Any] = {"renderer": "llama3", "tokenizer": "posttrain:llama3", "max_length": f.max_length,
                              "batch_size": f.batch_size, "seed": f.seed, "train_on_what": "last_assistant_message",
                              "bos_token_id": renderer.tokenizer.bos_token_id}
    if f.write_reduction:
        config["reduction"] = f.reduction or "none"
    return write_run(path, config=config, total_count=n,
                     snapshot=[(r["source_index"], [m.to_dict() for m in mm])
                               for r, mm in zip(ds.to_list()[:n_snap], msgs[:n_snap], strict=True)],
                     rendered=[(t, w, renderer.tokenizer.decode(t)) for t, w, _ in rendered[:n_snap]],
                     batch_size=f.batch_size, datums=sds.get_batch(0))


def diff(a: Path, b: Path) -> ParityReport:
    return diff_runs(read_run(a), read_run(b))


def reshuffled(n: int, seed: int) -> list[int]:
    """The order ``datasets`` gives ``n`` rows shuffled with ``seed`` (computed here, not by posttrain)."""
    return datasets.Dataset.from_dict({"i": list(range(n))}).shuffle(seed=seed)["i"]
