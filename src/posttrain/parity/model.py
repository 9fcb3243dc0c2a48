"""The report's data model: findings per layer, and the root causes they add up to."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Pipeline stages, in order: where a difference first appears tells which code to fix.
STAGES = ("config", "snapshot", "rendering", "datum building", "batching", "training")


@dataclass
class Finding:
    """One difference. ``layer``: config, dataset_snapshot, rendered_samples, first_batch or metrics.
    ``cause``: the diagnosed cause (see :mod:`posttrain.parity.diff`). ``data_difference`` is False for
    notes that explain bytes, hashes or timings but leave the training data equal."""

    layer: str
    cause: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    data_difference: bool = True

    @property
    def severity(self) -> str:
        """``error`` when the training data differ, ``note`` otherwise."""
        return "error" if self.data_difference else "note"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "severity": self.severity}


@dataclass
class RootCause:
    """One root cause: why it happens, the stage where it first appears, the change that removes it."""

    title: str
    explanation: str
    stage: str
    fix: str
    causes: list[str] = field(default_factory=list)  # the finding causes it accounts for


@dataclass
class ParityReport:
    """All findings of one comparison and their root causes; the runs match when no finding is a data
    difference."""

    run_a: str
    run_b: str
    findings: list[Finding]
    root_causes: list[RootCause] = field(default_factory=list)

    @property
    def match(self) -> bool:
        return not any(f.data_difference for f in self.findings)

    def causes(self) -> list[str]:
        return [f.cause for f in self.findings]

    def find(self, cause: str, layer: str | None = None) -> list[Finding]:
        return [f for f in self.findings if f.cause == cause and (layer is None or f.layer == layer)]

    def to_json(self) -> dict[str, Any]:
        return {"run_a": self.run_a, "run_b": self.run_b, "match": self.match,
                "root_causes": [asdict(r) for r in self.root_causes],
                "findings": [f.to_json() for f in self.findings]}
