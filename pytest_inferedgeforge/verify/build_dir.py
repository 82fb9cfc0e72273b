"""Verifying a whole build directory: the manifest's rules and files, the metadata, their agreement, the build key,
every downstream path, and every run record. What ``verify``, ``pytest builds/``, the build cache, runs,
readiness and the handoff commands all rely on."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_inferedgeforge.model.errors import RecordError
from pytest_inferedgeforge.model.jsonio import read_json_object
from pytest_inferedgeforge.model.layout import MANIFEST_FILE, METADATA_FILE
from pytest_inferedgeforge.verify.agreement import agreement_issues, key_issues, lab_path_issues
from pytest_inferedgeforge.verify.manifest import (
    Issue,
    ValidationReport,
    artifact_location,
    hash_issue,
    size_issue,
    validate_manifest_data,
)
from pytest_inferedgeforge.verify.oms import oms_issues
from pytest_inferedgeforge.verify.provenance import provenance_issues
from pytest_inferedgeforge.verify.run_signature import run_signature_issues
from pytest_inferedgeforge.verify.runs import run_record_issues
from pytest_inferedgeforge.verify.signature import signature_issues
from pytest_inferedgeforge.verify.tuning import tuning_issues

if TYPE_CHECKING:
    from securesystemslib.signer import Key


def verify_build_dir(build_dir: Path, keys: list[Key] | None = None, *, require_signature: bool = False,
                     allow_unsigned_runs: bool = False, manifest_checked: ValidationReport | None = None
                     ) -> ValidationReport:
    """The whole-record check. Only a missing directory raises (:class:`RecordError`); anything a record holds,
    however malformed, is reported as an issue. With ``keys``, the build must be signed by one of them
    (verify/signature.py) and so must every run (verify/run_signature.py; an unsigned run is only a warning with
    ``allow_unsigned_runs``).

    ``manifest_checked``: the manifest's rules and files as the caller itself just checked them, on the very bytes
    now on disk (engine/build.py: the manifest it composed, in the same process under the build lock); they are not
    walked again, everything else is."""
    if not build_dir.is_dir():
        raise RecordError(f"Build directory not found: {build_dir}")
    target, build_dir = build_dir, build_dir.resolve()
    try:
        manifest = read_json_object(build_dir / MANIFEST_FILE, "Build manifest")
    except RecordError as exc:
        return ValidationReport(target=target, issues=[Issue("ERROR", MANIFEST_FILE, str(exc))])
    report = (ValidationReport(target=target, issues=list(manifest_checked.issues)) if manifest_checked is not None
              else validate_manifest_data(manifest, build_dir, target))
    try:
        metadata = read_json_object(build_dir / METADATA_FILE, "Build metadata")
    except RecordError as exc:
        report.issues.append(Issue("ERROR", "metadata.json", str(exc)))
        return report
    report.issues.extend(_metadata_artifact_issues(metadata, build_dir))
    report.issues.extend(agreement_issues(metadata, manifest))
    report.issues.extend(key_issues(manifest))
    entry = manifest.get("artifact")
    location, _ = artifact_location(entry, build_dir, "artifact") if isinstance(entry, dict) else (None, [])
    if location is not None:
        report.issues.extend(lab_path_issues(metadata, location, build_dir))
    report.issues.extend(tuning_issues(build_dir, manifest))
    report.issues.extend(provenance_issues(build_dir, manifest))
    report.issues.extend(signature_issues(build_dir, keys or [], require=require_signature))
    report.issues.extend(oms_issues(build_dir, keys or []))
    report.issues.extend(run_record_issues(build_dir, manifest))
    report.issues.extend(run_signature_issues(build_dir, keys or [], allow_unsigned=allow_unsigned_runs))
    return report


def signing_issues(build_dir: Path, keys: list[Key], *, allow_unsigned_runs: bool = False) -> list[Issue]:
    """The part of :func:`verify_build_dir` that ``keys`` change: the build's signature (required with keys), its
    OMS signature and every run's seal; for a caller that holds the keyless verification of the same bytes."""
    return [*signature_issues(build_dir, keys, require=False), *oms_issues(build_dir, keys),
            *run_signature_issues(build_dir, keys, allow_unsigned=allow_unsigned_runs)]


def _metadata_artifact_issues(metadata: dict[str, Any], build_dir: Path) -> list[Issue]:
    artifacts = metadata.get("artifacts")
    if not isinstance(artifacts, list) or not artifacts:
        return [Issue("ERROR", "metadata.artifacts", "metadata.json lists no artifacts")]
    issues: list[Issue] = []
    for index, entry in enumerate(artifacts):
        label = f"metadata.artifacts[{index}]"
        if not isinstance(entry, dict):
            issues.append(Issue("ERROR", label, "must be an object"))
            continue
        location, found = artifact_location(entry, build_dir, label)
        issues.extend(Issue("ERROR", issue.path, issue.message) for issue in found
                      if issue.level == "ERROR" or "not found" in issue.message)
        if location is not None and location.is_file():
            issues.extend(size_issue(f"{label}.size_bytes", location, entry.get("size_bytes")))
            if isinstance(entry.get("sha256"), str) and entry["sha256"]:
                issues.extend(hash_issue(f"{label}.sha256", location, entry["sha256"]))
    return issues
