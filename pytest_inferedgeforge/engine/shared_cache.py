"""The shared build cache: content-addressed blobs and signed action entries on the S3 API or a shared directory.

Layout under the cache URL (docs/cache.md): ``cas/sha256/<hex>`` holds each
file by its digest, ``ac/<build key>`` the entry (model/records/cache.py): the
build's DSSE-signed provenance plus its file list. Both are written create-only
(a conditional put), blobs first and the entry last, so concurrent pushers of one
key cannot corrupt anything (one entry wins, the blobs are identical by
construction). A push checks its blobs again after writing its entry and puts
back any that a gc took in between, and a push that finds its key's entry
dangling repairs or replaces it, so no entry stays dangling.

A pull trusts nothing it has not checked, and an entry's unsigned fields decide
nothing: the envelope must verify with a trusted key and sign a statement about
this very build key; the file list must name exactly the signed digests; the
signed manifest (fetched first, by its signed digest) fixes each artifact's size
and the build directory's name, which must be the entry's and the caller's. Each
blob streams into a work directory up to its size and is hashed, the whole record
is verified there, and only then published with the same atomic exchange as a
local build, never over an existing build: a build of the same key already there
is kept, runs and all; one of another key is refused.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from pytest_inferedgeforge.engine.cache_store import AC, CAS, CacheRefused, SharedCache, connect, open_store
from pytest_inferedgeforge.engine.publish import publish, work_dir_for
from pytest_inferedgeforge.model.containment import check_component
from pytest_inferedgeforge.model.errors import ForgeError, RecordError
from pytest_inferedgeforge.model.hashing import file_digest
from pytest_inferedgeforge.model.jsonio import read_json_object, write_json_atomic
from pytest_inferedgeforge.model.layout import (
    MANIFEST_FILE,
    PROVENANCE_FILE,
    SIGNATURE_FILE,
    build_dir_name,
    format_timestamp,
    shapes_tag,
    utc_now,
)
from pytest_inferedgeforge.model.onnx_model import ModelInfo, TensorInfo
from pytest_inferedgeforge.model.provenance import Statement
from pytest_inferedgeforge.model.records.build import Manifest, load_manifest
from pytest_inferedgeforge.model.records.cache import CachedFile, CacheEntry
from pytest_inferedgeforge.verify.build_dir import signing_issues, verify_build_dir
from pytest_inferedgeforge.verify.manifest import ValidationReport
from pytest_inferedgeforge.verify.signature import envelope_payload, signed_by

if TYPE_CHECKING:
    from securesystemslib.signer import Key

__all__ = ["AC", "CAS", "CacheRefused", "SharedCache", "connect", "open_store", "pull", "pull_into", "push",
           "verified_entry"]

MAX_RECORD_BYTES = 64 * 1024 * 1024
"""build.log, metadata.json and manifest.json: the signed statement names their digests but not their sizes, so
each download is bounded by this (artifacts by the sizes the signed manifest states)."""


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


def signed_build_dir_name(manifest: Manifest) -> str:
    """The name a local build of ``manifest`` has (model/layout.py): model stem, target, backend, preset and, for a
    dynamic model, its shapes, all from the manifest (``shapes_tag`` reads only the inputs)."""
    source = manifest.source_model
    inputs = tuple(TensorInfo(item.name, item.dtype, tuple(item.model_dims)) for item in source.inputs or [])
    model = ModelInfo(path=Path(source.path), opset=source.opset or 0, ir_version=source.ir_version or 0, producer="",
                      inputs=inputs, outputs=(), external_data=())
    return build_dir_name(Path(source.path), manifest.build.target, manifest.build.backend, manifest.build.preset_name,
                          shapes_tag(model, manifest.input_shapes or {}))


@dataclass(frozen=True)
class VerifiedEntry:
    """An entry checked against its signed record, before any artifact is downloaded: what a pull fetches."""

    key: str
    entry: CacheEntry
    payload: bytes
    """provenance.json, exactly as signed."""
    manifest: bytes
    """manifest.json, fetched by its signed digest."""
    build_dir_name: str
    sizes: dict[str, int]
    """Each file still to download -> its size: the signed one (artifacts) or the listed one, bounded (records)."""


def _fetch_record(cache: SharedCache, item: CachedFile) -> bytes:
    data = cache.read(CAS + item.sha256, MAX_RECORD_BYTES)
    if data is None:
        raise CacheRefused(f"blob {CAS}{item.sha256} of {item.path} is missing from the cache")
    if hashlib.sha256(data).hexdigest() != item.sha256:
        raise CacheRefused(f"blob {CAS}{item.sha256} does not hash to the digest of {item.path} (tampered or corrupt "
                           "cache)")
    return data


def _signed_manifest(key: str, data: bytes) -> Manifest:
    try:
        manifest = Manifest.model_validate_json(data)
    except ValidationError as exc:
        raise CacheRefused(f"{AC}{key}: its signed manifest is not a Forge manifest") from exc
    if manifest.build.build_key != key:
        raise CacheRefused(f"{AC}{key}: its signed manifest is of another build key")
    return manifest


def _sizes(key: str, statement: Statement, manifest: Manifest, listed: dict[str, CachedFile]) -> dict[str, int]:
    """What to download, each with the size it must have: an artifact's from the signed manifest (the entry must
    agree), a record's as listed if it is small enough to be one."""
    signed = {artifact.file or artifact.path.rsplit("/", 1)[-1]: artifact.size_bytes
              for artifact in manifest.artifacts or [manifest.artifact]}
    sizes: dict[str, int] = {}
    for subject in statement.subject:
        size = signed.get(subject.name)
        if size is None:
            raise CacheRefused(f"{AC}{key}: its signed manifest states no size for {subject.name}")
        if listed[subject.name].size_bytes != size:
            raise CacheRefused(f"{AC}{key}: its file list says {listed[subject.name].size_bytes} bytes for "
                               f"{subject.name}, its signed manifest {size}")
        sizes[subject.name] = size
    for name, item in listed.items():
        if name in sizes or name in (MANIFEST_FILE, PROVENANCE_FILE):
            continue
        if item.size_bytes > MAX_RECORD_BYTES:
            raise CacheRefused(f"{AC}{key}: its file list says {item.size_bytes} bytes for {name}, too large for a record")
        sizes[name] = item.size_bytes
    return sizes


def verified_entry(cache: SharedCache, key: str) -> VerifiedEntry | None:
    """The entry of ``key`` with its signature, file list, sizes and build directory name checked; None on a miss,
    :class:`CacheRefused` (one line) when it cannot be trusted."""
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
    manifest_bytes = _fetch_record(cache, listed[MANIFEST_FILE])
    manifest = _signed_manifest(key, manifest_bytes)
    try:
        name = signed_build_dir_name(manifest)
    except ForgeError as exc:
        raise CacheRefused(f"{AC}{key}: its signed manifest names no usable build directory ({exc})") from exc
    if entry.build_dir_name != name:
        raise CacheRefused(f"{AC}{key} says its build directory is {entry.build_dir_name!r}, its signed manifest "
                           f"{name!r} (a forged entry)")
    return VerifiedEntry(key, entry, payload, manifest_bytes, name, _sizes(key, statement, manifest, listed))


def _download(cache: SharedCache, item: CachedFile, target: Path, size: int) -> None:
    """Stream a blob into ``target``, never more than ``size`` bytes, hashing as it goes; :class:`CacheRefused`
    unless it is the named file."""
    path = CAS + item.sha256
    chunks = cache.reader(path, size)
    if chunks is None:
        raise CacheRefused(f"blob {path} of {item.path} is missing from the cache")
    digest = hashlib.sha256()
    written = 0
    with target.open("wb") as handle:
        for chunk in chunks:
            digest.update(chunk)
            handle.write(chunk)
            written += len(chunk)
    if written != size or digest.hexdigest() != item.sha256:
        raise CacheRefused(f"blob {path} does not hash to the digest of {item.path} (tampered or corrupt cache)")


def _adopt(build_dir: Path, key: str, trusted: list[Key]) -> ValidationReport:
    """The build already at ``build_dir``, kept as it is (runs included) if it is this key's and verifies."""
    try:
        recorded = load_manifest(build_dir / MANIFEST_FILE).build.build_key
    except RecordError:
        recorded = None
    if recorded != key:
        raise CacheRefused(f"{build_dir} holds a build of another build key (or none); a pull never replaces a build")
    report = verify_build_dir(build_dir, trusted, allow_unsigned_runs=True)  # this runner's runs are its own
    if not report.valid:
        raise CacheRefused(f"{build_dir} holds this build key but does not verify ({report.first_error()}); a pull "
                           "never replaces a build: rebuild or remove it")
    return report


def pull_into(cache: SharedCache, verified: VerifiedEntry, build_dir: Path) -> ValidationReport:
    """Publish ``verified`` at ``build_dir`` (whose lock the caller holds), or keep the same build already there;
    the verification it passed. A local failure (a full disk) is a :class:`ForgeError` that says so: the cache
    stays in use."""
    if build_dir.name != verified.build_dir_name:
        raise CacheRefused(f"{AC}{verified.key} is the build {verified.build_dir_name}, not {build_dir.name}")
    if build_dir.exists():
        return _adopt(build_dir, verified.key, cache.trusted)
    files = {item.path: item for item in verified.entry.files}
    work_dir = work_dir_for(build_dir)
    try:
        work_dir.mkdir()
        (work_dir / PROVENANCE_FILE).write_bytes(verified.payload)
        (work_dir / MANIFEST_FILE).write_bytes(verified.manifest)
        for name, size in verified.sizes.items():
            _download(cache, files[name], work_dir / name, size)
        write_json_atomic(work_dir / SIGNATURE_FILE, verified.entry.envelope)
        report = verify_build_dir(work_dir, cache.trusted)
        if not report.valid:
            raise CacheRefused(f"{AC}{verified.key}: the pulled build does not verify ({report.first_error()})")
        publish(work_dir, build_dir)
    except OSError as exc:  # the cache's own failures arrive as ForgeError: this one is this machine's
        shutil.rmtree(work_dir, ignore_errors=True)
        raise ForgeError(f"pulling {build_dir.name} failed on this machine, not in the cache: {exc}") from exc
    except BaseException:
        shutil.rmtree(work_dir, ignore_errors=True)
        raise
    report.target = build_dir  # the same files, now at their place; every path in them is relative
    return report


def pull(cache: SharedCache, key: str, build_dir: Path) -> ValidationReport | None:
    """Publish the entry of ``key`` at ``build_dir`` (whose lock the caller holds) after verifying all of it, and
    return the verification it passed. None on a miss; :class:`CacheRefused` (one line) when the entry cannot be
    trusted or ``build_dir`` is not its place."""
    verified = verified_entry(cache, key)
    return None if verified is None else pull_into(cache, verified, build_dir)


@dataclass(frozen=True)
class PushResult:
    key: str
    uploaded: int
    """Blobs written by this push (the others were already in the cache)."""
    bytes_uploaded: int
    entry_written: bool
    """False: another runner had already pushed this key (its entry is kept)."""
    repaired: int = 0
    """Of the blobs written, those an entry already named: taken (by a gc) after this push found them, or missing
    from the entry found in the cache."""


def _upload(cache: SharedCache, build_dir: Path, files: list[CachedFile]) -> list[CachedFile]:
    """Put each file the cache lacks (create-only); those this call wrote."""
    written = []
    for item in files:
        if not cache.exists(CAS + item.sha256) and cache.put_create(CAS + item.sha256, build_dir / item.path):
            written.append(item)
    return written


def _settle(cache: SharedCache, key: str, build_dir: Path, files: list[CachedFile]) -> PushResult | None:
    """The entry of ``key`` already there: kept, with any of its missing blobs this build has put back; None when it
    names missing blobs this build cannot supply (it is deleted: this push replaces it) or it is gone."""
    try:
        existing = cache.read_entry(key)
    except CacheRefused:
        return PushResult(key, 0, 0, entry_written=False)  # another format or unreadable: not ours to judge
    if existing is None:
        return None
    ours = {item.sha256: item for item in files}
    missing = [item for item in existing.files if not cache.exists(CAS + item.sha256)]
    if any(item.sha256 not in ours for item in missing):
        cache.delete(AC + key)
        return None
    repaired = _upload(cache, build_dir, [ours[item.sha256] for item in missing])
    return PushResult(key, len(repaired), sum(item.size_bytes for item in repaired), entry_written=False,
                      repaired=len(repaired))


def push(cache: SharedCache, build_dir: Path, verified: ValidationReport | None = None) -> PushResult:
    """Upload a verified, signed build: its blobs (create-only), then its entry (create-only), then any blob that
    went missing meanwhile. ``verified``: the keyless whole-record verification this process made of the same,
    unchanged directory under the lock it still holds (a fresh build, engine/build.py); then only what the cache's
    trusted keys add is checked."""
    if verified is None:
        report = verify_build_dir(build_dir, cache.trusted or None, allow_unsigned_runs=True)  # runs are not pushed
    else:
        report = ValidationReport(target=build_dir, issues=[
            *verified.issues, *(signing_issues(build_dir, cache.trusted, allow_unsigned_runs=True) if cache.trusted else [])])
    if not report.valid:
        raise ForgeError(f"refusing to push {build_dir}: it does not verify ({report.first_error()})")
    if not (build_dir / SIGNATURE_FILE).is_file():
        raise ForgeError(f"refusing to push {build_dir}: it is not signed, and the cache serves only signed builds "
                         f"(sign it: inferedgeforge sign {build_dir} --key KEY)")
    envelope = read_json_object(build_dir / SIGNATURE_FILE, "Signature envelope")
    payload = envelope_payload(envelope)
    statement = Statement.model_validate_json(payload)  # it verified against the build just now
    key = str((statement.predicate.buildDefinition.internalParameters or {})["build_key"])
    files = [CachedFile(path=name, sha256=file_digest(build_dir / name), size_bytes=(build_dir / name).stat().st_size)
             for name in _signed_files(statement, payload)]
    if cache.exists(AC + key):
        settled = _settle(cache, key, build_dir, files)
        if settled is not None:
            return settled
    uploaded = _upload(cache, build_dir, files)
    parameters = statement.predicate.buildDefinition.externalParameters
    name = signed_build_dir_name(load_manifest(build_dir / MANIFEST_FILE))  # where a pull will put it, whatever
    entry = CacheEntry(build_key=key, build_dir_name=name, model=parameters.get("source_model", {}).get("path"),
                       preset=parameters.get("preset"), backend=parameters.get("backend"), target=parameters.get("target"),
                       pushed_at=format_timestamp(utc_now()), pushed_from=socket.gethostname(), envelope=envelope,
                       files=files)
    written = cache.put_create(AC + key, entry.model_dump_json(indent=2).encode())
    repaired = _upload(cache, build_dir, files) if written else []  # a gc may have taken a blob found present
    sent = uploaded + repaired
    return PushResult(key, len(sent), sum(item.size_bytes for item in sent), written, repaired=len(repaired))
