"""Keeping the shared cache whole: ``cache gc`` and ``cache check``.

gc must never make an entry dangle: entries are create-only, so a dangling one
would refuse every runner until a push repairs it. It keeps every blob any entry
names, an entry it cannot parse included (every digest-shaped name in its bytes:
another Forge version may name blobs its own way), deletes nothing while an entry
cannot be read at all, and keeps unreferenced blobs younger than the grace period
(a push writes its blobs before its entry). Blobs are listed before entries, so
an entry written while gc runs still protects what it names; the one window left
(a push reusing an old orphan just as gc deletes it) is closed by the push, which
checks its blobs again after writing its entry.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from pytest_inferedgeforge.engine.cache_store import AC, CAS, SharedCache, UnusableEntry
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.records.cache import CacheEntry


@dataclass(frozen=True)
class Collection:
    """What gc decided; a dry run decides the same and deletes nothing."""

    doomed: list[str]
    """Unreferenced blobs older than the grace period: deleted (or, dry, would be)."""
    young: list[str]
    """Unreferenced blobs within the grace period: kept."""
    protected: dict[str, list[str]] = field(default_factory=dict)
    """Entry key -> the blobs kept only because that entry, which this Forge cannot parse, names them."""


def collect_garbage(cache: SharedCache, grace_s: float, dry_run: bool = False) -> Collection:
    """Delete blobs no entry names, older than ``grace_s``; a :class:`ForgeError`, deleting nothing, while an entry
    cannot be read."""
    blobs = cache.listing(CAS)
    entries = cache.entries()
    unreadable = [(key, entry.reason) for key, entry in entries if isinstance(entry, UnusableEntry) and entry.digests is None]
    if unreadable:
        key, reason = unreadable[0]
        raise ForgeError(f"gc deletes nothing while an entry cannot be read ({len(unreadable)}; {AC}{key}: {reason}); "
                         "see 'inferedgeforge cache check'")
    referenced = {item.sha256 for _, entry in entries if isinstance(entry, CacheEntry) for item in entry.files}
    guarded = {digest: key for key, entry in entries if isinstance(entry, UnusableEntry) for digest in entry.digests or ()}
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=grace_s)
    doomed: list[str] = []
    young: list[str] = []
    protected: dict[str, list[str]] = {}
    for meta in sorted(blobs, key=lambda item: str(item["path"])):
        path = str(meta["path"])
        digest = path.removeprefix(CAS)
        if digest in referenced:
            continue
        if digest in guarded:
            protected.setdefault(guarded[digest], []).append(path)
        elif meta["last_modified"] >= cutoff:
            young.append(path)
        else:
            doomed.append(path)
    if not dry_run:
        for path in doomed:
            cache.delete(path)
    return Collection(doomed, young, protected)


Status = Literal["ok", "dangling", "unreadable", "foreign"]


@dataclass(frozen=True)
class EntryCheck:
    key: str
    status: Status
    """``dangling``: blobs are missing; ``unreadable``: its bytes cannot be read (gc stops); ``foreign``: not an entry
    this Forge can parse (its blobs are kept, not checked)."""
    missing: list[str]
    """File names whose blobs are missing."""
    reason: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in ("dangling", "unreadable")


def check_entries(cache: SharedCache) -> list[EntryCheck]:
    """Every entry, with the files whose blobs are missing."""
    checks = []
    for key, entry in cache.entries():
        if isinstance(entry, CacheEntry):
            missing = [item.path for item in entry.files if not cache.exists(CAS + item.sha256)]
            checks.append(EntryCheck(key, "dangling" if missing else "ok", missing))
        else:
            checks.append(EntryCheck(key, "unreadable" if entry.digests is None else "foreign", [], entry.reason))
    return checks
