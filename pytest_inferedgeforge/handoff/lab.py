"""Views of a build for downstream tools: the Lab profile input and command, the worker/runtime
summary, and the compare command. Forge prepares these; the decision stays downstream."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.records.build import BuildMetadata

LAB_MODULE = "inferedgelab.cli"


def lab_profile_input(metadata: BuildMetadata, artifact: Path | None = None) -> dict[str, Any]:
    """``lab_compat.runtime``; with ``artifact`` (the verified artifact of a build directory), its paths are that."""
    if metadata.lab_compat is None:
        raise ForgeError("Build metadata does not include lab_compat.")
    view = metadata.lab_compat.runtime.model_dump(
        include={"engine", "device", "precision", "engine_path", "runtime_artifact_path",
                 "requested_batch", "requested_height", "requested_width"})
    if artifact is not None:
        view["engine_path"] = view["runtime_artifact_path"] = str(artifact)
    return view


def lab_profile_argv(metadata: BuildMetadata, python: str = "python", artifact: Path | None = None) -> list[str]:
    """The original's ``inferedgelab profile`` command (docs/contract.md#lab-profile), as argv."""
    runtime = lab_profile_input(metadata, artifact)
    argv = [python, "-m", LAB_MODULE, "profile", metadata.source_model.path,
            "--engine", runtime["engine"], "--engine-path", runtime["engine_path"],
            "--device-name", runtime["device"], "--precision", runtime["precision"]]
    for flag, key in (("--batch", "requested_batch"), ("--height", "requested_height"), ("--width", "requested_width")):
        if runtime[key] is not None:
            argv += [flag, str(runtime[key])]
    return argv


def shell_join(argv: list[str]) -> str:
    return " ".join(shlex.quote(part) for part in argv)


def lab_compare_command(left: str, right: str) -> str:
    return shell_join(["python", "-m", LAB_MODULE, "compare", left, right])


def first_text(*values: Any) -> str | None:
    """The first non-blank string among ``values``: the original's precedence rule for handoff fields."""
    return next((value for value in values if isinstance(value, str) and value.strip()), None)


def _first_positive(*values: Any) -> int | None:
    return next((v for v in values if isinstance(v, int) and not isinstance(v, bool) and v > 0), None)


def worker_runtime_summary(metadata: dict[str, Any], manifest: dict[str, Any] | None = None, *,
                           metadata_path: str | Path | None = None,
                           manifest_path: str | Path | None = None) -> dict[str, Any]:
    """The 15-field worker/runtime summary with the original's precedence (docs/contract.md#worker-summary)."""
    for section in ("build", "source_model"):
        if not isinstance(metadata.get(section), dict):
            raise ForgeError(f"metadata.{section} must be an object")
    artifacts = metadata.get("artifacts")
    if not isinstance(artifacts, list) or not artifacts:
        raise ForgeError("metadata.artifacts must contain at least one artifact")
    if not isinstance(artifacts[0], dict):
        raise ForgeError("metadata.artifacts[0] must be an object")
    first = artifacts[0]
    manifest = manifest or {}
    m_build, m_source = manifest.get("build") or {}, manifest.get("source_model") or {}
    m_artifact, m_runtime = manifest.get("artifact") or {}, manifest.get("runtime") or {}
    lab = (metadata.get("lab_compat") or {}).get("runtime") or {}
    snapshot = metadata.get("preset_snapshot") or {}
    options, hints = snapshot.get("build_options") or {}, snapshot.get("metadata") or {}
    build, source = metadata["build"], metadata["source_model"]
    summary: dict[str, Any] = {
        "source_model_path": first_text(m_source.get("path"), source.get("path")),
        "source_model_sha256": first_text(m_source.get("sha256"), source.get("sha256")),
        "backend": first_text(m_runtime.get("engine"), m_build.get("backend"), lab.get("engine"), build.get("backend")),
        "target": first_text(m_runtime.get("device"), m_build.get("target"), lab.get("device"), build.get("target")),
        "precision": first_text(m_runtime.get("precision"), m_artifact.get("precision"), lab.get("precision"),
                                options.get("precision")),
    }
    for key in ("batch", "height", "width"):
        summary[key] = _first_positive(m_runtime.get(key), lab.get(f"requested_{key}"), hints.get(f"requested_{key}"))
    summary.update({
        "artifact_path": first_text(m_runtime.get("artifact_path"), m_artifact.get("model_path"), m_artifact.get("path"),
                                    lab.get("runtime_artifact_path"), first.get("path")),
        "artifact_sha256": first_text(m_artifact.get("sha256"), first.get("sha256")),
        "artifact_type": first_text(m_artifact.get("format"), first.get("format")),
        "metadata_path": str(metadata_path) if metadata_path is not None else None,
        "manifest_path": str(manifest_path) if manifest_path is not None else None,
        "preset_name": first_text(m_build.get("preset_name"), build.get("preset_name"), snapshot.get("name")),
        "build_id": first_text(m_build.get("build_id"), build.get("build_id")),
    })
    for key, value in summary.items():
        if key in ("batch", "height", "width"):
            if value is None:
                raise ForgeError(f"worker/runtime summary field {key} must be a positive integer")
        elif key not in ("metadata_path", "manifest_path") and value is None:
            raise ForgeError(f"worker/runtime summary missing {key}")
    return summary
