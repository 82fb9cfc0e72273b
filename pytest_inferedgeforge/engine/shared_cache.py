"""The shared build cache: content-addressed blobs and signed action entries on the S3 API or a shared directory.

Layout under the cache URL (docs/cache.md): ``cas/sha256/<hex>`` holds each
file by its digest, ``ac/<build key>`` the entry (model/records/cache.py): the
build's DSSE-signed provenance plus its file list. Both are written create-only
(a conditional put), blobs first and the entry last, so concurrent pushers of one
key cannot corrupt anything (one entry wins, the blobs are identical by
construction) and a reader never finds an entry whose blobs are not there yet.

A pull trusts nothing it has not checked: the envelope must verify with a
trusted key, sign a statement about this very build key, and name every file by
the digest it has; each blob is hashed as it streams into a work directory, the
whole record is verified there, and only then is it published with the same
atomic exchange as a local build.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from pytest_inferedgeforge.engine.publish import publish, work_dir_for
from pytest_inferedgeforge.model.containment import check_component
from pytest_inferedgeforge.model.errors import ForgeError, RecordError, first_line
from pytest_inferedgeforge.model.hashing import file_digest
from pytest_inferedgeforge.model.jsonio import read_json_object, write_json_atomic
from pytest_inferedgeforge.model.layout import PROVENANCE_FILE, SIGNATURE_FILE, format_timestamp, utc_now
from pytest_inferedgeforge.model.provenance import Statement
from pytest_inferedgeforge.model.records.cache import CachedFile, CacheEntry
from pytest_inferedgeforge.verify.build_dir import verify_build_dir
from pytest_inferedgeforge.verify.manifest import ValidationReport
from pytest_inferedgeforge.verify.signature import envelope_payload, signed_by

if TYPE_CHECKING:
    from obstore.store import ObjectStore
    from securesystemslib.signer import Key

CAS = "cas/sha256/"
AC = "ac/"
_CHUNK = 8 * 1024 * 1024
MAX_ENTRY_BYTES = 16 * 1024 * 1024


class CacheRefused(ForgeError):
    """A remote entry that cannot be used: untrusted, unsigned, inconsistent or tampered. The build goes on locally."""


def open_store(url: str) -> ObjectStore:
    """``s3://bucket/prefix`` (endpoint and credentials from the standard ``AWS_*`` variables) or a directory."""
    from obstore.store import LocalStore, from_url

    if url.startswith("s3://"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        options = {"connect_timeout": "10s", "timeout": "300s", "allow_http": endpoint.startswith("http://")}
        try:
            return from_url(url, client_options=options, region=region,  # type: ignore[call-overload, no-any-return]
                            **({"endpoint": endpoint} if endpoint else {}))
        except Exception as exc:  # obstore raises its own configuration errors
            raise ForgeError(f"shared cache {url}: {first_line(exc, 300)}") from exc
    if "://" in url and not url.startswith("file://"):
        raise ForgeError(f"shared cache {url}: unsupported scheme; use s3://bucket/prefix or a directory")
    directory = Path(url.removeprefix("file://")).expanduser()
    if directory.exists() and not directory.is_dir():
        raise ForgeError(f"shared cache {url}: not a directory")
    return LocalStore(directory.resolve(), mkdir=True)


@dataclass
class SharedCache:
    """A cache URL opened once, with the public keys its entries must be signed by."""

    url: str
    store: ObjectStore
    trusted: list[Key]
    push: bool = False
    unreachable: str | None = None
    """Why the cache failed earlier in this process: it is not asked again (each ask costs the client's retries)."""

    def _call(self, what: str, action: Any) -> Any:
        if self.unreachable:
            raise ForgeError(f"shared cache {self.url} failed earlier in this session, not asked again "
                             f"({self.unreachable})")
        try:
            return action()
        except (ForgeError, FileNotFoundError):
            raise
        except Exception as exc:
            from obstore.exceptions import AlreadyExistsError, NotFoundError

            if isinstance(exc, AlreadyExistsError | NotFoundError):
                raise
            self.unreachable = f"{what}: {first_line(exc, 300)}"
            raise ForgeError(f"shared cache {self.url}: {what} failed: {first_line(exc, 300)}") from exc

    def read_entry(self, key: str) -> CacheEntry | None:
        """The entry of ``key``; None when there is none."""
        import obstore

        try:
            data = self._call(f"reading {AC}{key}", lambda: bytes(obstore.get(self.store, AC + key).bytes()))
        except FileNotFoundError:
            return None
        if len(data) > MAX_ENTRY_BYTES:
            raise CacheRefused(f"{AC}{key} is {len(data)} bytes, too large to be a cache entry")
        try:
            return CacheEntry.model_validate_json(data)
        except ValidationError as exc:
            raise CacheRefused(f"{AC}{key} is not a cache entry ({exc.error_count()} schema error(s))") from exc

    def entries(self) -> list[tuple[str, CacheEntry | str]]:
        """Every entry in the cache (or why it cannot be read), by key."""
        import obstore

        found: list[tuple[str, CacheEntry | str]] = []
        listing = self._call("listing entries", lambda: obstore.list(self.store, AC).collect())
        for meta in sorted(listing, key=lambda item: item["path"]):
            key = meta["path"].removeprefix(AC)
            try:
                entry = self.read_entry(key)
            except ForgeError as exc:
                found.append((key, str(exc)))
                continue
            if entry is not None:
                found.append((key, entry))
        return found

    def blobs(self) -> list[dict[str, Any]]:
        import obstore

        return list(self._call("listing blobs", lambda: obstore.list(self.store, CAS).collect()))

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

    def exists(self, path: str) -> bool:
        import obstore

        try:
            self._call(f"checking {path}", lambda: obstore.head(self.store, path))
        except FileNotFoundError:
            return False
        return True

    def download(self, path: str, target: Path, expected: CachedFile) -> None:
        """Stream a blob into ``target``, hashing as it goes; :class:`CacheRefused` unless it is the named file."""
        import obstore

        digest = hashlib.sha256()
        size = 0
        try:
            result = self._call(f"reading {path}", lambda: obstore.get(self.store, path))
        except FileNotFoundError as exc:
            raise CacheRefused(f"blob {path} of {expected.path} is missing from the cache") from exc
        def stream() -> None:
            nonlocal size
            with target.open("wb") as handle:
                for chunk in result.stream(min_chunk_size=_CHUNK):
                    size += len(chunk)
                    if size > expected.size_bytes:
                        break
                    digest.update(chunk)
                    handle.write(chunk)

        self._call(f"reading {path}", stream)
        if size != expected.size_bytes or digest.hexdigest() != expected.sha256:
            raise CacheRefused(f"blob {path} does not hash to the digest of {expected.path} (tampered or corrupt "
                               "cache)")


def signed_statement(entry: CacheEntry, key: str, trusted: list[Key]) -> tuple[bytes, Statement]:
    """The provenance an entry's envelope signs, after checking the signer is trusted and the statement is about
    ``key``; :class:`CacheRefused` otherwise."""
    if entry.build_key != key:
        raise CacheRefused(f"{AC}{key} holds an entry for another build key ({entry.build_key[:16]}...)")
    if not trusted:
        raise CacheRefused(f"{AC}{key}: no trusted public key is configured (--forge-trust), so no entry can be trusted")
    try:
        signers = signed_by(entry.envelope, trusted)
        payload = envelope_payload(entry.envelope)
    except RecordError as exc:
        raise CacheRefused(f"{AC}{key}: its envelope is unusable ({exc})") from exc
    if not signers:
        raise CacheRefused(f"{AC}{key} is not signed by a trusted key")
    try:
        statement = Statement.model_validate_json(payload)
    except ValidationError as exc:
        raise CacheRefused(f"{AC}{key}: the signed payload is not Forge provenance") from exc
    signed_key = (statement.predicate.buildDefinition.internalParameters or {}).get("build_key")
    if signed_key != key:
        raise CacheRefused(f"{AC}{key}: the signed provenance is of build key {str(signed_key)[:16]}..., not this one")
    return payload, statement


def _signed_files(statement: Statement, payload: bytes) -> dict[str, str]:
    """File name -> sha256 of everything the signed statement covers (artifacts, records, the provenance itself)."""
    files = {subject.name: subject.digest.get("sha256", "") for subject in statement.subject}
    files.update({str(item.name): (item.digest or {}).get("sha256", "")
                  for item in statement.predicate.runDetails.byproducts or []})
    files[PROVENANCE_FILE] = hashlib.sha256(payload).hexdigest()
    return files


def pull(cache: SharedCache, key: str, build_dir: Path) -> ValidationReport | None:
    """Publish the entry of ``key`` at ``build_dir`` (whose lock the caller holds) after verifying all of it, and
    return the verification it passed.

    None on a miss; :class:`CacheRefused` (one line) when the entry cannot be trusted.
    """
    entry = cache.read_entry(key)
    if entry is None:
        return None
    payload, statement = signed_statement(entry, key, cache.trusted)
    signed = _signed_files(statement, payload)
    listed = {item.path: item for item in entry.files}
    if set(listed) != set(signed) or any(signed[name] != item.sha256 for name, item in listed.items()):
        raise CacheRefused(f"{AC}{key}: its file list does not match the files its signed provenance names")
    for name in listed:
        check_component(name, "cached file name")
    work_dir = work_dir_for(build_dir)
    work_dir.mkdir()
    try:
        for name, item in listed.items():
            cache.download(CAS + item.sha256, work_dir / name, item)
        write_json_atomic(work_dir / SIGNATURE_FILE, entry.envelope)
        report = verify_build_dir(work_dir, cache.trusted)
        if not report.valid:
            raise CacheRefused(f"{AC}{key}: the pulled build does not verify ({report.first_error()})")
        publish(work_dir, build_dir)
    except BaseException:
        shutil.rmtree(work_dir, ignore_errors=True)
        raise
    report.target = build_dir  # the same files, now at their place; every path in them is relative
    return report


@dataclass(frozen=True)
class PushResult:
    key: str
    uploaded: int
    """Blobs written by this push (the others were already in the cache)."""
    bytes_uploaded: int
    entry_written: bool
    """False: another runner had already pushed this key (its entry is kept)."""


def push(cache: SharedCache, build_dir: Path) -> PushResult:
    """Upload a verified, signed build: its blobs (create-only), then its entry (create-only)."""
    report = verify_build_dir(build_dir, cache.trusted or None)
    if not report.valid:
        raise ForgeError(f"refusing to push {build_dir}: it does not verify ({report.first_error()})")
    if not (build_dir / SIGNATURE_FILE).is_file():
        raise ForgeError(f"refusing to push {build_dir}: it is not signed, and the cache serves only signed builds "
                         f"(sign it: inferedgeforge sign {build_dir} --key KEY)")
    envelope = read_json_object(build_dir / SIGNATURE_FILE, "Signature envelope")
    payload = envelope_payload(envelope)
    statement = Statement.model_validate_json(payload)  # it verified against the build just now
    key = str((statement.predicate.buildDefinition.internalParameters or {})["build_key"])
    if cache.exists(AC + key):
        return PushResult(key, 0, 0, entry_written=False)
    files = [CachedFile(path=name, sha256=file_digest(build_dir / name), size_bytes=(build_dir / name).stat().st_size)
             for name in _signed_files(statement, payload)]
    uploaded = sent = 0
    for item in files:
        if not cache.exists(CAS + item.sha256) and cache.put_create(CAS + item.sha256, build_dir / item.path):
            uploaded += 1
            sent += item.size_bytes
    parameters = statement.predicate.buildDefinition.externalParameters
    entry = CacheEntry(build_key=key, build_dir_name=build_dir.name, model=parameters.get("source_model", {}).get("path"),
                       preset=parameters.get("preset"), backend=parameters.get("backend"), target=parameters.get("target"),
                       pushed_at=format_timestamp(utc_now()), pushed_from=socket.gethostname(), envelope=envelope,
                       files=files)
    written = cache.put_create(AC + key, entry.model_dump_json(indent=2).encode())
    return PushResult(key, uploaded, sent, written)


def collect_garbage(cache: SharedCache, grace_s: float, dry_run: bool = False) -> list[str]:
    """Delete blobs no entry names, older than ``grace_s`` (a push writes its blobs before its entry)."""
    referenced = {item.sha256 for _, entry in cache.entries() if isinstance(entry, CacheEntry) for item in entry.files}
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=grace_s)
    doomed = [meta["path"] for meta in cache.blobs()
              if meta["path"].removeprefix(CAS) not in referenced and meta["last_modified"] < cutoff]
    if not dry_run:
        for path in doomed:
            cache.delete(path)
    return doomed


def connect(url: str, trust: list[Path], push: bool = False) -> SharedCache:
    """Open the cache at ``url`` with the public keys in ``trust`` (key files are read and checked now)."""
    from pytest_inferedgeforge.model.keys import load_public_keys

    return SharedCache(url, open_store(url), load_public_keys(trust), push)
