"""A run's checkpoint records (``RUN/checkpoints.jsonl``): one typed line per saved checkpoint.

A record names the checkpoint, the step it holds (the number of optimizer steps taken), and the loop
position to go on from — the *next* batch to train, so a resumed run repeats nothing (tinker-cookbook's
SFT loop records the checkpoint's own batch and trains it twice after a resume). The final record also
holds the sampler weights' path and the final evaluation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from posttrain.runs.log import append_line, read_log

CHECKPOINTS = "checkpoints.jsonl"
FINAL = "final"
# A state checkpoint's own metadata file (engine.checkpoints.META): present once the folder is whole.
STATE_META = "posttrain_checkpoint.json"


@dataclass(frozen=True)
class CheckpointRecord:
    name: str
    step: int
    epoch: int
    batch: int
    state_path: str
    sampler_path: str | None = None
    eval: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> CheckpointRecord:
        return cls(name=raw["name"], step=int(raw["step"]), epoch=int(raw.get("epoch", 0)),
                   batch=int(raw.get("batch", 0)), state_path=raw.get("state_path") or "",
                   sampler_path=raw.get("sampler_path"), eval=dict(raw.get("eval") or {}))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.sampler_path is None:
            del out["sampler_path"]
        if not self.eval:
            del out["eval"]
        return out

    @property
    def is_final(self) -> bool:
        return self.name == FINAL

    @property
    def usable(self) -> bool:
        """Its state checkpoint is whole on disk (missing only if the disk lost it or a person deleted it).
        A service's ``tinker://`` path is taken as usable: the service says otherwise when asked to load it."""
        if self.state_path.startswith("tinker://"):
            return True
        return bool(self.state_path) and (Path(self.state_path) / STATE_META).is_file()


def step_name(step: int) -> str:
    return f"step_{step:06d}"


class CheckpointLog:
    """``RUN/checkpoints.jsonl``: appended one synced line at a time."""

    def __init__(self, run_path: Path, write: bool = True):
        self.path = run_path / CHECKPOINTS
        self.write = write  # False on the non-main ranks of a data-parallel run

    def records(self) -> list[CheckpointRecord]:
        """Every record; a torn last line (a crash mid-write) is cut from the file."""
        return [CheckpointRecord.from_dict(r) for r in read_log(self.path, repair=self.write)]

    def usable(self) -> list[CheckpointRecord]:
        return [r for r in self.records() if r.usable]

    def last(self) -> CheckpointRecord | None:
        usable = self.usable()
        return usable[-1] if usable else None

    def add(self, record: CheckpointRecord) -> None:
        if self.write:
            append_line(self.path, record.to_dict())
