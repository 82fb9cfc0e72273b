"""A fresh build's whole-record verification, handed along instead of walked again.

A build this process has just written, published and verified under the build lock is verified once: the push
(engine/shared_cache.py) and the first run (engine/runs.py) take that report instead of walking the record again.
A run takes it only while the build directory is, entry for entry, what was verified: every file and directory
keeps its device, inode, size, modification and change times (a rewrite moves the ctime, an exchange the inode, a
new run adds entries). A snapshot is taken only once every change is two clock ticks old (as the digest memo
does, model/hashing.py), so a later rewrite cannot keep a ctime the snapshot saw; on a file system with whole-second
times that would mean waiting, and the record is walked again instead. A build from the cache or from a previous
session carries no such report: its runs verify the whole record.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from pytest_inferedgeforge.model.hashing import COARSE_TICK_NS
from pytest_inferedgeforge.verify.build_dir import verify_build_dir
from pytest_inferedgeforge.verify.manifest import ValidationReport

TreeSnapshot = frozenset[tuple[str, int, int, int, int, int]]
"""(path relative to the build directory, device, inode, size, mtime, ctime) of it and every entry under it."""
MAX_WAIT_NS = 3 * COARSE_TICK_NS
"""The longest a snapshot waits for the newest change to age out of the racy window; longer: none is taken."""


def tree_snapshot(root: Path) -> tuple[TreeSnapshot, int]:
    """The identity of ``root`` and of every entry below it (links not followed), and the newest ctime seen."""
    entries: list[tuple[str, int, int, int, int, int]] = []
    pending = [root]
    while pending:
        directory = pending.pop()
        for entry in [directory, *(Path(item.path) for item in os.scandir(directory))]:
            if entry is not directory or directory == root:
                stat = entry.lstat()
                entries.append((str(entry.relative_to(root)), stat.st_dev, stat.st_ino, stat.st_size,
                                stat.st_mtime_ns, stat.st_ctime_ns))
            if entry is not directory and entry.is_dir() and not entry.is_symlink():
                pending.append(entry)
    return frozenset(entries), max(item[5] for item in entries)


def _settled_snapshot(root: Path) -> TreeSnapshot | None:
    """A snapshot no same-tick rewrite can fool, or None when that would mean waiting longer than MAX_WAIT_NS."""
    for _ in range(2):
        started = time.time_ns()
        snapshot, newest = tree_snapshot(root)
        if newest % 1_000_000_000 == 0:  # whole-second times: a coarse file system (model/hashing.py)
            return None
        wait = newest + 2 * COARSE_TICK_NS - started
        if wait < 0:
            return snapshot
        if wait > MAX_WAIT_NS:
            return None
        time.sleep((wait + 1_000_000) / 1e9)
    return None


@dataclass(frozen=True)
class FreshVerification:
    """The whole-record verification (no keys) of a build this process wrote, and the tree it was made on."""

    build_dir: Path
    report: ValidationReport
    snapshot: TreeSnapshot | None

    def report_if_unchanged(self, build_dir: Path) -> ValidationReport | None:
        """The report, while ``build_dir`` is still the tree it verified (the caller holds the build lock)."""
        if self.snapshot is None or build_dir.resolve() != self.build_dir.resolve() or not build_dir.is_dir():
            return None
        return self.report if tree_snapshot(build_dir)[0] == self.snapshot else None


def verify_fresh(build_dir: Path, manifest_checked: ValidationReport) -> FreshVerification:
    """Verify the build just published at ``build_dir`` (under its lock), reusing the manifest check the build made
    on the same bytes; the snapshot is taken first, so nothing changed during the walk goes unnoticed."""
    snapshot = _settled_snapshot(build_dir)
    report = verify_build_dir(build_dir, manifest_checked=manifest_checked)
    return FreshVerification(build_dir.resolve(), report, snapshot)
