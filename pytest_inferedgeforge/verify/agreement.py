"""Whole-record rules across files: metadata and manifest say the same thing, the build key follows from the
recorded inputs, and every path a downstream tool loads names the verified artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_inferedgeforge.model.jsonio import section
from pytest_inferedgeforge.model.records.build import MANIFEST_SCHEMA_VERSION, METADATA_SCHEMA_VERSION
from pytest_inferedgeforge.model.records.key import PART_FIELDS, PART_NAMES, key_of, part_digests, recorded_parts
from pytest_inferedgeforge.verify.manifest import Issue, path_issues

SHARED_SECTIONS = ("build", "source_model", "preset_snapshot", "input_shapes", "toolchain", "calibration", "tool",
                   "quantization", "warnings", "input_values", "smoke", "preprocess")
"""Top-level sections both files carry; a Forge build writes them identically."""
ARTIFACT_KEYS = ("path", "format", "role", "sha256", "file", "size_bytes")
RUNTIME_PAIRS = (("engine", "engine"), ("device", "device"), ("precision", "precision"),
                 ("requested_batch", "batch"), ("requested_height", "height"), ("requested_width", "width"))
HANDOFF_CONSUMER = "InferEdgeLab"
SCHEMA_VERSIONS = {"metadata": METADATA_SCHEMA_VERSION, "manifest": MANIFEST_SCHEMA_VERSION}
MAX_DIFFERENCES = 5


def _differences(left: Any, right: Any, where: str, strict: bool) -> list[str]:
    """Dotted paths where ``left`` and ``right`` differ; ``strict`` also counts a key present on one side only."""
    if isinstance(left, dict) and isinstance(right, dict):
        keys = (left.keys() | right.keys()) if strict else (left.keys() & right.keys())
        found: list[str] = []
        for key in sorted(keys, key=str):
            found += _differences(left.get(key), right.get(key), f"{where}.{key}", strict)
        return found
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        found = []
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            found += _differences(a, b, f"{where}[{index}]", strict)
        return found
    return [] if left == right else [where]


def is_forge_record(manifest: dict[str, Any]) -> bool:
    build = manifest.get("build")
    return isinstance(build, dict) and isinstance(build.get("record_format"), int)


def agreement_issues(metadata: dict[str, Any], manifest: dict[str, Any]) -> list[Issue]:
    """metadata.json and manifest.json agree on every field they share (Forge records: on their presence too)."""
    strict = is_forge_record(manifest)
    paths: list[str] = []
    for name in SHARED_SECTIONS:
        present = [name in metadata, name in manifest]
        if any(present) if strict else all(present):
            paths += _differences(metadata.get(name), manifest.get(name), name, strict)
    artifacts = metadata.get("artifacts")
    first = artifacts[0] if isinstance(artifacts, list) and artifacts and isinstance(artifacts[0], dict) else {}
    artifact = section(manifest, "artifact")
    for key in ARTIFACT_KEYS:
        if (strict or (key in first and key in artifact)) and first.get(key) != artifact.get(key):
            paths.append(f"artifacts[0].{key}/artifact.{key}")
    if strict or "artifacts" in manifest:
        paths += _differences(artifacts, manifest.get("artifacts"), "artifacts", strict)
    lab, runtime = section(section(metadata, "lab_compat"), "runtime"), section(manifest, "runtime")
    if lab and runtime:
        paths += [f"lab_compat.runtime.{a}/runtime.{b}" for a, b in RUNTIME_PAIRS if lab.get(a) != runtime.get(b)
                  and (strict or None not in (lab.get(a), runtime.get(b)))]
    handoff = section(metadata, "handoff")
    if section(metadata, "lab_compat") and handoff and (
            section(metadata, "lab_compat").get("profile_ready") != handoff.get("ready")):
        paths.append("lab_compat.profile_ready/handoff.ready")
    issues = [Issue("ERROR", f"metadata.{path}", "metadata.json and manifest.json disagree on this field")
              for path in paths[:MAX_DIFFERENCES]]
    if strict:
        issues += forge_record_issues(metadata, manifest)
    if len(paths) > MAX_DIFFERENCES:
        issues.append(Issue("ERROR", "metadata", f"and {len(paths) - MAX_DIFFERENCES} more disagreeing field(s)"))
    return issues


def forge_record_issues(metadata: dict[str, Any], manifest: dict[str, Any]) -> list[Issue]:
    """Rules only Forge's own records must meet: their schema versions, and fields derived from others."""
    issues = [Issue("ERROR", f"{name}.schema_version", f"must be {expected!r} in a Forge record")
              for name, record in (("metadata", metadata), ("manifest", manifest))
              for expected in [SCHEMA_VERSIONS[name]] if record.get("schema_version") != expected]
    source_path = section(manifest, "source_model").get("path")
    if isinstance(source_path, str) and section(manifest, "artifact").get("model_name") != Path(source_path).name:
        issues.append(Issue("ERROR", "artifact.model_name", "is not the source model's file name"))
    handoff = section(metadata, "handoff")
    if handoff.get("consumer") != HANDOFF_CONSUMER:
        issues.append(Issue("ERROR", "metadata.handoff.consumer", f"must be {HANDOFF_CONSUMER!r} in a Forge record"))
    if handoff.get("ready") is False and not handoff.get("reasons"):
        issues.append(Issue("ERROR", "metadata.handoff.reasons", "a build that is not ready must say why"))
    return issues


def key_issues(manifest: dict[str, Any]) -> list[Issue]:
    """Recompute the build key from the inputs the record states; any edited input shows as a changed part."""
    build = section(manifest, "build")
    record_format = build.get("record_format")
    if not build.get("build_key"):
        return []
    if not isinstance(record_format, int) or record_format < 4:
        return [Issue("WARNING", "build.build_key", f"record format {record_format} predates recomputable build keys; "
                                                    "its inputs cannot be checked against the key (rebuild to fix)")]
    recorded = build.get("key_parts")
    if not isinstance(recorded, dict):
        return [Issue("ERROR", "build.key_parts", "must record the digest of every build key part")]
    current = part_digests(recorded_parts(manifest))
    issues = [Issue("ERROR", PART_FIELDS.get(name, name),
                    f"the recorded {PART_NAMES.get(name, name)} does not match build.key_parts.{name}: "
                    "edited after the build")
              for name in sorted(current.keys() | recorded.keys(), key=str) if current.get(name) != recorded.get(name)]
    if key_of(recorded) != build.get("build_key"):
        issues.append(Issue("ERROR", "build.build_key", "is not the key of build.key_parts: edited after the build"))
    return issues


def lab_path_issues(metadata: dict[str, Any], artifact: Path, build_dir: Path) -> list[Issue]:
    """The Lab profile input's paths (what ``run-benchmark --via lab`` hands Lab) must name ``artifact``."""
    lab = section(section(metadata, "lab_compat"), "runtime")
    return [issue for key in ("engine_path", "runtime_artifact_path") if lab
            for issue in path_issues(lab.get(key), artifact, build_dir, f"metadata.lab_compat.runtime.{key}")]
