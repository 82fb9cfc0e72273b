"""Checking each run's seal, ``runs/<run id>/run.dsse.json`` (docs/records.md#signed-runs).

Without trusted keys a seal that is present must still hold: its subjects are the
run's files with their digests and its predicate is the run summary's. With keys
(``verify --key``, ``--forge-trust``), every run must be sealed by one of them:
run figures are made after the build was signed, often elsewhere, so the build's
signature says nothing about them. An unsigned run is then an ERROR, or a WARNING
labelled untrusted with ``allow_unsigned``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from pytest_inferedgeforge.model.errors import RecordError
from pytest_inferedgeforge.model.hashing import file_digest
from pytest_inferedgeforge.model.jsonio import read_json_object
from pytest_inferedgeforge.model.layout import RUN_SUMMARY_FILE, RUNS_DIR, run_dirs
from pytest_inferedgeforge.model.records.run import RunSummary
from pytest_inferedgeforge.model.run_attestation import (
    RUN_PREDICATE_TYPE,
    RUN_SIGNATURE_FILE,
    RunStatement,
    parse_run_statement,
    run_predicate,
    signed_files,
)
from pytest_inferedgeforge.verify.manifest import Issue
from pytest_inferedgeforge.verify.signature import envelope_payload, signed_by

if TYPE_CHECKING:
    from securesystemslib.signer import Key


def _statement(path: Path) -> tuple[dict[str, Any], RunStatement]:
    envelope = read_json_object(path, "Run signature envelope")
    try:
        return envelope, RunStatement.model_validate(parse_run_statement(envelope_payload(envelope)))
    except (ValueError, ValidationError) as exc:
        raise RecordError(f"its payload is not a run statement ({str(exc).splitlines()[0]})") from exc


def _seal_issues(run_dir: Path, statement: RunStatement, label: str) -> list[Issue]:
    """The statement covers exactly the run's files, at their digests, and says what the summary says."""
    if statement.predicateType != RUN_PREDICATE_TYPE:
        return [Issue("ERROR", label, f"predicateType must be {RUN_PREDICATE_TYPE}")]
    covered = {subject.name: subject.digest.get("sha256") for subject in statement.subject}
    present = signed_files(run_dir)
    issues = [Issue("ERROR", label, f"{name} is in the run but not covered by its signature") for name in present
              if name not in covered]
    issues += [Issue("ERROR", label, f"{name} is signed but missing from the run") for name in covered
               if name not in present]
    issues += [Issue("ERROR", label, f"{name} changed after the run was signed (sha256 differs)") for name in present
               if name in covered and file_digest(run_dir / name) != covered[name]]
    try:
        summary = RunSummary.model_validate(read_json_object(run_dir / RUN_SUMMARY_FILE, "Run summary"))
    except (RecordError, ValidationError):
        return issues  # the run record checks report the summary itself
    # the host is the runner's word, signed; everything else must follow from the summary
    expected = run_predicate(summary, {}).model_copy(update={"host": statement.predicate.host})
    if expected != statement.predicate:
        differing = sorted(key for key, value in expected.model_dump().items()
                           if value != statement.predicate.model_dump().get(key))
        issues.append(Issue("ERROR", label, f"the signed predicate differs from the run summary ({', '.join(differing)})"))
    return issues


def _one_run(run_dir: Path, keys: list[Key], allow_unsigned: bool) -> list[Issue]:
    label = f"{RUNS_DIR}/{run_dir.name}/{RUN_SIGNATURE_FILE}"
    path = run_dir / RUN_SIGNATURE_FILE
    if not path.is_file():
        if not keys:
            return []
        if allow_unsigned:
            return [Issue("WARNING", label, "missing: the run is unsigned, so its figures are untrusted "
                                            "(--allow-unsigned-runs)")]
        return [Issue("ERROR", label, "missing: the run is unsigned, so no trusted key stands behind its figures "
                                      "(run it with --sign-key / --forge-sign-key, or pass --allow-unsigned-runs)")]
    try:
        envelope, statement = _statement(path)
    except RecordError as exc:
        return [Issue("ERROR", label, str(exc))]
    issues = _seal_issues(run_dir, statement, label)
    if keys:
        try:
            accepted = signed_by(envelope, keys)
        except RecordError as exc:
            return [*issues, Issue("ERROR", label, str(exc))]
        if not accepted:
            issues.append(Issue("ERROR", label, "no signature on the run verifies with a trusted key"))
    return issues


def run_signature_issues(build_dir: Path, keys: list[Key], *, allow_unsigned: bool = False) -> list[Issue]:
    """Every run's seal holds; with ``keys``, every run is sealed by one of them."""
    return [issue for run_dir in run_dirs(build_dir) for issue in _one_run(run_dir, keys, allow_unsigned)]
