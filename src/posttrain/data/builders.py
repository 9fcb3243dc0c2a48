"""Dataset builders: a source and a recipe in, ``(train, test)`` supervised datasets out.

They use the same splits as tinker-cookbook's builders so a run matches a Python reference run:

* :class:`FromConversationFileBuilder` — JSONL with ``messages``; ``shuffle(seed)`` then the first
  ``test_size`` rows are the test set (``take``/``skip``), served as one batch; trains all assistant
  messages by default.
* :class:`NoRobotsBuilder` — ``HuggingFaceH4/no_robots``: its train split shuffled with seed 0, its
  test split as is; all assistant messages.
* :class:`Tulu3Builder` — ``allenai/tulu-3-sft-mixture``: train split shuffled with seed 0, the first
  1024 rows as test, the rest as train; the last assistant message.

Datums use ``reduction="mean"`` as tinker-cookbook's builders do (``ChatDatasetConfig.reduction``).

Hub builders take ``path`` (default: the hub id) and optional ``data_files``: anything
``datasets.load_dataset`` accepts, e.g. a local folder laid out like the hub repository, or
``path="parquet", data_files={"train": ..., "test": ...}`` for local copies of its files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, cast

import datasets

from posttrain.data.sources import LINE, SkipReport, load_conversations_with_report, with_source_index
from posttrain.data.supervised import SupervisedDataset, SupervisedDatasetFromHFDataset, conversation_to_datum
from posttrain.default_data import shipped_path
from posttrain.errors import InputError, PosttrainError
from posttrain.renderers import Renderer, default_tokenizer_for, get_renderer
from posttrain.tokenizer import get_tokenizer
from posttrain.train_on_what import TrainOnWhat
from posttrain.types import Datum


@dataclass
class ChatDatasetConfig:
    """What every chat builder needs: how to render and how to batch."""

    renderer_name: str = "llama3"
    tokenizer: str | None = None  # default: the renderer's offline tokenizer
    max_length: int | None = 2048
    batch_size: int = 8
    train_on_what: TrainOnWhat | str | None = None  # None: the builder's default
    reduction: Literal["none", "mean"] = "mean"  # tinker-cookbook's SFT builders normalise per datum

    def renderer(self) -> Renderer:
        return get_renderer(self.renderer_name, get_tokenizer(self.tokenizer or default_tokenizer_for(self.renderer_name)))


def _map_fn(config: ChatDatasetConfig, default: TrainOnWhat, source: str) -> Any:
    renderer = config.renderer()
    train_on = TrainOnWhat.parse(config.train_on_what or default)

    def map_fn(row: dict[str, Any]) -> Datum:
        try:
            return conversation_to_datum(row["messages"], renderer, config.max_length, train_on, config.reduction)
        except PosttrainError as err:
            raise InputError(str(err), source=source, line=row.get(LINE)) from err

    return map_fn


Split = tuple[SupervisedDataset, SupervisedDataset | None]


@dataclass
class FromConversationFileBuilder:
    file_path: str
    config: ChatDatasetConfig
    test_size: int = 0
    shuffle_seed: int | None = 0
    skip_invalid: bool = False  # malformed rows are left out and listed in ``skipped`` instead of raising
    skipped: SkipReport = field(default_factory=SkipReport)

    def __post_init__(self) -> None:
        self.file_path = shipped_path(self.file_path)  # errors name the file itself

    def __call__(self) -> Split:
        ds, self.skipped = load_conversations_with_report(self.file_path, line_column=LINE,
                                                          skip_invalid=self.skip_invalid)
        ds = with_source_index(ds)
        if self.shuffle_seed is not None:
            ds = ds.shuffle(seed=self.shuffle_seed)
        map_fn = _map_fn(self.config, TrainOnWhat.ALL_ASSISTANT_MESSAGES, self.file_path)
        if self.test_size >= len(ds) > 0:  # evaluation would take every row, or silently turn off
            raise PosttrainError(f"test_size {self.test_size} leaves no conversation to train on: {self.file_path} has "
                                 f"{len(ds)}; lower --test-size")
        if self.test_size > 0:
            test, train = ds.take(self.test_size), ds.skip(self.test_size)
            return (SupervisedDatasetFromHFDataset(train, self.config.batch_size, map_fn=map_fn),
                    SupervisedDatasetFromHFDataset(test, len(test), map_fn=map_fn))
        return SupervisedDatasetFromHFDataset(ds, self.config.batch_size, map_fn=map_fn), None


DataFiles = str | list[str] | dict[str, str | list[str]] | None


def _load_dict(path: str, revision: str | None, data_files: DataFiles) -> datasets.DatasetDict:
    return cast(datasets.DatasetDict, datasets.load_dataset(path, revision=revision, data_files=data_files))


@dataclass
class NoRobotsBuilder:
    config: ChatDatasetConfig
    path: str = "HuggingFaceH4/no_robots"
    revision: str | None = None
    data_files: DataFiles = None

    def __call__(self) -> Split:
        dd = _load_dict(self.path, self.revision, self.data_files)
        train, test = with_source_index(dd["train"]).shuffle(seed=0), with_source_index(dd["test"])
        train_fn = _map_fn(self.config, TrainOnWhat.ALL_ASSISTANT_MESSAGES, f"{self.path}[train]")
        test_fn = _map_fn(self.config, TrainOnWhat.ALL_ASSISTANT_MESSAGES, f"{self.path}[test]")
        return (SupervisedDatasetFromHFDataset(train, self.config.batch_size, map_fn=train_fn),
                SupervisedDatasetFromHFDataset(test, self.config.batch_size, map_fn=test_fn))


@dataclass
class Tulu3Builder:
    config: ChatDatasetConfig
    path: str = "allenai/tulu-3-sft-mixture"
    revision: str | None = None
    data_files: DataFiles = None
    test_size: int = 1024

    def __call__(self) -> Split:
        ds = with_source_index(_load_dict(self.path, self.revision, self.data_files)["train"]).shuffle(seed=0)
        test, train = ds.take(self.test_size), ds.skip(self.test_size)
        map_fn = _map_fn(self.config, TrainOnWhat.LAST_ASSISTANT_MESSAGE, f"{self.path}[train]")
        return (SupervisedDatasetFromHFDataset(train, self.config.batch_size, map_fn=map_fn),
                SupervisedDatasetFromHFDataset(test, self.config.batch_size, map_fn=map_fn))
