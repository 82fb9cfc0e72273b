"""The agent manifest (docs/contract.md#agent-manifest): how an on-device agent should run a Forge artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_inferedgeforge.handoff.lab import first_text
from pytest_inferedgeforge.model.defaults import AGENT_TYPES, FALLBACK_MODES, TELEMETRY_VERSION
from pytest_inferedgeforge.verify.manifest import Issue, ValidationReport

AGENT_SCHEMA_VERSION = "inferedge-agent-manifest-v1"


def create_agent_manifest(manifest: dict[str, Any], manifest_path: str, *, agent_id: str, agent_type: str,
                          priority: int, latency_budget_ms: int, deadline_ms: int, input_type: str,
                          output_type: str, fallback_mode: str, required_backend: str | None = None,
                          device_target: str | None = None, precision: str | None = None,
                          runtime_artifact_path: str | None = None, tool_schema_path: str | None = None,
                          telemetry_contract_version: str = TELEMETRY_VERSION,
                          guard_policy: dict[str, Any] | None = None) -> dict[str, Any]:
    runtime, build, artifact = (manifest.get(k) or {} for k in ("runtime", "build", "artifact"))
    # The original writes "" for anything it cannot infer.
    backend = required_backend or first_text(runtime.get("engine"), build.get("backend")) or ""
    device = device_target or first_text(runtime.get("device"), build.get("target")) or ""
    chosen_precision = precision or first_text(runtime.get("precision"), artifact.get("precision")) or ""
    artifact_path = runtime_artifact_path or first_text(runtime.get("artifact_path"), artifact.get("path"),
                                                        artifact.get("model_path")) or ""
    payload: dict[str, Any] = {
        "schema_version": AGENT_SCHEMA_VERSION, "agent_id": agent_id, "agent_type": agent_type,
        "priority": priority, "latency_budget_ms": latency_budget_ms, "deadline_ms": deadline_ms,
        "input_type": input_type, "output_type": output_type, "required_backend": backend,
        "device_target": device, "precision": chosen_precision, "runtime_artifact_path": artifact_path,
        "fallback_policy": {"mode": fallback_mode}, "telemetry_contract_version": telemetry_contract_version,
        "lab_compat": {"source_manifest_path": manifest_path, "runtime_artifact_path": artifact_path,
                       "required_backend": backend, "device_target": device, "precision": chosen_precision},
    }
    if tool_schema_path is not None:
        payload["tool_schema_path"] = tool_schema_path
    if guard_policy is not None:
        payload["guard_policy"] = guard_policy
    return payload


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _lab_compat_issues(data: dict[str, Any]) -> list[Issue]:
    """The ``lab_compat`` mirror must exist and equal the top-level backend, device, precision and artifact."""
    lab = data.get("lab_compat")
    if not isinstance(lab, dict):
        return [Issue("ERROR", "lab_compat", "lab_compat must be an object.")]
    issues = []
    for key in ("source_manifest_path", "runtime_artifact_path", "required_backend", "device_target", "precision"):
        if not (isinstance(lab.get(key), str) and lab[key].strip()):
            issues.append(Issue("ERROR", f"lab_compat.{key}", f"lab_compat.{key} must be a non-empty string."))
        elif key != "source_manifest_path" and lab[key] != data.get(key):
            issues.append(Issue("ERROR", f"{key}/lab_compat.{key}", f"{key} and lab_compat.{key} must match."))
    return issues


def validate_agent_manifest(data: dict[str, Any], target: Path) -> ValidationReport:
    report = ValidationReport(target=target)
    add = report.issues.append
    if data.get("schema_version") != AGENT_SCHEMA_VERSION:
        add(Issue("ERROR", "schema_version", f"schema_version must be '{AGENT_SCHEMA_VERSION}'."))
    for key in ("agent_id", "input_type", "output_type", "required_backend", "device_target", "precision",
                "runtime_artifact_path", "telemetry_contract_version"):
        if not (isinstance(data.get(key), str) and data[key].strip()):
            add(Issue("ERROR", key, f"{key} must be a non-empty string."))
    if data.get("agent_type") not in AGENT_TYPES:
        add(Issue("ERROR", "agent_type", f"agent_type must be one of: {', '.join(AGENT_TYPES)}."))
    if not (_int(data.get("priority")) and 0 <= data["priority"] <= 100):
        add(Issue("ERROR", "priority", "priority must be an integer between 0 and 100."))
    for key in ("latency_budget_ms", "deadline_ms"):
        if not (_int(data.get(key)) and data[key] >= 1):
            add(Issue("ERROR", key, f"{key} must be an integer >= 1."))
    policy = data.get("fallback_policy")
    if not isinstance(policy, dict):
        add(Issue("ERROR", "fallback_policy", "fallback_policy must be an object."))
    elif policy.get("mode") not in FALLBACK_MODES:
        add(Issue("ERROR", "fallback_policy.mode", f"fallback_policy.mode must be one of: {', '.join(FALLBACK_MODES)}."))
    report.issues += _lab_compat_issues(data)
    if "tool_schema_path" in data and not (isinstance(data["tool_schema_path"], str) and data["tool_schema_path"].strip()):
        add(Issue("ERROR", "tool_schema_path", "tool_schema_path must be a non-empty string when present."))
    if "guard_policy" in data and not isinstance(data["guard_policy"], dict):
        add(Issue("ERROR", "guard_policy", "guard_policy must be an object when present."))
    return report
