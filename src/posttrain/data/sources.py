"""Conversation sources: JSONL, Parquet, CSV (local or any fsspec URL) and the HF hub.

Every row is validated into messages; a bad row raises :class:`~posttrain.errors.InputError` naming
the source and line (JSONL: file line; CSV: file line, header = line 1; Parquet/hub: row number,
1-based). With ``skip_invalid=True`` bad rows are skipped and reported in a :class:`SkipReport`.

How a spec is read:

* ``hub:ORG/NAME`` or ``hf://datasets/ORG/NAME`` (no file suffix) — the hub dataset, through
  ``datasets.load_dataset(ORG/NAME, subset, split=..., revision=...)``.
* ``ORG/NAME`` that is not an existing local path — treated as a hub id, like ``hub:ORG/NAME``.
  A local path always wins, and a name ending in a data suffix (``dir/x.jsonl``) is a path.
* a local folder — ``datasets.load_dataset(folder, subset, split=...)``: a folder laid out like a hub
  dataset repo (``data/<split>-*.parquet``, or a README dataset card whose ``configs`` name the files).
* ``-`` — standard input, read as JSON lines.
* a file path or URL (``hf://``, ``file://``, ``memory://``; ``s3://``, ``gs://``, ``az://`` once
  their fsspec backends s3fs / gcsfs / adlfs are installed) — by suffix: ``.jsonl``/``.json`` (JSON
  lines, or a JSON array in a ``.json`` file; optionally ``.gz``/``.zst``…), ``.parquet``, ``.csv``
  (a ``messages`` column holding JSON text).

Rows are stored in one canonical shape, :data:`MESSAGES_TYPE`, so Arrow sees one schema whatever the
input mixes: ``{"role", "content": str, "thinking", "tool_calls", "tool_call_id", "name", "trainable"}``
(absent fields null; content parts joined, ``reasoning_content`` kept as ``thinking``). They are
collected in Arrow record batches of :data:`CHUNK_ROWS` rows, so a large source costs about its
Arrow size in memory rather than a Python object per field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

import datasets
import fsspec
import pyarrow as pa
from datasets.fingerprint import generate_random_fingerprint

from posttrain.data.readers import (
    STDIN,
    STDIN_NAME,
    OnError,
    csv_rows,
    json_text,
    jsonl_rows,
    library_errors,
    raise_error,
    source_name,
    suffix,
)
from posttrain.default_data import shipped_path
from posttrain.errors import InputError, PosttrainError
from posttrain.jsonl import parse_conversation_row
from posttrain.messages import Message

HUB_PREFIX = "hub:"
HF_DATASETS_URL = "hf://datasets/"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
CHUNK_ROWS = 4096
DATA_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")

_TOOL_CALL = pa.struct([
    ("type", pa.string()),
    ("function", pa.struct([("name", pa.string()), ("arguments", pa.string())])),
    ("id", pa.string()),
])
#: The Arrow type of the ``messages`` column every loader returns (absent fields are null).
MESSAGES_TYPE = pa.list_(pa.struct([
    ("role", pa.string()),
    ("content", pa.string()),
    ("thinking", pa.string()),
    ("tool_calls", pa.list_(_TOOL_CALL)),
    ("tool_call_id", pa.string()),
    ("name", pa.string()),
    ("trainable", pa.bool_()),
]))
_SCHEMA = pa.schema([("messages", MESSAGES_TYPE)])


@dataclass
class SkipReport:
    """Rows skipped under ``skip_invalid``: how many, and each one's location and reason."""

    skipped: int = 0
    reasons: list[str] = field(default_factory=list)

    def add(self, err: InputError) -> None:
        self.skipped += 1
        self.reasons.append(str(err))


# Columns a loaded row carries: where it came from (file line, or 1-based row of the split) for errors,
# and its 0-based position in the input as loaded, which the parity snapshot names rows by.
LINE = "__line__"
SOURCE_INDEX = "__source_index__"


def with_source_index(ds: datasets.Dataset) -> datasets.Dataset:
    """Each row's position in ``ds`` (and, if it has none, its 1-based row as its :data:`LINE`), kept
    through any later shuffle."""
    if LINE not in ds.column_names:
        ds = ds.add_column(LINE, list(range(1, len(ds) + 1)))
    return ds.add_column(SOURCE_INDEX, list(range(len(ds))))


def canonical_message(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.text}
    if m.thinking is not None:
        out["thinking"] = m.thinking
    if m.tool_calls:
        out["tool_calls"] = [tc.to_dict() for tc in m.tool_calls]
    for key in ("tool_call_id", "name", "trainable"):
        value = getattr(m, key)
        if value is not None:
            out[key] = value
    return out


def canonical_messages(msgs: list[Message]) -> list[dict[str, Any]]:
    return [canonical_message(m) for m in msgs]


def hub_id_of(spec: str) -> str | None:
    """The hub dataset id a spec names, or None when it names a file, folder or URL."""
    if spec.startswith(HUB_PREFIX):
        return spec.removeprefix(HUB_PREFIX)
    rest = spec.removeprefix(HF_DATASETS_URL).rstrip("/")
    if spec.startswith(HF_DATASETS_URL) and _HUB_ID.match(rest) and suffix(rest) not in DATA_SUFFIXES:
        return rest  # the whole repo; a file or folder inside it is read through fsspec
    # A missing "dir/file.jsonl" is a typo'd path, not a hub id: the file error is the helpful one.
    if "://" not in spec and not os.path.exists(spec) and _HUB_ID.match(spec) and suffix(spec) not in DATA_SUFFIXES:
        return spec
    return None


def _on_error(report: SkipReport | None) -> OnError:
    return raise_error if report is None else report.add


def _numbered_conversations(rows: Iterable[tuple[int, Any]], source: str,
                            report: SkipReport | None) -> Iterator[tuple[int, list[Message]]]:
    on_error = _on_error(report)
    for line, row in rows:
        try:
            yield line, parse_conversation_row(row, source=source, line=line)
        except InputError as err:
            on_error(err)


def _validated(rows: Iterable[tuple[int, Any]], source: str, report: SkipReport | None,
               line_column: str | None = None) -> Iterator[dict[str, Any]]:
    for line, msgs in _numbered_conversations(rows, source, report):
        out: dict[str, Any] = {"messages": canonical_messages(msgs)}
        if line_column is not None:
            out[line_column] = line
        yield out


def _hf_rows(ds: datasets.Dataset, source: str, report: SkipReport | None) -> Iterator[tuple[int, Any]]:
    """Rows of an Arrow dataset, numbered from 1."""
    if "messages" in ds.column_names:  # don't decode columns we drop anyway (images, metadata)
        ds = ds.select_columns(["messages"])
    on_error = _on_error(report)
    for i, row in enumerate(ds, start=1):
        if isinstance(row.get("messages"), str):
            try:
                row = dict(row, messages=json_text(row["messages"], source, i))
            except InputError as err:
                on_error(err)
                continue
        yield i, row


def _from_rows(rows: Iterable[dict[str, Any]], source: str, line_column: str | None) -> datasets.Dataset:
    schema = _SCHEMA if line_column is None else _SCHEMA.append(pa.field(line_column, pa.int64()))
    batches: list[pa.RecordBatch] = []
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK_ROWS:
            batches.append(pa.RecordBatch.from_pylist(chunk, schema=schema))
            chunk = []
    if chunk:
        batches.append(pa.RecordBatch.from_pylist(chunk, schema=schema))
    if not batches:
        raise InputError("no conversations found", source=source)
    # A fingerprint of our own: datasets would otherwise hash (serialise) the whole table to make one,
    # which doubles peak memory. The dataset is in memory, so no cache depends on it.
    return datasets.Dataset(pa.Table.from_batches(batches, schema=schema), fingerprint=generate_random_fingerprint())


def _unknown_format(spec: str) -> PosttrainError:
    kind = suffix(spec)
    return InputError(f"unknown data format {kind or '(no suffix)'}; expected .jsonl, .json, .parquet or .csv "
                      "(optionally compressed, e.g. .jsonl.gz), '-' for stdin, a dataset folder, or hub:ORG/NAME",
                      source=spec)


def _dataset_path(spec: str) -> str | None:
    """The path for ``datasets.load_dataset`` when ``spec`` names a hub dataset or a local folder."""
    if spec == STDIN:
        return None
    hub_id = hub_id_of(spec)
    if hub_id is not None:
        return hub_id
    return spec if "://" not in spec and os.path.isdir(spec) else None


def source_label(spec: str, split: str = "train") -> str:
    """How errors name the source ``spec``: ``<stdin>``, ``ORG/NAME[split]`` (rows numbered within the
    split), or the path itself."""
    spec = shipped_path(spec)
    path = _dataset_path(spec)
    return f"{path}[{split}]" if path is not None else source_name(spec)


def _rows(spec: str, split: str, subset: str | None, revision: str | None,
          report: SkipReport | None) -> tuple[Iterator[tuple[int, Any]], str]:
    """Numbered raw rows of any source, and the name errors give it."""
    spec = shipped_path(spec)
    path = _dataset_path(spec)
    if path is not None:
        where = f"{path}[{split}]"  # rows are numbered from 1 within the split
        with library_errors(where, "dataset"):
            ds = datasets.load_dataset(path, subset, split=split, revision=revision)
        return _hf_rows(cast(datasets.Dataset, ds), where, report), where
    kind = ".jsonl" if spec == STDIN else suffix(spec)
    if kind in (".jsonl", ".json"):
        return jsonl_rows(spec, _on_error(report)), source_name(spec)
    if kind == ".csv":
        return csv_rows(spec, _on_error(report)), spec
    if kind == ".parquet":
        with library_errors(spec, "Parquet file"):
            fs, fs_path = fsspec.core.url_to_fs(spec)
            if not fs.isfile(fs_path):
                raise InputError("is a folder, not a file" if fs.isdir(fs_path) else "no such file", source=spec)
            ds = datasets.Dataset.from_parquet(spec)
        return _hf_rows(cast(datasets.Dataset, ds), spec, report), spec
    raise _unknown_format(spec)


def iter_conversations(
    spec: str,
    *,
    split: str = "train",
    subset: str | None = None,
    revision: str | None = None,
    report: SkipReport | None = None,
) -> Iterator[tuple[int, list[Message]]]:
    """Validated conversations of any source (``-`` = stdin) with their location, read lazily.

    Yields ``(line, messages)``: the file line (JSONL, JSON array, CSV) or the 1-based row (Parquet,
    folders, hub). With a ``report``, bad rows are recorded there and skipped; without, the first
    one raises :class:`InputError` naming the source and line."""
    rows, source = _rows(spec, split, subset, revision, report)
    yield from _numbered_conversations(rows, source, report)


def load_conversations_with_report(
    spec: str,
    *,
    split: str = "train",
    subset: str | None = None,
    revision: str | None = None,
    skip_invalid: bool = False,
    line_column: str | None = None,
) -> tuple[datasets.Dataset, SkipReport]:
    """Load and validate conversations; returns the dataset (column ``messages``) and what was skipped.

    ``line_column`` names an extra int column holding each row's location as errors give it (file
    line, or 1-based row within the split), so later errors (rendering) can point back to the input.
    """
    report = SkipReport()
    rep = report if skip_invalid else None
    rows, source = _rows(spec, split, subset, revision, rep)
    return _from_rows(_validated(rows, source, rep, line_column), source, line_column), report


def load_conversations(
    spec: str,
    *,
    split: str = "train",
    subset: str | None = None,
    revision: str | None = None,
    skip_invalid: bool = False,
    line_column: str | None = None,
) -> datasets.Dataset:
    """:func:`load_conversations_with_report` without the report (use that one with ``skip_invalid``)."""
    return load_conversations_with_report(spec, split=split, subset=subset, revision=revision,
                                          skip_invalid=skip_invalid, line_column=line_column)[0]


def _stream_rows(spec: str) -> Iterator[dict[str, Any]]:
    # A generator function of its own: datasets re-calls it whenever the stream restarts.
    for _, msgs in _numbered_conversations(jsonl_rows(spec), source_name(spec), None):
        yield {"messages": canonical_messages(msgs)}


def stream_conversations(
    spec: str, *, split: str = "train", subset: str | None = None, revision: str | None = None
) -> datasets.IterableDataset:
    """A validated stream of ``{"messages": [...]}`` rows; nothing is loaded into memory up front.

    JSONL is read line by line (errors name the line); Parquet, CSV, folders and hub datasets go
    through ``datasets.load_dataset(..., streaming=True)``. Standard input cannot be streamed (a
    stream restarts every epoch): use :func:`load_conversations` or :func:`iter_conversations`.
    """
    if spec == STDIN:
        raise InputError("standard input cannot be streamed (epochs re-read the source); pass a file",
                         source=STDIN_NAME)
    path = _dataset_path(spec)
    if path is not None:
        with library_errors(f"{path}[{split}]", "dataset"):
            ds = datasets.load_dataset(path, subset, split=split, revision=revision, streaming=True)
        return ds.map(partial(_validate_streamed, source=f"{path}[{split}]"), with_indices=True,
                      remove_columns=list(ds.column_names or []))
    kind = suffix(spec)
    if kind in (".jsonl", ".json"):
        return datasets.IterableDataset.from_generator(_stream_rows, gen_kwargs={"spec": spec})
    if kind in (".parquet", ".csv"):
        with library_errors(spec, kind[1:].upper() + " file"):
            ds = datasets.load_dataset(kind[1:], data_files=spec, split="train", streaming=True)
        # CSV: row i is file line i + 2 (line 1 is the header) when no field spans lines; Parquet: row
        # number, 1-based.
        return ds.map(partial(_validate_streamed, source=spec, offset=2 if kind == ".csv" else 1), with_indices=True,
                      remove_columns=list(ds.column_names or []))
    raise _unknown_format(spec)


def _validate_streamed(row: dict[str, Any], index: int, *, source: str, offset: int = 1) -> dict[str, Any]:
    if isinstance(row.get("messages"), str):
        row = dict(row, messages=json_text(row["messages"], source, index + offset))
    return {"messages": canonical_messages(parse_conversation_row(row, source=source, line=index + offset))}
