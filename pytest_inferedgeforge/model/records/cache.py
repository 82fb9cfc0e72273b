"""``ac/<build key>`` in the shared cache: a build's signed provenance and the files to fetch by digest.

The entry is only a claim until checked: a reader trusts nothing in it that the
DSSE envelope does not sign, directly or through the signed manifest's digest
(engine/shared_cache.py verifies it before use); ``model``, ``preset``,
``backend``, ``target``, ``pushed_at`` and ``pushed_from`` are for listing only.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from pytest_inferedgeforge.model.records.build import Record

CACHE_ENTRY_FORMAT = "inferedgeforge-cache-entry-v1"


class CachedFile(Record):
    path: str = Field(description="File name inside the build directory.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Its blob is cas/sha256/<sha256>.")
    size_bytes: int = Field(ge=0)


class CacheEntry(Record):
    format: str = CACHE_ENTRY_FORMAT
    build_key: str
    build_dir_name: str = Field(description=(
        "The build directory's name, as its signed manifest gives it (model stem, target, backend, preset, shapes); "
        "a pull refuses an entry whose name is not that one."))
    model: str | None = None
    preset: str | None = None
    backend: str | None = None
    target: str | None = None
    pushed_at: str
    pushed_from: str | None = Field(None, description="Host name of the pushing runner (informational).")
    envelope: dict[str, Any] = Field(description="provenance.dsse.json: the DSSE envelope over provenance.json.")
    files: list[CachedFile]
