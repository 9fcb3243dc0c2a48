"""``prepare`` output is pinned byte for byte to run folders written before prepare was rebuilt on the
library's pieces (tests/fixtures/golden_runs, written by the pre-change ``posttrain prepare``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from posttrain.recipes.prepare import PrepareConfig, run_prepare

GOLDEN = Path(__file__).parents[1] / "fixtures" / "golden_runs"
PARITY_FILES = ("dataset_snapshot.json", "rendered_samples.json", "first_batch_payload.json")
# Keys config.json gained after the golden runs were written; everything else must be unchanged.
NEW_CONFIG_KEYS = {"reduction"}

CASES = {
    "default": PrepareConfig(),
    "qwen3_ml1650_bs5_seed3": PrepareConfig(renderer="qwen3", max_length=1650, batch_size=5, seed=3, n_snapshot=6),
}


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("name", sorted(CASES))
def test_prepare_matches_golden_run(tmp_path, name, workers):
    cfg = CASES[name]
    out = tmp_path / name
    run_prepare(PrepareConfig(**{**vars(cfg), "out": str(out), "workers": workers}), show_progress=False)
    golden = GOLDEN / name
    for file in PARITY_FILES:
        assert (out / "parity" / file).read_bytes() == (golden / "parity" / file).read_bytes(), file
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    expected = json.loads((golden / "config.json").read_text(encoding="utf-8"))
    assert {k: v for k, v in config.items() if k not in NEW_CONFIG_KEYS} == expected
    assert config["reduction"] == "none"
