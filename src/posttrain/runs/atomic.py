"""Atomic writes, one mechanism for folders, files and caches: whatever is written goes to a temporary
sibling first and is renamed into place, so a reader sees the whole old thing or the whole new one.

* :func:`atomic_run_folder` — a folder that *replaces* its destination (run folders, checkpoints);
* :func:`write_once` — a cache folder written once: if another process got there first, theirs is kept;
* :func:`write_text_atomically` / :func:`write_json_atomically` — one file (``config.json``, a log rewrite).

Atomic run folders: a reader sees a whole old run or a whole new one, never a mix.

:func:`atomic_run_folder` checks the destination *before* any work (a file in the way, an
unwritable parent), hands out a fresh temporary folder beside the destination, and on success swaps
it into place:

* on Linux with ``renameat2(RENAME_EXCHANGE)`` the old and new folders trade places in one atomic
  step, so the destination path never disappears; the old run is then deleted;
* elsewhere the old folder is first renamed aside and the new one renamed in (the path is briefly
  absent, but never half-written), then the old one is deleted.

A writer killed at any point (``kill -9`` included) leaves the destination as it was, plus a hidden
``.NAME.tmp-PID-*`` sibling that the next writer deletes. Concurrent writers each swap in a whole
run; the last one wins. Training loops use the same context manager for their checkpoints and logs.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from posttrain.errors import PosttrainError

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class RunFolderError(PosttrainError, OSError):
    """A run folder cannot be used as asked (written where asked, resumed, locked); says why and where."""


def check_destination(target: str | os.PathLike[str]) -> Path:
    """Fail early, before any work, if ``target`` cannot become a run folder; returns it absolute."""
    path = Path(os.path.abspath(target))
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"{target}: exists and is not a folder")
    parent = path.parent
    for ancestor in (parent, *parent.parents):
        if ancestor.exists():
            if not ancestor.is_dir():
                raise RunFolderError(f"{target}: {ancestor} is a file, not a folder")
            if not os.access(ancestor, os.W_OK | os.X_OK):
                raise RunFolderError(f"{target}: {ancestor} is not writable")
            break
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(path: Path) -> None:
    """Delete temporary siblings left by writers that were killed (their pid is gone)."""
    for kind in ("tmp", "old"):
        for stale in path.parent.glob(f".{path.name}.{kind}-*"):
            pid = stale.name.rsplit(f".{kind}-", 1)[1].split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)


def _fsync_tree(root: Path) -> None:
    # The rename is only as durable as the files it publishes: flush them before it.
    for folder, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux renameat2); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False  # old kernel or a filesystem without exchange: fall back to two renames
    if err == errno.ENOENT:
        return False  # the destination vanished (another writer mid-swap): retry with renames
    raise OSError(err, os.strerror(err), str(b))


def _publish(tmp: Path, target: Path) -> None:
    for _ in range(100):  # concurrent writers may race for the name; each attempt is atomic
        if not target.exists():
            try:
                os.rename(tmp, target)
                return
            except OSError as err:
                if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                continue  # another writer published first: replace its run
        if _exchange(tmp, target):
            shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old run
            return
        old = target.parent / f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(target, old)
        except FileNotFoundError:
            continue
        try:
            os.rename(tmp, target)
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            continue
        finally:
            shutil.rmtree(old, ignore_errors=True)
        return
    raise RunFolderError(f"{target}: could not replace the run folder (other writers kept replacing it)")


@contextlib.contextmanager
def atomic_run_folder(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary folder; on normal exit it replaces ``target`` atomically.

    On an exception (or a kill) ``target`` is left untouched and the temporary folder removed."""
    path = check_destination(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(path)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent))
    except OSError as err:
        raise RunFolderError(f"{target}: cannot create the run folder: {err.strerror or err}") from err
    try:
        yield tmp
        _fsync_tree(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700; a run folder is an ordinary folder
        _publish(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)



def write_once(target: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` and rename ``tmp`` to ``target``; if another process got there first, keep theirs.

    For caches: every writer computes the same content, so the first whole copy wins."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-{os.getpid()}-"))
    try:
        write(tmp)
        os.replace(tmp, target)
    except OSError:
        if not target.exists():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` beside ``path``, sync it, then rename it into place: a crash leaves the old file or
    the new one, never half of either. Readable by others (mkstemp alone makes it 0600)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomically(path: Path, obj: Any) -> None:
    write_text_atomically(path, json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
