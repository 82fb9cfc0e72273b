"""Where the shared cache's bytes live, an S3 bucket (obstore) or a directory, and how they are read: bounded, with
deadlines, and only from regular files.

Anyone with write access to the bucket can put anything under a name, so a read
never trusts the object behind it: its size is checked from its metadata before
its body is read and again as it streams, and in a directory cache only regular
files are opened (a FIFO would block the reader forever, a device could be
anything), without following a link and without blocking. Each S3 request has a
connect and a read deadline and a bounded retry window, so a frozen server costs
seconds once, not minutes per call with the build lock held. A failure of the
cache itself marks it unreachable for the process; a local failure never does.
Every message names URLs without their user info (model/urls.py).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from pydantic import ValidationError

from pytest_inferedgeforge.model.errors import ForgeError, first_line
from pytest_inferedgeforge.model.records.cache import CACHE_ENTRY_FORMAT, CacheEntry
from pytest_inferedgeforge.model.urls import redact_url

if TYPE_CHECKING:
    from obstore.store import ObjectStore
    from securesystemslib.signer import Key

CAS = "cas/sha256/"
AC = "ac/"
CHUNK = 1024 * 1024
"""Bytes read at a time: a refused object costs at most its limit plus this."""
MAX_ENTRY_BYTES = 16 * 1024 * 1024
"""An ``ac/`` entry holds one provenance envelope and a file list; anything larger is not one."""
TIMEOUT_VARIABLE = "FORGE_CACHE_TIMEOUT"
DEFAULT_TIMEOUT_S = 30.0
"""Seconds an S3 read may stall (and the window for retrying a failed request) unless configured."""
CONNECT_TIMEOUT_S = 5.0
"""Seconds to establish a connection, at most (never more than the read timeout)."""
TRANSFER_LIMIT = "3600s"
"""The whole of one request, body included: a 5 GB blob over a slow link, not a stalled one (that is the read
timeout's job)."""
_BUILD_KEY = re.compile(r"[0-9a-f]{64}")
_DIGEST = re.compile(rb"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class CacheRefused(ForgeError):
    """A remote entry that cannot be used: untrusted, unsigned, inconsistent or tampered. The build goes on locally."""


def cache_timeout(value: float | None = None) -> float:
    """The read timeout in seconds: ``value``, else ``FORGE_CACHE_TIMEOUT``, else the default; positive."""
    text = os.environ.get(TIMEOUT_VARIABLE, "") if value is None else str(value)
    try:
        seconds = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        raise ForgeError(f"{TIMEOUT_VARIABLE}={text!r}: not a number of seconds") from None
    if not seconds > 0:
        raise ForgeError(f"cache timeout {seconds}: must be more than 0 seconds")
    return seconds


def _directory(url: str) -> Path | None:
    """The directory of a directory cache URL; None for ``s3://``."""
    if url.startswith("s3://"):
        return None
    if "://" in url and not url.startswith("file://"):
        raise ForgeError(f"shared cache {redact_url(url)}: unsupported scheme; use s3://bucket/prefix or a directory")
    directory = Path(url.removeprefix("file://")).expanduser()
    if directory.exists() and not directory.is_dir():
        raise ForgeError(f"shared cache {redact_url(url)}: not a directory")
    return directory.resolve()


def open_store(url: str, timeout_s: float | None = None) -> ObjectStore:
    """``s3://bucket/prefix`` (endpoint and credentials from the standard ``AWS_*`` variables) or a directory."""
    from obstore.store import LocalStore, from_url

    directory = _directory(url)
    if directory is not None:
        return LocalStore(directory, mkdir=True)
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    read = cache_timeout(timeout_s)
    options = {"connect_timeout": f"{min(CONNECT_TIMEOUT_S, read)}s", "read_timeout": f"{read}s",
               "timeout": TRANSFER_LIMIT, "allow_http": endpoint.startswith("http://")}
    retry = {"max_retries": 3, "retry_timeout": dt.timedelta(seconds=read)}
    try:
        return from_url(url, client_options=options, retry_config=retry, region=region,  # type: ignore[call-overload, no-any-return]
                        **({"endpoint": endpoint} if endpoint else {}))
    except Exception as exc:  # obstore raises its own configuration errors
        raise ForgeError(redact_url(f"shared cache {url}: {first_line(exc, 300)}")) from exc


@dataclass(frozen=True)
class UnusableEntry:
    """An ``ac/`` object that is no entry this Forge can use (another format, junk, too large, not a file)."""

    reason: str
    digests: frozenset[str] | None
    """The digest-shaped names in its bytes, which gc keeps (the entry may name its blobs in a way this Forge does
    not know); None when its bytes could not be read at all."""


def _parsed(key: str, data: bytes) -> CacheEntry:
    try:
        entry = CacheEntry.model_validate_json(data)
    except ValidationError as exc:
        raise CacheRefused(f"{AC}{key} is not a cache entry ({exc.error_count()} schema error(s))") from exc
    if entry.format != CACHE_ENTRY_FORMAT:
        raise CacheRefused(f"{AC}{key} is a {entry.format!r} entry; this Forge reads {CACHE_ENTRY_FORMAT}")
    return entry


def _regular_file(path: Path, name: str) -> tuple[Iterator[bytes], int]:
    """A directory cache's file, opened only if it is a regular file (lstat, then a non-blocking, non-following
    open, then fstat: a FIFO, device, socket or link swapped in between is refused too); its chunks and size."""
    if not stat.S_ISREG(os.lstat(path).st_mode):
        raise CacheRefused(f"{name} in the cache is not a regular file")
    handle: BinaryIO = os.fdopen(os.open(path, _OPEN_FLAGS), "rb", buffering=0)
    info = os.fstat(handle.fileno())
    if not stat.S_ISREG(info.st_mode):
        handle.close()
        raise CacheRefused(f"{name} in the cache is not a regular file")

    def chunks() -> Iterator[bytes]:
        with handle:
            while chunk := handle.read(CHUNK):
                yield chunk

    return chunks(), info.st_size


@dataclass
class SharedCache:
    """A cache URL opened once, with the public keys its entries must be signed by."""

    url: str
    """As given, user info removed: what messages and records name."""
    store: ObjectStore
    trusted: list[Key]
    push: bool = False
    directory: Path | None = None
    """A directory cache's root, read with plain system calls (obstore's local store would open a FIFO)."""
    unreachable: str | None = None
    """Why the cache failed earlier in this process: it is not asked again (each ask costs the client's retries)."""

    def _call(self, what: str, action: Callable[[], Any]) -> Any:
        """``action`` against the cache; a failure of the cache (not a refusal, not a missing object) is said once
        and ends its use in this process."""
        if self.unreachable:
            raise ForgeError(f"shared cache {self.url} failed earlier in this session, not asked again "
                             f"({self.unreachable})")
        try:
            return action()
        except (ForgeError, FileNotFoundError):
            raise
        except Exception as exc:
            from obstore.exceptions import AlreadyExistsError

            if isinstance(exc, AlreadyExistsError):
                raise
            detail = redact_url(first_line(exc, 300))
            self.unreachable = f"{what}: {detail}"
            raise ForgeError(f"shared cache {self.url}: {what} failed: {detail}") from exc

    def _open(self, path: str) -> tuple[Iterator[bytes], int]:
        if self.directory is not None:
            return _regular_file(self.directory / path, path)
        import obstore

        result = obstore.get(self.store, path)
        return iter(result.stream(min_chunk_size=CHUNK)), int(result.meta["size"])

    def reader(self, path: str, limit: int) -> Iterator[bytes] | None:
        """The chunks of ``path``, refused (:class:`CacheRefused`) when it says or turns out to be larger than
        ``limit``; None when there is no such object."""
        try:
            source, size = self._call(f"reading {path}", lambda: self._open(path))
        except FileNotFoundError:
            return None
        if size > limit:
            raise CacheRefused(f"{path} is {size} bytes, too large (at most {limit} expected)")
        return self._bounded(path, source, limit)

    def _bounded(self, path: str, source: Iterator[bytes], limit: int) -> Iterator[bytes]:
        total = 0
        while (chunk := self._call(f"reading {path}", lambda: next(source, None))) is not None:
            total += len(chunk)
            if total > limit:
                raise CacheRefused(f"{path} is larger than the {limit} bytes expected, too large")
            yield chunk

    def read(self, path: str, limit: int) -> bytes | None:
        """The whole of ``path`` (at most ``limit`` bytes); None when there is no such object."""
        chunks = self.reader(path, limit)
        return None if chunks is None else b"".join(chunks)

    def read_entry(self, key: str) -> CacheEntry | None:
        """The entry of ``key``; None when there is none, :class:`CacheRefused` when it is no usable entry."""
        if not _BUILD_KEY.fullmatch(key):  # a name from the command line must not walk out of ac/
            raise ForgeError(f"{key!r} is not a build key (64 hex digits)")
        data = self.read(AC + key, MAX_ENTRY_BYTES)
        return None if data is None else _parsed(key, data)

    def entries(self) -> list[tuple[str, CacheEntry | UnusableEntry]]:
        """Every entry in the cache (or why it cannot be used), by key."""
        found: list[tuple[str, CacheEntry | UnusableEntry]] = []
        for meta in sorted(self.listing(AC), key=lambda item: str(item["path"])):
            key = meta["path"].removeprefix(AC)
            try:
                data = self.read(AC + key, MAX_ENTRY_BYTES)
            except CacheRefused as exc:
                found.append((key, UnusableEntry(str(exc), None)))
                continue
            if data is None:
                continue  # replaced or removed since the listing
            try:
                found.append((key, _parsed(key, data)))
            except CacheRefused as exc:
                found.append((key, UnusableEntry(str(exc), frozenset(name.decode() for name in _DIGEST.findall(data)))))
        return found

    def exists(self, path: str) -> bool:
        import obstore

        try:
            self._call(f"checking {path}", lambda: os.lstat(self.directory / path) if self.directory is not None
                       else obstore.head(self.store, path))
        except FileNotFoundError:
            return False
        return True

    def listing(self, prefix: str) -> list[dict[str, Any]]:
        """Each object under ``prefix``: ``path``, ``size``, ``last_modified``."""
        import obstore

        return list(self._call(f"listing {prefix}", lambda: obstore.list(self.store, prefix).collect()))

    def delete(self, path: str) -> None:
        import obstore

        self._call(f"deleting {path}", lambda: obstore.delete(self.store, path))

    def put_create(self, path: str, data: bytes | Path) -> bool:
        """Write ``path`` only if it does not exist; False when it already did (another writer was first)."""
        import obstore
        from obstore.exceptions import AlreadyExistsError

        try:
            self._call(f"writing {path}", lambda: obstore.put(self.store, path, data, mode="create", use_multipart=False))
        except AlreadyExistsError:
            return False
        return True


def connect(url: str, trust: list[Path], push: bool = False, timeout_s: float | None = None) -> SharedCache:
    """Open the cache at ``url`` with the public keys in ``trust`` (key files are read and checked now); S3 reads
    stall at most ``timeout_s`` seconds (default: ``FORGE_CACHE_TIMEOUT``, else 30)."""
    from pytest_inferedgeforge.model.keys import load_public_keys

    return SharedCache(redact_url(url), open_store(url, timeout_s), load_public_keys(trust), push, _directory(url))
