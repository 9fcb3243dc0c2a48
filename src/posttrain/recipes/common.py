"""What every training recipe does before its loop: pick the backend, match the renderer to the
model's tokenizer, and write the parity artifacts of the data the loop trains."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from posttrain.data.supervised import SupervisedDataset, SupervisedDatasetFromHFDataset
from posttrain.datum import Datum
from posttrain.engine.hosted import Backend, hosted_backend
from posttrain.errors import PosttrainError
from posttrain.messages import to_messages
from posttrain.renderers import Renderer, get_renderer
from posttrain.tokenizer import get_tokenizer
from posttrain.training.run_folder import CHECKPOINT_DIR, RunFolder

N_SNAPSHOT = 8


def make_backend(name: str, log_path: str, micro_batch_tokens: int) -> Backend:
    if name == "tinker":
        return hosted_backend()
    from posttrain.engine.service import ServiceClient

    return Backend(ServiceClient(Path(log_path) / CHECKPOINT_DIR, micro_batch_tokens=micro_batch_tokens))


def model_tokenizer_name(model_name: str) -> str:
    """The tokenizer a model trains with, without loading its weights."""
    offline = {"posttrain:smollm2-135m-instruct": "posttrain:smollm2", "posttrain:tiny-smollm2": "posttrain:smollm2",
               "posttrain:tiny-llama3": "posttrain:llama3"}
    if model_name in offline:
        return offline[model_name]
    if model_name.startswith("posttrain:"):
        raise PosttrainError(f"unknown offline model {model_name!r}; known: {', '.join(sorted(offline))}")
    return model_name


def check_renderer_fits(renderer_name: str, tokenizer_name: str, model_name: str) -> Renderer:
    """The renderer over the model's own tokenizer; an error if that tokenizer lacks the format's tokens."""
    tokenizer = get_tokenizer(tokenizer_name)
    try:
        renderer = get_renderer(renderer_name, tokenizer)
        renderer.build_supervised_example([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}])
    except KeyError as err:
        raise PosttrainError(f"renderer {renderer_name!r} does not fit model {model_name!r}: {err.args[0]}; "
                             "pick the renderer of the model's family (or leave --renderer out)") from err
    return renderer


def write_parity(run: RunFolder, config: dict[str, Any], train: SupervisedDataset, renderer: Renderer,
                 train_on: str, first_batch: list[Datum]) -> None:
    """Dataset snapshot (the builder's row order), rendered samples, and the first batch as trained."""
    from posttrain.parity.artifacts import write_run

    snapshot: list[tuple[int, list[dict[str, Any]]]] = []
    rendered: list[tuple[list[int], list[float], str]] = []
    total = 0
    if isinstance(train, SupervisedDatasetFromHFDataset):
        total = len(train.hf_dataset)
        rows = train.hf_dataset.select(range(min(N_SNAPSHOT, total))).to_list()
        for position, row in enumerate(rows):
            msgs = to_messages(row["messages"])
            ex = renderer.build_supervised_example(msgs, train_on)
            snapshot.append((int(row.get("__line__", position + 1)) - 1, [m.to_dict() for m in msgs]))
            rendered.append((ex.tokens, ex.weights, renderer.tokenizer.decode(ex.tokens)))
    write_run(run.path, config=config, total_count=total, snapshot=snapshot, rendered=rendered,
              batch_size=len(first_batch), datums=first_batch)
