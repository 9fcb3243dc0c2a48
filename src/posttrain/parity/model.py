"""What a parity diff returns: findings (layer, cause, summary, evidence) and the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Finding:
    """One difference. ``layer``: config, dataset_snapshot, rendered_samples, first_batch or metrics.
    ``cause``: the diagnosed root cause (see :mod:`posttrain.parity.diff`). ``data_difference`` is
    False for notes that explain bytes or hashes but leave the training data equal."""

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
class ParityReport:
    """All findings of one comparison; the runs match when no finding is a data difference."""

    run_a: str
    run_b: str
    findings: list[Finding]

    @property
    def match(self) -> bool:
        return not any(f.data_difference for f in self.findings)

    def causes(self) -> list[str]:
        return [f.cause for f in self.findings]

    def find(self, cause: str) -> list[Finding]:
        return [f for f in self.findings if f.cause == cause]

    def to_json(self) -> dict[str, Any]:
        return {"run_a": self.run_a, "run_b": self.run_b, "match": self.match,
                "findings": [f.to_json() for f in self.findings]}
