"""Parity harness: record a pipeline's artifacts and explain differences against another run.

* :mod:`posttrain.parity.artifacts` — the run-folder format, canonical JSON and hashes.
* :mod:`posttrain.parity.diff` — :func:`diff_runs`, layer by layer, each difference with its cause.
* :mod:`posttrain.parity.report` — :func:`render_markdown`, the readable report.
* :mod:`posttrain.parity.cli` — ``posttrain parity diff RUN_A RUN_B``.

``docs/parity.md`` describes the format and how each cause is decided.
"""

from posttrain.parity.artifacts import (
    RunArtifacts,
    canonical_json,
    content_hash,
    hash_hex,
    read_run,
    write_run,
)
from posttrain.parity.diff import diff_runs
from posttrain.parity.model import Finding, ParityReport, RootCause
from posttrain.parity.report import render_markdown

__all__ = [
    "Finding",
    "ParityReport",
    "RootCause",
    "RunArtifacts",
    "canonical_json",
    "content_hash",
    "diff_runs",
    "hash_hex",
    "read_run",
    "render_markdown",
    "write_run",
]
