"""Publishing a finished build directory durably, and recovering from a kill at any moment.

A build is written into ``.tmp-<name>-<8 hex>`` beside its final place, fsynced,
and swapped in. Where the OS has it (Linux ``renameat2(RENAME_EXCHANGE)``) the
swap is one atomic exchange; elsewhere it is two renames, the old build parked
as ``.old-<name>-<8 hex>``, and a kill between them is repaired by the next
build of that name, which restores the parked build. Work directories of any
name whose lock is free and that are older than :data:`LEFTOVER_GRACE_S` are
removed by the next build in the root. :func:`build_lock` is the one lock of a
build directory.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from pytest_inferedgeforge.model.jsonio import fsync_path, fsync_tree
from pytest_inferedgeforge.model.layout import MANIFEST_FILE, lock_file

LEFTOVER = re.compile(r"^\.(tmp|old)-(.+)-([0-9a-f]{8})$")
LEFTOVER_GRACE_S = 600
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@contextmanager
def build_lock(build_dir: Path, timeout: float = -1) -> Iterator[None]:
    """The one lock of a build directory, shared by builds, runs and attach, so a rebuild never swaps a build
    out from under a run; ``timeout=0`` only tests it (:class:`filelock.Timeout` when it is held)."""
    with FileLock(str(lock_file(build_dir.resolve())), timeout=timeout):
        yield


def work_dir_for(build_dir: Path) -> Path:
    return build_dir.with_name(f".tmp-{build_dir.name}-{uuid.uuid4().hex[:8]}")


def _exchange(left: Path, right: Path) -> bool:
    """Atomically swap two existing paths; False where the OS or file system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(left), _AT_FDCWD, os.fsencode(right), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(right))


def publish(work_dir: Path, build_dir: Path) -> None:
    """Make ``work_dir`` the build at ``build_dir``: fsynced first, one exchange (or a recoverable pair of renames)."""
    fsync_tree(work_dir)
    if not build_dir.exists():
        os.replace(work_dir, build_dir)
    elif _exchange(work_dir, build_dir):
        shutil.rmtree(work_dir, ignore_errors=True)  # it now holds the retired build
    else:
        retired = build_dir.with_name(f".old-{build_dir.name}-{uuid.uuid4().hex[:8]}")
        os.replace(build_dir, retired)
        os.replace(work_dir, build_dir)
        fsync_path(build_dir.parent)
        shutil.rmtree(retired, ignore_errors=True)
    fsync_path(build_dir.parent)


def _leftovers(root: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in root.iterdir() if root.is_dir() else []:
        match = LEFTOVER.match(path.name)
        if match and path.is_dir() and not path.is_symlink():
            found.setdefault(match.group(2), []).append(path)
    return found


def recover(build_dir: Path, leftovers: list[Path]) -> str | None:
    """With ``build_dir``'s lock held: restore a parked build if the new one never arrived, drop the rest.

    Returns what was restored, for the build log.
    """
    restored = None
    if not build_dir.exists():
        parked = sorted((p for p in leftovers if p.name.startswith(".old-") and (p / MANIFEST_FILE).is_file()),
                        key=lambda p: p.stat().st_mtime, reverse=True)
        if parked:
            os.replace(parked[0], build_dir)
            fsync_path(build_dir.parent)
            restored = f"restored {build_dir.name} from {parked[0].name}, left by an interrupted --force swap"
    for path in leftovers:
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
    return restored


def sweep(root: Path, own: Path) -> list[str]:
    """Recover ``own`` (whose lock the caller holds) and every other dead build name's leftovers in ``root``."""
    notes = []
    for name, paths in _leftovers(root).items():
        if name == own.name:
            note = recover(own, paths)
        else:
            if time.time() - max(p.stat().st_mtime for p in paths) < LEFTOVER_GRACE_S:
                continue
            try:
                with build_lock(root / name, timeout=0):
                    note = recover(root / name, paths)
            except Timeout:
                continue  # a live build of that name
        if note:
            notes.append(note)
    return notes
