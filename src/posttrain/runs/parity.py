"""The parity artifacts of a run (``RUN/parity/*.json``, see :mod:`posttrain.parity.artifacts`): one
writer for ``posttrain prepare`` and every training recipe, so two runs of the same data compare.

The snapshot is the first ``n_snapshot`` rows in the order the first epoch trains them, each named by its
0-based position in the input as loaded (the ``__source_index__`` column every loader adds); the rendered
samples are those rows rendered; the first batch is the datums step 0 trains.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from posttrain.data.sources import SOURCE_INDEX
from posttrain.data.supervised import SupervisedDataset, SupervisedDatasetFromHFDataset
from posttrain.messages import Message, to_messages
from posttrain.renderers import Renderer
from posttrain.train_on_what import TrainOnWhat
from posttrain.types import Datum

N_SNAPSHOT = 8

#: A row → (its messages, its rendered tokens, their weights).
RenderRow = Callable[[dict[str, Any]], tuple[Sequence[Message], Sequence[int], Sequence[float]]]


def render_conversation(renderer: Renderer, train_on: TrainOnWhat | str) -> RenderRow:
    """A conversation row (``messages``) rendered as its datum trains it."""

    def render(row: dict[str, Any]) -> tuple[Sequence[Message], Sequence[int], Sequence[float]]:
        messages = to_messages(row["messages"])
        example = renderer.build_supervised_example(messages, train_on)
        return messages, example.tokens, example.weights

    return render


def write_parity(run_path: str | Path, config: dict[str, Any], dataset: SupervisedDataset, renderer: Renderer,
                 render_row: RenderRow, first_batch: Sequence[Datum], batch_size: int,
                 n_snapshot: int = N_SNAPSHOT) -> Path:
    """``config.json`` and ``parity/*.json``; ``dataset`` is in its first epoch's order (``set_epoch``)."""
    from posttrain.parity.artifacts import write_run

    snapshot: list[tuple[int, list[dict[str, Any]]]] = []
    rendered: list[tuple[Sequence[int], Sequence[float], str]] = []
    total = 0
    if isinstance(dataset, SupervisedDatasetFromHFDataset):
        total = len(dataset.hf_dataset)
        for row in dataset.shuffle_dataset.select(range(min(n_snapshot, total))).to_list():
            messages, tokens, weights = render_row(row)
            snapshot.append((int(row[SOURCE_INDEX]), [m.to_dict() for m in messages]))
            rendered.append((tokens, weights, renderer.tokenizer.decode(list(tokens))))
    return write_run(run_path, config=config, total_count=total, snapshot=snapshot, rendered=rendered,
                     batch_size=batch_size, datums=first_batch)
