"""Composing a fresh build's records: ``metadata.json`` and ``manifest.json`` from the plan and the toolchain's output.

Both keep the original's shapes (docs/contract.md#metadata and #manifest); the
manifest is validated against the v0.1 rules and the files before the metadata
says whether the build is ready for its handoff.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.backends.api import Availability, BuildOutput
from pytest_inferedgeforge.engine.build_key import Fingerprint
from pytest_inferedgeforge.engine.plan import BuildPlan
from pytest_inferedgeforge.model.environment import tool_facts
from pytest_inferedgeforge.model.hashing import file_digest
from pytest_inferedgeforge.model.inputs import rules_snapshot
from pytest_inferedgeforge.model.layout import LOG_FILE, MANIFEST_FILE, format_instant, format_timestamp
from pytest_inferedgeforge.model.preprocess import preprocess_snapshot
from pytest_inferedgeforge.model.presets import BUILTIN
from pytest_inferedgeforge.model.records.build import (
    RECORD_FORMAT,
    Artifact,
    BuildInfo,
    BuildMetadata,
    Handoff,
    InputRecord,
    LabCompat,
    LabRuntime,
    Manifest,
    ManifestArtifact,
    ManifestRuntime,
    QuantizationAudit,
    SmokeRecord,
    SourceModel,
    Tool,
    ToolCall,
    Toolchain,
    manifest_to_dict,
)
from pytest_inferedgeforge.model.records.paths import in_build, project_relative, source_reference
from pytest_inferedgeforge.verify.agreement import HANDOFF_CONSUMER
from pytest_inferedgeforge.verify.manifest import ValidationReport, validate_manifest_data


def relative_calls(calls: list[ToolCall], plan: BuildPlan, work_dir: Path) -> list[ToolCall]:
    """The toolchain calls as recorded: the source model's absolute path written as the record states the source,
    and the work directory's (which becomes the build directory) as relative paths."""
    replacements = [(f"{work_dir.resolve()}/", ""), (str(work_dir.resolve()), "."),
                    (str(plan.source), source_reference(plan.source, plan.output_root))]

    def rewrite(value: Any) -> Any:
        if isinstance(value, str):
            for old, new in replacements:
                value = value.replace(old, new)
            return value
        if isinstance(value, list):
            return [rewrite(item) for item in value]
        if isinstance(value, dict):
            return {key: rewrite(item) for key, item in value.items()}
        return value

    return [call.model_copy(update={"args": rewrite(call.args), "argv": rewrite(call.argv)}) for call in calls]


def _presets_origin(plan: BuildPlan, build_dir: Path) -> str | None:
    """Where the preset came from, as the records state it: ``built-in``, or its root relative to the project."""
    file = plan.preset.file
    if file is None:
        return None
    return BUILTIN if plan.preset.is_builtin else project_relative(file.parent.parent, build_dir)


def compose_records(
    plan: BuildPlan,
    fingerprint: Fingerprint,
    output: BuildOutput,
    started: dt.datetime,
    finished: dt.datetime,
    duration: float,
    work_dir: Path,
    smoke: SmokeRecord,
    toolchain_probe: Availability,
) -> tuple[BuildMetadata, Manifest, ValidationReport]:
    """The records of a fresh build in ``work_dir``, and the check of the manifest's rules and files it passed (the
    build hands it to the whole-record verification after publishing, which does not walk the manifest again)."""
    preset = plan.preset
    stamp = format_timestamp(started)
    build_info = BuildInfo(
        build_id=f"{plan.source.stem}-{preset.backend}-{preset.suffix}-{stamp.replace('-', '').replace(':', '')}",
        timestamp=stamp, preset_name=preset.name, backend=preset.backend, target=preset.target,
        build_key=fingerprint.build_key, started_at=format_instant(started),
        finished_at=format_instant(finished), duration_s=duration, record_format=RECORD_FORMAT,
        key_parts=fingerprint.part_digests, calibration_dataset_sha256=fingerprint.calibration_dataset_sha256,
    )
    inputs = [
        InputRecord(name=t.name, dtype=t.dtype, model_dims=list(t.dims), shape=plan.input_shapes[t.name])
        for t in plan.model.inputs
    ]
    build_dir = plan.build_dir
    source = SourceModel(
        path=source_reference(plan.source, plan.output_root), path_abs=str(plan.source),
        format=plan.source.suffix.lstrip(".") or "onnx", sha256=fingerprint.source_sha256,
        size_bytes=plan.source.stat().st_size, opset=plan.model.opset, ir_version=plan.model.ir_version,
        inputs=inputs, external_data=fingerprint.external or None,
    )
    artifacts = [
        Artifact(path=in_build(build_dir / path.name, build_dir), format=preset.artifact_format,
                 role="deployment_model", sha256=file_digest(path), file=path.name, size_bytes=path.stat().st_size)
        for path in output.artifacts
    ]
    primary = artifacts[0]
    batch, height, width = plan.shape_context
    toolchain = Toolchain(backend=preset.backend, versions=fingerprint.toolchain_versions,
                          components=toolchain_probe.components or None,
                          calls=relative_calls(output.calls, plan, work_dir),
                          log=LOG_FILE, details=output.details or None)
    tool = Tool(**tool_facts(_presets_origin(plan, build_dir)))
    evidence: dict[str, Any] = {
        "quantization": QuantizationAudit.model_validate(output.quantization) if output.quantization else None,
        "warnings": output.warnings or None, "input_values": rules_snapshot(plan.input_values), "smoke": smoke,
        "preprocess": preprocess_snapshot(plan.preprocess),
    }
    manifest = Manifest(
        build=build_info, source_model=source,
        artifact=ManifestArtifact(**primary.model_dump(), model_path=primary.path,
                                  model_name=plan.source.name, precision=preset.precision),
        runtime=ManifestRuntime(engine=preset.backend, device=preset.target, precision=preset.precision,
                                model_path=primary.path, artifact_path=primary.path,
                                batch=batch, height=height, width=width),
        preset_snapshot=preset.snapshot(), tool=tool, artifacts=artifacts, input_shapes=plan.input_shapes,
        toolchain=toolchain, calibration=output.calibration, **evidence,
    )
    report = validate_manifest_data(manifest_to_dict(manifest), work_dir, work_dir / MANIFEST_FILE,
                                    published_as=plan.build_dir, against_schema=False)
    reasons = [issue.line() for issue in report.errors]
    ready = not reasons
    metadata = BuildMetadata(
        build=build_info, source_model=source, artifacts=artifacts,
        handoff=Handoff(consumer=HANDOFF_CONSUMER, ready=ready, reasons=reasons or None),
        lab_compat=LabCompat(profile_ready=ready, runtime=LabRuntime(
            engine=preset.backend, device=preset.target, precision=preset.precision,
            engine_path=primary.path, runtime_artifact_path=primary.path,
            requested_batch=batch, requested_height=height, requested_width=width)),
        preset_snapshot=preset.snapshot(), input_shapes=plan.input_shapes, toolchain=toolchain,
        calibration=output.calibration, tool=tool, **evidence,
    )
    return metadata, manifest, report

