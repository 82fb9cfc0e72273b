"""A tuned build's trial ledger (``tuning/trials.jsonl``): the bytes the manifest and the provenance name, and
every line a trial record. A build without ``toolchain.details.tuning`` has no ledger to check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pytest_inferedgeforge.model.errors import describe_validation_error
from pytest_inferedgeforge.model.records.tuning import TUNE_CALL, TUNING_LEDGER, TuningTrial
from pytest_inferedgeforge.verify.manifest import Issue, hash_issue

LABEL = "toolchain.details.tuning"


def _tune_call_digest(manifest: dict[str, Any]) -> Any:
    calls = (manifest.get("toolchain") or {}).get("calls")
    for call in calls if isinstance(calls, list) else []:
        if isinstance(call, dict) and call.get("api") == TUNE_CALL and isinstance(call.get("args"), dict):
            return call["args"].get("sha256")
    return None


def tuning_issues(build_dir: Path, manifest: dict[str, Any]) -> list[Issue]:
    toolchain = manifest.get("toolchain")
    details = toolchain.get("details") if isinstance(toolchain, dict) else None
    tuning = details.get("tuning") if isinstance(details, dict) else None
    if tuning is None:
        return []
    if not isinstance(tuning, dict) or tuning.get("ledger") != TUNING_LEDGER or not isinstance(tuning.get("sha256"), str):
        return [Issue("ERROR", LABEL, f"must name the ledger {TUNING_LEDGER} and its sha256")]
    if _tune_call_digest(manifest) != tuning["sha256"]:
        return [Issue("ERROR", LABEL, f"the ledger's sha256 differs from the {TUNE_CALL} call's, which the "
                                      "provenance binds")]
    path = build_dir / TUNING_LEDGER
    issues = hash_issue(f"{LABEL}.sha256", path, tuning["sha256"])
    if issues:
        return issues
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        try:
            TuningTrial.model_validate_json(line)
        except ValidationError as exc:
            return [Issue("ERROR", f"{TUNING_LEDGER}:{number}", describe_validation_error(exc, "trial"))]
    if tuning.get("trials") != len(lines):
        return [Issue("ERROR", f"{LABEL}.trials", f"records {tuning.get('trials')!r} trials, the ledger holds "
                                                  f"{len(lines)}")]
    return []
