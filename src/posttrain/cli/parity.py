"""``posttrain parity``: the parity harness's commands (defined with the harness)."""

from __future__ import annotations

from posttrain.parity.cli import add_parity_parser as add_parser

__all__ = ["add_parser"]
