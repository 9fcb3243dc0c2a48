"""Kill -9 and resume, through the one run lifecycle, for SFT, DPO and RL alike: the process is killed
right after it records a checkpoint (a real SIGKILL: no cleanup runs), `--resume` goes on from it, and
every metric of the resumed run equals the uninterrupted run's, step for step."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from posttrain.cli import main
from posttrain.runs.log import read_metrics, without_timings

# Dies by SIGKILL once the checkpoint of step argv[1] is recorded; the rest of argv is the command.
DIE_AFTER_CHECKPOINT = textwrap.dedent("""
    import os, signal, sys
    from posttrain.runs.loop import Loop

    record = Loop._record

    def record_then_die(self, at, path):
        record(self, at, path)
        if at.step + 1 >= int(sys.argv[1]):
            os.kill(os.getpid(), signal.SIGKILL)

    Loop._record = record_then_die
    from posttrain.cli import main
    sys.exit(main(sys.argv[2:]))
""")

TINY = ["--model", "posttrain:tiny-smollm2", "--lora-rank", "4", "--max-steps", "6", "--save-every", "2", "--quiet"]
COMMANDS = {
    "sft": ["train", "sft", *TINY, "--batch-size", "4", "--max-length", "96", "--test-size", "4", "--eval-every", "3",
            "--lr", "5e-3"],
    "dpo": ["train", "dpo", *TINY, "--batch-size", "2", "--max-length", "96", "--test-size", "4", "--eval-every", "3"],
    "rl": ["train", "rl", "--recipe", "token_target", *TINY[2:]],
}


@pytest.mark.parametrize("recipe", sorted(COMMANDS))
def test_kill_then_resume_equals_the_uninterrupted_run(recipe, tmp_path):
    command = COMMANDS[recipe]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert main([*command, "--out", str(straight)]) == 0
    want = without_timings(read_metrics(straight / "metrics.jsonl"))
    assert [r["step"] for r in want] == list(range(6))

    script = tmp_path / "die.py"
    script.write_text(DIE_AFTER_CHECKPOINT)
    proc = subprocess.run([sys.executable, str(script), "4", *command, "--out", str(killed)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    records = [json.loads(line) for line in (killed / "checkpoints.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]  # killed before its final checkpoint
    assert len(read_metrics(killed / "metrics.jsonl")) == 4

    assert main([*command, "--out", str(killed), "--resume"]) == 0
    assert without_timings(read_metrics(killed / "metrics.jsonl")) == want
    final = [json.loads(line) for line in (killed / "checkpoints.jsonl").read_text().splitlines()][-1]
    want_final = [json.loads(line) for line in (straight / "checkpoints.jsonl").read_text().splitlines()][-1]
    assert final["name"] == "final" and final.get("eval") == want_final.get("eval")
