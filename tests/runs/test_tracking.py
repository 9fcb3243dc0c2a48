"""Tracking: TensorBoard event files, an offline W&B run and a trackio run hold every metric of
metrics.jsonl, read back with each tool's own reader; a resumed run continues the same ones."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from posttrain.errors import PosttrainError
from posttrain.runs.tracking import STATE_FILE, check_trackers, open_trackers, parse_trackers, replay

CONFIG = {"learning_rate": 1e-4, "model_name": "tiny", "lora": {"rank": 8, "targets": ["q", "v"]}, "seed": None}
STEPS = 12
CRASH_AFTER = 8  # session 1 sends steps 0..7 to the trackers, but its last checkpoint is at step 6
CHECKPOINT = 6


def row(step: int) -> dict[str, Any]:
    """One metrics.jsonl line: per-batch metrics, a sparse eval, an int and a string."""
    r: dict[str, Any] = {"step": step, "train_mean_nll": 2.0 - 0.05 * step + 0.01 * (step % 3),
                         "learning_rate": 1e-4 * (1 - step / STEPS), "optim/grad_norm": 1.5 + step / 7,
                         "num_sequences": 4 + step % 2, "time/step": 0.25, "phase": "warmup" if step < 3 else "main"}
    if step % 4 == 0:
        r["test/nll"] = 2.1 - 0.04 * step
    return r


def write_metrics(path: Path, steps: range) -> None:
    path.write_text("".join(json.dumps(row(s), sort_keys=True) + "\n" for s in steps), encoding="utf-8")


@pytest.fixture
def offline_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """W&B offline (as it defaults to), quiet, and with its settings and caches in tmp_path."""
    for var in ("WANDB_MODE", "WANDB_PROJECT", "WANDB_DIR", "WANDB_API_KEY", "TRACKIO_SPACE_ID", "TRACKIO_SERVER_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home" / var.lower()))


def run_two_sessions(run_dir: Path, names: list[str]) -> None:
    """Session 1 tracks steps 0..7 and dies; the resumed session truncates metrics.jsonl to the checkpoint
    (as the loop does), replays it, and recomputes steps 6..11."""
    metrics = run_dir / "metrics.jsonl"
    tracking = open_trackers(names, run_dir, CONFIG, run_name="sft-test", resume=False)
    with pytest.raises(RuntimeError), tracking:
        for step in range(CRASH_AFTER):
            tracking.log(row(step), step)
        raise RuntimeError("killed")
    write_metrics(metrics, range(CHECKPOINT))
    with open_trackers(names, run_dir, CONFIG, run_name="ignored-on-resume", resume=True) as tracking:
        assert replay(metrics, tracking) == 0  # every line is already in both trackers
        for step in range(CHECKPOINT, STEPS):
            tracking.log(row(step), step)
    write_metrics(metrics, range(STEPS))


def expected_scalars(metrics: Path) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for line in metrics.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        for key, value in r.items():
            if key != "step" and isinstance(value, int | float):
                out.setdefault(key, {})[r["step"]] = float(value)
    return out


# --- TensorBoard -------------------------------------------------------------------------------------------


def tensorboard_events(log_dir: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def tensorboard_scalars(acc: Any) -> dict[str, list[tuple[int, float]]]:
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def tensorboard_hparams(acc: Any) -> dict[str, Any]:
    from tensorboard.plugins.hparams import plugin_data_pb2

    data = plugin_data_pb2.HParamsPluginData.FromString(acc.PluginTagToContent("hparams")["_hparams_/session_start_info"])
    hparams = data.session_start_info.hparams
    return {k: getattr(v, v.WhichOneof("kind")) for k, v in hparams.items()}


def assert_tensorboard_matches(log_dir: Path, metrics: Path) -> None:
    got = tensorboard_scalars(tensorboard_events(log_dir))
    want = expected_scalars(metrics)
    assert set(got) == set(want)
    for key, by_step in want.items():
        assert [s for s, _ in got[key]] == sorted(by_step), key  # every step, once, in order
        assert [v for _, v in got[key]] == pytest.approx([by_step[s] for s in sorted(by_step)], rel=1e-6), key


def test_tensorboard_holds_every_metric_and_resume_appends_without_duplicates(tmp_path: Path) -> None:
    run_two_sessions(tmp_path, ["tensorboard"])
    log_dir = tmp_path / "tensorboard"
    assert len(list(log_dir.glob("events.out.tfevents.*"))) == 2  # the resumed session wrote beside the first
    assert_tensorboard_matches(log_dir, tmp_path / "metrics.jsonl")
    acc = tensorboard_events(log_dir)
    assert tensorboard_hparams(acc) == {"learning_rate": 1e-4, "model_name": "tiny", "lora/rank": 8,
                                        "lora/targets": '["q", "v"]', "seed": "null"}
    phase = [(e.step, e.tensor_proto.string_val[0].decode()) for e in acc.Tensors("phase/text_summary")]
    assert phase == [(s, row(s)["phase"]) for s in range(STEPS)]
    assert json.loads((tmp_path / STATE_FILE).read_text())["logged_through"] == {"tensorboard": STEPS - 1}


def test_tensorboard_resume_purges_steps_past_the_record(tmp_path: Path) -> None:
    """Steps an earlier session wrote to the event file but not to tracking.json (a crash between the two)
    are replaced, not doubled: the resumed writer's purge_step drops them."""
    with open_trackers(["tensorboard"], tmp_path, CONFIG, run_name="x", resume=False) as tracking:
        for step in range(5):
            tracking.log(row(step), step)
    state = json.loads((tmp_path / STATE_FILE).read_text())
    state["logged_through"]["tensorboard"] = 2  # steps 3 and 4 are in the events file only
    (tmp_path / STATE_FILE).write_text(json.dumps(state))
    with open_trackers(["tensorboard"], tmp_path, CONFIG, run_name="x", resume=True) as tracking:
        for step in range(3, 6):
            tracking.log(row(step), step)
    write_metrics(tmp_path / "metrics.jsonl", range(6))
    assert_tensorboard_matches(tmp_path / "tensorboard", tmp_path / "metrics.jsonl")


def test_replay_mirrors_an_old_run(tmp_path: Path) -> None:
    """A run that had no tracker: resuming it with one sends the whole log; a second replay sends nothing."""
    write_metrics(tmp_path / "metrics.jsonl", range(STEPS))
    with open_trackers(["tensorboard"], tmp_path, CONFIG, run_name="old", resume=True) as tracking:
        assert replay(tmp_path / "metrics.jsonl", tracking) == STEPS
    with open_trackers(["tensorboard"], tmp_path, CONFIG, run_name="old", resume=True) as tracking:
        assert replay(tmp_path / "metrics.jsonl", tracking) == 0
    assert_tensorboard_matches(tmp_path / "tensorboard", tmp_path / "metrics.jsonl")


# --- W&B (offline) -----------------------------------------------------------------------------------------


def wandb_records(path: Path) -> Iterator[Any]:
    """The records of a ``.wandb`` file: a 7-byte ``:W&B`` header, then LevelDB-log framing (32 KiB blocks;
    each chunk ``crc32 · length · type``, type 1 a whole record, 2/3/4 its first/middle/last part)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, payload = 7, b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a chunk header is padding
            pos += 32768 - pos % 32768
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if pos + 7 + length > len(data):  # a chunk still being written
            return
        payload += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            yield wandb_internal_pb2.Record.FromString(payload)
            payload = b""


def finished_records(path: Path, timeout: float = 15.0) -> list[Any]:
    """W&B's writer (the wandb-core process) may still be writing when ``finish`` returns: wait for the
    session's closing ``exit`` record."""
    deadline = time.monotonic() + timeout
    while True:
        records = list(wandb_records(path))
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


def wandb_history(wandb_dir: Path) -> tuple[set[str], dict[str, Any], list[dict[str, Any]]]:
    """The run ids, the config and the history rows (in file order) of every session in ``RUN/wandb``."""
    ids: set[str] = set()
    config: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for path in sorted(wandb_dir.glob("offline-run-*/run-*.wandb")):
        for rec in finished_records(path):
            kind = rec.WhichOneof("record_type")
            if kind == "run":
                ids.add(rec.run.run_id)
                config.update({i.key: json.loads(i.value_json) for i in rec.run.config.update if i.key != "_wandb"})
            elif kind == "history":
                rows.append({"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in rec.history.item})
    return ids, config, rows


def test_wandb_offline_run_holds_every_metric_and_resume_continues_it(tmp_path: Path, offline_env: None) -> None:
    run_two_sessions(tmp_path, ["wandb"])
    state = json.loads((tmp_path / STATE_FILE).read_text())
    sessions = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert len(sessions) == 2 and all(f"-{state['id']}" in p.name for p in sessions)  # same id: one run
    ids, config, rows = wandb_history(tmp_path / "wandb")
    assert ids == {state["id"]}
    assert config == CONFIG
    assert [r["_step"] for r in rows] == list(range(STEPS))  # every step once: 6, 7 not sent again
    want = [{k: v for k, v in row(s).items() if k != "step"} for s in range(STEPS)]
    got = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    assert got == want


def test_wandb_respects_the_users_mode(tmp_path: Path, offline_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    with open_trackers(["wandb"], tmp_path, CONFIG, run_name="x", resume=False) as tracking:
        tracking.log(row(0), 0)
    assert not list(tmp_path.glob("wandb/offline-run-*"))


# --- trackio ------------------------------------------------------------------------------------------------

TRACKIO_SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from trackio.sqlite_storage import SQLiteStorage
    from posttrain.runs.tracking import open_trackers

    run_dir, config = Path(sys.argv[1]), json.loads(sys.argv[2])
    rows = [json.loads(line) for line in sys.stdin]
    for resume, steps in ((False, range(0, 8)), (True, range(6, len(rows)))):
        with open_trackers(["trackio"], run_dir, config, run_name="sft-test", resume=resume) as tracking:
            for s in steps:
                tracking.log(rows[s], s)
    name = "sft-test-" + tracking.run_id
    print(json.dumps({"runs": SQLiteStorage.get_runs("posttrain"), "logs": SQLiteStorage.get_logs("posttrain", name),
                      "config": SQLiteStorage.get_run_config("posttrain", name)}, default=str))
""")


def test_trackio_holds_every_metric_and_resume_continues_it(tmp_path: Path) -> None:
    """In a process of its own: trackio fixes its store (TRACKIO_DIR) when it is imported."""
    env = {**os.environ, "TRACKIO_DIR": str(tmp_path / "trackio")}
    env.pop("TRACKIO_SPACE_ID", None)
    env.pop("TRACKIO_SERVER_URL", None)
    stdin = "".join(json.dumps(row(s)) + "\n" for s in range(STEPS))
    done = subprocess.run([sys.executable, "-c", TRACKIO_SCRIPT, str(tmp_path), json.dumps(CONFIG)], input=stdin,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert len(out["runs"]) == 1  # the resumed session continued the run rather than starting another
    assert [r["step"] for r in out["logs"]] == list(range(STEPS))
    for r in out["logs"]:
        want = {k: v for k, v in row(r["step"]).items() if k != "step"}
        assert {k: r[k] for k in want} == want
    assert {k: out["config"][k] for k in CONFIG} == CONFIG


# --- names --------------------------------------------------------------------------------------------------


def test_parse_trackers_normalises_and_checks() -> None:
    assert parse_trackers(" TensorBoard,wandb , tensorboard,") == ["tensorboard", "wandb"]
    assert parse_trackers("") == []
    with pytest.raises(PosttrainError, match=r"unknown tracker 'mlflow' \(expected some of tensorboard, wandb, trackio\)"):
        parse_trackers("tensorboard,mlflow")


def test_a_tracker_not_installed_is_one_line_naming_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(PosttrainError) as err:
        check_trackers(["tensorboard", "wandb"])
    assert str(err.value) == "--log-with wandb needs the 'wandb' package: pip install 'wandb' (or pip install 'posttrain[track]')"
    with pytest.raises(PosttrainError, match="'wandb' package"):
        open_trackers(["wandb"], Path("/nonexistent"), {}, run_name="x", resume=False)


def test_no_trackers_does_nothing(tmp_path: Path) -> None:
    with open_trackers([], tmp_path, CONFIG, run_name="x", resume=False) as tracking:
        assert tracking.log(row(0), 0) is False
    assert list(tmp_path.iterdir()) == []
