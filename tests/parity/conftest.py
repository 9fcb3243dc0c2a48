"""Fixtures shared by the parity tests: the llama3 renderer, the rows every run is built from, and the
run ``posttrain prepare`` would write for them."""

from __future__ import annotations

from pathlib import Path

import pytest

from posttrain import get_renderer
from tests.parity.runs import N_ROWS, Faults, build_pipeline_run, conversation, write_rows


@pytest.fixture(scope="session")
def renderer(llama3_tokenizer):
    return get_renderer("llama3", llama3_tokenizer)


@pytest.fixture(scope="session")
def rows_file(tmp_path_factory) -> Path:
    return write_rows(tmp_path_factory.mktemp("rows") / "rows.jsonl", [conversation(i) for i in range(N_ROWS)])


@pytest.fixture(scope="session")
def reference(tmp_path_factory, rows_file, renderer) -> Path:
    """``posttrain prepare``'s behaviour: one shuffle (seed 0), batch 0 = the first rows of that order."""
    return build_pipeline_run(tmp_path_factory.mktemp("ref") / "run", rows_file, renderer, Faults())
