"""Low-level readers: a file, URL or standard input (``-``) to numbered rows.

Everything that can go wrong while reading (a missing path, a folder, bytes that are not UTF-8, a
corrupt compressed stream, a closed stdin, a library that cannot parse a Parquet file or reach the
hub) becomes an :class:`~posttrain.errors.InputError` naming the source and, where there is one,
the line; no reader lets a traceback through.

Bytes are read in binary and decoded line by line, so a decoding error names its line, and a
UTF-8 byte-order mark at the start is dropped.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, TypeVar

import fsspec

from posttrain.errors import InputError, PosttrainError
from posttrain.jsonl import parse_json_line

STDIN = "-"
STDIN_NAME = "<stdin>"
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst", ".lz4")
BOM = "\ufeff"

T = TypeVar("T")
Rows = Iterator[tuple[int, Any]]
#: Called with each bad row's error: raise it (stop) or record it (skip).
OnError = Callable[[InputError], None]


def source_name(spec: str) -> str:
    return STDIN_NAME if spec == STDIN else spec


def suffix(spec: str) -> str:
    """The data suffix of a path or URL, looking through a compression suffix (``x.jsonl.gz``)."""
    name = spec.lower().rstrip("/")
    for comp in COMPRESSIONS:
        name = name.removesuffix(comp)
    return os.path.splitext(name)[1]


def raise_error(err: InputError) -> None:
    raise err


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:300]


@contextmanager
def library_errors(source: str, what: str) -> Iterator[None]:
    """Errors of datasets/pyarrow/fsspec while reading ``source`` become one-line input errors.

    Those libraries raise many unrelated types (ArrowInvalid, DatasetGenerationError,
    ConnectionError, FileNotFoundError, ...), so everything but our own errors is caught here, at
    the boundary where the only sensible report is "this source could not be read".
    """
    try:
        yield
    except PosttrainError:
        raise
    except Exception as err:  # noqa: BLE001 - see the docstring
        raise InputError(f"cannot read {what}: {type(err).__name__}: {_first_line(err)}", source=source) from err


@contextmanager
def open_binary(spec: str) -> Iterator[IO[Any]]:
    """A binary stream of ``spec`` (stdin for ``-``), decompressed by suffix.

    A test may substitute a text stream for ``sys.stdin``; it is then yielded as it is."""
    if spec == STDIN:
        stream = sys.stdin
        if stream is None or stream.closed:
            raise InputError("standard input is closed; pass a file or pipe data in", source=STDIN_NAME)
        yield getattr(stream, "buffer", stream)
        return
    if "://" not in spec and os.path.isdir(spec):
        raise InputError("is a folder, not a file", source=spec)
    try:
        f = fsspec.open(spec, "rb", compression="infer").open()
    except FileNotFoundError:
        raise InputError("no such file", source=spec) from None
    except (OSError, ImportError, ValueError) as err:
        raise InputError(f"cannot open: {_first_line(err)}", source=spec) from err
    with f:
        yield f


def decode_line(raw: bytes | str, source: str, line: int) -> str:
    if isinstance(raw, str):
        text = raw
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InputError(f"not valid UTF-8: byte 0x{raw[err.start]:02x} at byte {err.start + 1} of the line",
                             source=source, line=line) from None
    return text.removeprefix(BOM) if line == 1 else text


def numbered_lines(f: IO[Any], source: str) -> Iterator[tuple[int, str]]:
    """``(line_number, text)`` of each line; read errors (truncated gzip, closed pipe) name the line."""
    number = 0
    it = iter(f)
    while True:
        try:
            raw = next(it)
        except StopIteration:
            return
        except (OSError, EOFError, ValueError) as err:
            raise InputError(f"read error: {_first_line(err)}", source=source, line=number + 1) from err
        number += 1
        yield number, decode_line(raw, source, number)


def _read_all(f: IO[Any], source: str) -> str:
    try:
        data = f.read()
    except (OSError, EOFError) as err:
        raise InputError(f"read error: {_first_line(err)}", source=source) from err
    if isinstance(data, str):
        return data.removeprefix(BOM)
    try:
        return data.decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise InputError(f"not valid UTF-8: byte 0x{data[err.start]:02x}", source=source, line=line) from None


def jsonl_rows(spec: str, on_error: OnError = raise_error) -> Rows:
    """Numbered JSON values of a JSON-lines source, or of a ``[...]`` array in a ``.json`` file."""
    source = source_name(spec)
    with open_binary(spec) as f:
        if suffix(spec) == ".json":  # may be an array; read whole (arrays have no line structure)
            text = _read_all(f, source)
            if text.lstrip().startswith("["):
                yield from json_array_rows(text, source)
                return
            lines: Iterator[tuple[int, str]] = enumerate(text.split("\n"), start=1)
        else:
            lines = numbered_lines(f, source)
        for number, text in lines:
            if not text.strip():
                continue
            try:
                yield number, parse_json_line(text, source=source, line=number)
            except InputError as err:  # malformed JSON on one line
                on_error(err)


def json_array_rows(text: str, source: str) -> Rows:
    """Items of a ``[...]`` JSON text, each numbered by the line where it starts."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"\s*")

    def skip_ws(pos: int) -> int:
        match = ws.match(text, pos)
        return match.end() if match else pos

    pos = skip_ws(text.index("[") + 1)
    while pos < len(text) and text[pos] != "]":
        line = text.count("\n", 0, pos) + 1
        try:
            item, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            raise InputError(f"invalid JSON: {err.msg}", source=source, line=err.lineno) from err
        yield line, item
        pos = skip_ws(pos)
        if pos < len(text) and text[pos] == ",":
            pos = skip_ws(pos + 1)
        elif pos >= len(text) or text[pos] != "]":
            raise InputError("invalid JSON: expected ',' or ']' after an array item", source=source,
                             line=text.count("\n", 0, pos) + 1)


def json_text(value: Any, source: str, line: int) -> Any:
    """Columns that hold messages as JSON text (CSV, some Parquet exports) are parsed here."""
    try:
        return json.loads(value)
    except json.JSONDecodeError as err:
        raise InputError(f"column 'messages' is not valid JSON: {err.msg}", source=source, line=line) from err


def csv_rows(spec: str, on_error: OnError = raise_error) -> Rows:
    """CSV rows with a ``messages`` column of JSON text, numbered by the file line where each ends."""
    source = source_name(spec)
    with open_binary(spec) as f:
        text = f if isinstance(f, io.TextIOBase) else io.TextIOWrapper(f, encoding="utf-8-sig", newline="")
        reader = csv.DictReader(text)
        try:
            fields = reader.fieldnames
            if fields is None or "messages" not in fields:
                raise InputError(f"CSV needs a 'messages' column (holding JSON), found {fields}", source=source,
                                 line=1)
            for row in reader:
                line = reader.line_num  # the file line where this record ends (header = line 1)
                try:
                    yield line, dict(row, messages=json_text(row["messages"], source, line))
                except InputError as err:
                    on_error(err)
        except (UnicodeDecodeError, csv.Error, OSError, EOFError) as err:
            raise InputError(f"cannot read CSV: {_first_line(err)}", source=source,
                             line=reader.line_num + 1) from err
