"""SHA-256 fingerprints of files and of canonical JSON, and the digest memo that hashes each file once.

One pytest item or one CLI command verifies a build several times over (the
cache check, the invariants, the run, the report). Inside a :func:`digest_memo`
scope :func:`file_digest` hashes a given file once: the memo is keyed by the
file's device, inode, size, modification and change times, so a file that is
rewritten (even with its size and mtime restored, which moves its ctime) is
hashed again, and a build published by a rename keeps its digest. A file
changed within a clock tick of being hashed is not remembered (see
:func:`_racy_window_ns`). Outside a scope nothing is remembered.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

FileIdentity = tuple[int, int, int, int, int]
COARSE_TICK_NS = 4_000_000
"""Linux stamps file times from its coarse clock, one scheduler tick per step: 4 ms at HZ=250, the common
default (1 ms at HZ=1000; kernels since 6.13 stamp a ctime that was looked at finely)."""


class DigestMemo:
    """The digests of one unit of work, and how many times each file was actually read."""

    def __init__(self) -> None:
        self._digests: dict[FileIdentity, str] = {}
        self.reads: Counter[str] = Counter()
        """Resolved path -> times its bytes were hashed; a test asserts it never exceeds 1."""

    def digest(self, path: Path) -> str:
        identity = file_identity(path)
        known = self._digests.get(identity)
        if known is None:
            started = time.time_ns()
            known = _hash_file(path)
            self.reads[str(path.resolve())] += 1
            ctime_ns = identity[-1]
            if file_identity(path) == identity and started - ctime_ns > _racy_window_ns(ctime_ns):
                self._digests[identity] = known
        return known


def file_identity(path: Path) -> FileIdentity:
    """What changes when the file's bytes can have: device, inode, size, mtime and ctime (not atime, which a read
    moves). The digest memo and the preset memo key on it."""
    stat = path.stat()
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def _racy_window_ns(ctime_ns: int) -> int:
    """How recent a change may be for a later rewrite to leave the same ctime (git's "racy clean" problem).

    A rewrite that restores size and mtime (``os.utime``) still sets the ctime to the time of the rewrite, so
    the ctime tells it apart, unless the rewrite falls in the same tick of the file system's clock as the change
    the memo saw. A file changed less than two ticks before it was hashed is therefore not remembered. A ctime
    in whole seconds means a file system with coarse timestamps: two seconds.
    """
    if ctime_ns % 1_000_000_000 == 0:
        return 2_000_000_000
    return 2 * COARSE_TICK_NS


_MEMO: ContextVar[DigestMemo | None] = ContextVar("forge_digest_memo", default=None)


@contextmanager
def digest_memo() -> Iterator[DigestMemo]:
    """Remember file digests until the block ends; nested scopes share the outer memo."""
    outer = _MEMO.get()
    if outer is not None:
        yield outer
        return
    memo = DigestMemo()
    token = _MEMO.set(memo)
    try:
        yield memo
    finally:
        _MEMO.reset(token)


def file_digest(path: Path) -> str:
    """Lowercase hex SHA-256 of a file's bytes (through the memo when a scope is open)."""
    memo = _MEMO.get()
    return memo.digest(path) if memo is not None else _hash_file(path)


def _hash_file(path: Path) -> str:
    """Streamed, so large models stay out of memory."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def canonical_json(value: Any) -> str:
    """A stable text form of JSON-able data: sorted keys, no whitespace."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def sha256_json(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()
