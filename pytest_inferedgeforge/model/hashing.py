"""SHA-256 fingerprints of files and of canonical JSON, and the digest memo that hashes each file once.

One pytest item or one CLI command verifies a build several times over (the
cache check, the invariants, the run, the report). Inside a :func:`digest_memo`
scope :func:`file_digest` hashes a given file once: the memo is keyed by the
file's device, inode, size and modification time, so a file that is rewritten
is hashed again, and a build published by a rename keeps its digest. Outside a
scope nothing is remembered.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

FileIdentity = tuple[int, int, int, int]


class DigestMemo:
    """The digests of one unit of work, and how many times each file was actually read."""

    def __init__(self) -> None:
        self._digests: dict[FileIdentity, str] = {}
        self.reads: Counter[str] = Counter()
        """Resolved path -> times its bytes were hashed; a test asserts it never exceeds 1."""

    def digest(self, path: Path) -> str:
        stat = path.stat()
        identity = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
        known = self._digests.get(identity)
        if known is None:
            known = self._digests[identity] = _hash_file(path)
            self.reads[str(path.resolve())] += 1
        return known


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
