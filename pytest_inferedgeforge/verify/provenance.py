"""Checking ``provenance.json``: the in-toto and SLSA field rules, and agreement with the build it describes.

The statement is recomposed from the manifest and the digests of the build's
records on disk, and compared with the file (all but ``invocationId``, which is
unique per build). So an edit of the artifact, the manifest, the metadata, the
log or the provenance itself shows here, signed or not; the signature
(verify/signature.py) then says who stands behind the file.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pytest_inferedgeforge.model.errors import RecordError
from pytest_inferedgeforge.model.hashing import file_digest
from pytest_inferedgeforge.model.jsonio import read_json_object
from pytest_inferedgeforge.model.layout import PROVENANCE_FILE
from pytest_inferedgeforge.model.provenance import (
    BYPRODUCT_FILES,
    SLSA_PROVENANCE,
    SPEC_EXACT_SINCE,
    STATEMENT_TYPE,
    compose_statement,
    statement_to_dict,
)
from pytest_inferedgeforge.model.records.build import Manifest
from pytest_inferedgeforge.verify.manifest import Issue

PROVENANCE_SINCE_FORMAT = 6
"""The record format from which every build carries ``provenance.json``; older builds predate it."""
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128, "sha1": 40, "sha224": 56, "sha512_256": 64,
                   "sha3_256": 64, "sha3_384": 96, "sha3_512": 128, "gitCommit": 40, "md5": 32}
_HEX = re.compile(r"^[0-9a-f]+$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
_UTC = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?Z$")
"""in-toto's Timestamp: RFC 3339 in UTC, ``Z``, an optional fraction; no offsets, basic or week-date forms."""
_PLUS_ZERO = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?\+00:00$")
"""What records before format 7 wrote (Python's ``isoformat``): RFC 3339, but not in-toto's form."""


def _descriptor_issues(value: Any, where: str, *, needs_name: bool = False) -> list[Issue]:
    """in-toto ResourceDescriptor: an object with at least one of uri, digest or content; digests well formed."""
    if not isinstance(value, dict):
        return [Issue("ERROR", where, "must be an object")]
    issues = []
    if not any(value.get(key) for key in ("uri", "digest", "content")):
        issues.append(Issue("ERROR", where, "a ResourceDescriptor needs at least one of uri, digest or content"))
    if needs_name and not (isinstance(value.get("name"), str) and value["name"]):
        issues.append(Issue("ERROR", f"{where}.name", "a subject needs a non-empty name"))
    if "uri" in value and not (isinstance(value["uri"], str) and _URI.match(value["uri"])):
        issues.append(Issue("ERROR", f"{where}.uri", f"{value['uri']!r} is not a URI"))
    digest = value.get("digest")
    if digest is not None or needs_name:
        if not isinstance(digest, dict) or not digest:
            issues.append(Issue("ERROR", f"{where}.digest", "must be a non-empty map of algorithm to hex value"))
            return issues
        for algorithm, hex_value in digest.items():
            expected = _DIGEST_LENGTHS.get(algorithm)
            if not (isinstance(hex_value, str) and _HEX.match(hex_value)) or (expected and len(hex_value) != expected):
                issues.append(Issue("ERROR", f"{where}.digest.{algorithm}",
                                    f"must be lowercase hex{f' of {expected} characters' if expected else ''}"))
    return issues


def _is_instant(match: re.Match[str] | None) -> bool:
    if match is None:
        return False
    try:
        dt.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")
    except ValueError:  # 2026-13-40T25:00:00Z matches the pattern, names no instant
        return False
    return True


def _timestamp_issues(value: Any, where: str, v1: bool) -> list[Issue]:
    """A Timestamp must be UTC with ``Z``; a record older than format 7 wrote ``+00:00``: a WARNING there."""
    if value is None:
        return []
    text = value if isinstance(value, str) else ""
    if _is_instant(_UTC.match(text)):
        return []
    if v1 and _is_instant(_PLUS_ZERO.match(text)):
        return [Issue("WARNING", where, f"{value!r} has a numeric offset where in-toto's Timestamp is UTC with 'Z'; "
                                        f"records before format {SPEC_EXACT_SINCE} wrote it so (a rebuild writes 'Z')")]
    return [Issue("ERROR", where, f"{value!r} is not an RFC 3339 UTC timestamp (YYYY-MM-DDThh:mm:ss[.fraction]Z)")]


def _object(parent: dict[str, Any], key: str, where: str, issues: list[Issue]) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        issues.append(Issue("ERROR", f"{where}{key}", "is required and must be an object"))
        return {}
    return value


def _list_of_descriptors(value: Any, where: str) -> list[Issue]:
    if value is None:
        return []
    if not isinstance(value, list):
        return [Issue("ERROR", where, "must be a list")]
    return [issue for index, item in enumerate(value) for issue in _descriptor_issues(item, f"{where}[{index}]")]


def statement_rules(statement: dict[str, Any], v1: bool = False) -> list[Issue]:
    """The required-field rules of in-toto Statement v1 and SLSA Provenance v1, as their specifications state them;
    ``v1``: the statement of a record older than format 7, whose ``+00:00`` timestamps are only a WARNING."""
    issues: list[Issue] = []
    if statement.get("_type") != STATEMENT_TYPE:
        issues.append(Issue("ERROR", "_type", f"must be {STATEMENT_TYPE}"))
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        issues.append(Issue("ERROR", "subject", "must be a non-empty list"))
    else:
        for index, subject in enumerate(subjects):
            issues += _descriptor_issues(subject, f"subject[{index}]", needs_name=True)
    if statement.get("predicateType") != SLSA_PROVENANCE:
        issues.append(Issue("ERROR", "predicateType", f"must be {SLSA_PROVENANCE}"))
    predicate = _object(statement, "predicate", "", issues)
    definition = _object(predicate, "buildDefinition", "predicate.", issues) if predicate else {}
    if predicate:
        where = "predicate.buildDefinition."
        if not (isinstance(definition.get("buildType"), str) and _URI.match(definition["buildType"])):
            issues.append(Issue("ERROR", f"{where}buildType", "is required and must be a URI"))
        _object(definition, "externalParameters", where, issues)
        if "internalParameters" in definition and not isinstance(definition["internalParameters"], dict):
            issues.append(Issue("ERROR", f"{where}internalParameters", "must be an object"))
        issues += _list_of_descriptors(definition.get("resolvedDependencies"), f"{where}resolvedDependencies")
        run = _object(predicate, "runDetails", "predicate.", issues)
        builder = _object(run, "builder", "predicate.runDetails.", issues) if run else {}
        if run and not (isinstance(builder.get("id"), str) and _URI.match(builder["id"])):
            issues.append(Issue("ERROR", "predicate.runDetails.builder.id", "is required and must be a URI"))
        metadata = run.get("metadata") if run else None
        if isinstance(metadata, dict):
            for key in ("startedOn", "finishedOn"):
                issues += _timestamp_issues(metadata.get(key), f"predicate.runDetails.metadata.{key}", v1)
        issues += _list_of_descriptors(run.get("byproducts") if run else None, "predicate.runDetails.byproducts")
    return issues


def _differences(expected: Any, found: Any, where: str) -> list[str]:
    if isinstance(expected, dict) and isinstance(found, dict):
        return [line for key in sorted(expected.keys() | found.keys(), key=str)
                for line in _differences(expected.get(key), found.get(key), f"{where}.{key}" if where else key)]
    if isinstance(expected, list) and isinstance(found, list) and len(expected) == len(found):
        return [line for index, (left, right) in enumerate(zip(expected, found, strict=True))
                for line in _differences(left, right, f"{where}[{index}]")]
    return [] if expected == found else [where or "<root>"]


def _at(value: Any, *keys: str) -> Any:
    """``value[k1][k2]...``, or None where any level is missing or not an object."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def byproduct_digests(build_dir: Path) -> dict[str, str]:
    """sha256 of each of the build's own records that exists."""
    return {name: file_digest(build_dir / name) for name in BYPRODUCT_FILES if (build_dir / name).is_file()}


def provenance_issues(build_dir: Path, manifest: dict[str, Any]) -> list[Issue]:
    """``provenance.json`` against the rules and against the build: files on disk and the manifest."""
    path = build_dir / PROVENANCE_FILE
    record_format = _at(manifest, "build", "record_format")
    if not path.is_file():
        if isinstance(record_format, int) and record_format >= PROVENANCE_SINCE_FORMAT:
            return [Issue("ERROR", PROVENANCE_FILE, "missing: every build of this record format has its provenance")]
        return [Issue("WARNING", PROVENANCE_FILE, "this build predates provenance (no provenance.json); "
                                                  "'inferedgeforge sign' writes one from its manifest")]
    try:
        statement = read_json_object(path, "Provenance")
    except RecordError as exc:
        return [Issue("ERROR", PROVENANCE_FILE, str(exc))]
    v1 = not (isinstance(record_format, int) and record_format >= SPEC_EXACT_SINCE)
    issues = [Issue(issue.level, f"{PROVENANCE_FILE}:{issue.path}", issue.message)
              for issue in statement_rules(statement, v1)]
    try:
        parsed = Manifest.model_validate(manifest)
    except ValidationError:
        return issues  # the manifest's own schema issues say why; nothing to compare with
    invocation = _at(statement, "predicate", "runDetails", "metadata", "invocationId")
    expected = statement_to_dict(compose_statement(parsed, byproduct_digests(build_dir), str(invocation)))
    if invocation is None:
        expected["predicate"]["runDetails"]["metadata"].pop("invocationId")
    differing = _differences(expected, statement, "")
    if differing:
        shown = ", ".join(differing[:4]) + (f" and {len(differing) - 4} more" if len(differing) > 4 else "")
        issues.append(Issue("ERROR", PROVENANCE_FILE, f"does not describe this build's files and records; differs at "
                                                      f"{shown} (an artifact, record or the provenance was changed)"))
    return issues
