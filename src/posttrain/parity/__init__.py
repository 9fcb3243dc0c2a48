"""Parity harness: record a pipeline's artifacts and explain differences against another run.

* :mod:`posttrain.parity.artifacts` — the run-folder format, canonical JSON and hashes.
* :mod:`posttrain.parity.diff` — :func:`diff_runs`, layer by layer, each difference with its cause.
* :mod:`posttrain.parity.cli` — ``posttrain parity diff RUN_A RUN_B``.
"""

from posttrain.parity.artifacts import RunArtifacts, canonical_json, content_hash, read_run, write_run
from posttrain.parity.diff import Finding, ParityReport, diff_runs, render_markdown

__all__ = [
    "Finding",
    "ParityReport",
    "RunArtifacts",
    "canonical_json",
    "content_hash",
    "diff_runs",
    "read_run",
    "render_markdown",
    "write_run",
]
