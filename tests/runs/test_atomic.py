"""Atomic run folders: killed writers and concurrent writers leave a whole old run or a whole new one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from posttrain.runs.atomic import RunFolderError, atomic_run_folder

SRC = Path(__file__).resolve().parents[2] / "src"
FILES = ("config.json", "parity/a.json", "parity/b.json", "parity/c.json")

# A writer that publishes generation after generation, each file written slowly in pieces, so a kill
# lands mid-file, between files, or mid-swap. Every file of generation g holds "g" repeated.
WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from posttrain.runs.atomic import atomic_run_folder
    target, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for g in range(count):
        with atomic_run_folder(target) as tmp:
            (tmp / "parity").mkdir()
            for name in {files!r}:
                with open(tmp / name, "w") as f:
                    for _ in range(20):
                        f.write(f"{{tag}}-{{g}};" * 50)
                        f.flush()
                        time.sleep(0.0005)
        print(tag, g, flush=True)
""").format(files=FILES)


def _writer(target: Path, tag: str, count: int, stdout: int = subprocess.PIPE) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.Popen([sys.executable, "-c", WRITER, str(target), tag, str(count)], env=env,
                            stdout=stdout, text=True)


def _read_run(target: Path) -> set[str] | None:
    """The generation(s) the folder's files hold, read through one directory handle (a reader's snapshot).

    None when the folder being read was replaced meanwhile and is being deleted (files vanish, none
    is ever partial): a reader then reads the path again."""
    fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    try:
        names = sorted(os.listdir(fd))
        if not names:
            return None  # replaced and already emptied
        assert names == ["config.json", "parity"]
        seen = set()
        for name in FILES:
            try:
                with open(os.open(name, os.O_RDONLY, dir_fd=fd), encoding="utf-8") as f:
                    parts = f.read().split(";")
            except FileNotFoundError:
                return None
            assert parts[-1] == "" and len(parts) == 20 * 50 + 1, f"{name} is truncated"
            seen.update(parts[:-1])
        return seen
    finally:
        os.close(fd)


def _assert_whole(target: Path) -> str:
    seen = None
    while seen is None:
        seen = _read_run(target)
    assert len(seen) == 1, f"run folder mixes generations: {sorted(seen)}"
    return seen.pop()


def test_writer_killed_with_sigkill_leaves_a_whole_run(tmp_path):
    target = tmp_path / "run"
    with atomic_run_folder(target) as tmp:  # the old run
        (tmp / "parity").mkdir()
        for name in FILES:
            (tmp / name).write_text("old-0;" * 1000, encoding="utf-8")
    for delay in (0.05, 0.3, 0.55, 0.8, 1.1):
        proc = _writer(target, "new", 1000)
        assert proc.stdout is not None
        proc.stdout.readline()  # the writer has imported and published once: it is mid-run now
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        generation = _assert_whole(target)
        assert generation.startswith("new-")
    # A later writer removes what killed writers left beside the folder.
    with atomic_run_folder(target) as tmp:
        (tmp / "parity").mkdir()
        for name in FILES:
            (tmp / name).write_text("last-0;" * 1000, encoding="utf-8")
    assert _assert_whole(target) == "last-0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_concurrent_writers_never_mix_and_readers_always_see_a_whole_run(tmp_path):
    target = tmp_path / "run"
    writers = [_writer(target, tag, 15, subprocess.DEVNULL) for tag in ("A", "B")]
    seen: set[str] = set()
    while any(w.poll() is None for w in writers):
        if target.exists():
            seen.add(_assert_whole(target))
    for w in writers:
        assert w.returncode == 0
    final = _assert_whole(target)
    assert final in ("A-14", "B-14") and seen
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_failure_inside_leaves_the_old_run_and_no_temporary_folder(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / "config.json").write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_run_folder(target) as tmp:
        (tmp / "config.json").write_text("new", encoding="utf-8")
        raise RuntimeError("render failed")
    assert (target / "config.json").read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_destination_problems_are_reported_before_the_work(tmp_path):
    (tmp_path / "f").write_text("x", encoding="utf-8")
    with pytest.raises(RunFolderError, match=r"f: exists and is not a folder"), atomic_run_folder(tmp_path / "f"):
        pytest.fail("the body must not run")
    with pytest.raises(RunFolderError, match=r"is a file, not a folder"), atomic_run_folder(tmp_path / "f" / "run"):
        pytest.fail("the body must not run")
