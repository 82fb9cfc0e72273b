"""The build engine: model x preset -> a verified build directory, or a clean error.

The order is deliberate. Everything that can be refused (the model, the shapes,
the toolchain, a name collision) is checked before anything is written. The
toolchain then writes into a temporary directory beside the final one, the
records are composed and validated there, and one rename publishes the build.
A crash can leave a ``.tmp-`` directory (ignored by every reader) or a
``<name>.failed.json`` record, never a directory that looks like a build.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from pytest_inferedgeforge.backends.api import Backend, BuildOutput, BuildRequest
from pytest_inferedgeforge.backends.registry import check_preset, get_backend
from pytest_inferedgeforge.engine.smoke import smoke_build
from pytest_inferedgeforge.model.environment import tool_facts
from pytest_inferedgeforge.model.errors import ForgeError, RecordError, ToolchainUnavailable
from pytest_inferedgeforge.model.hashing import sha256_file, sha256_json
from pytest_inferedgeforge.model.inputs import (
    Sample,
    ValueRule,
    input_samples,
    rules_snapshot,
    samples_sha256,
)
from pytest_inferedgeforge.model.jsonio import drop_nulls, write_json_atomic
from pytest_inferedgeforge.model.onnx_model import ModelInfo, inspect_model, primary_shape_context, resolve_input_shapes
from pytest_inferedgeforge.model.presets import CalibrationSpec, Preset, build_dir_suffix
from pytest_inferedgeforge.model.records.build import (
    RECORD_FORMAT,
    Artifact,
    BuildInfo,
    BuildMetadata,
    Calibration,
    FileDigest,
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
    Toolchain,
    load_manifest,
    load_metadata,
    manifest_to_dict,
    metadata_to_dict,
)
from pytest_inferedgeforge.verify.manifest import validate_manifest_data, verify_build_dir

LOG_FILE = "build.log"
Progress = Callable[[str], None]


def build_dir_name(model_path: Path, preset: Preset) -> str:
    """``<stem>__<target>__<backend>__<preset suffix>`` (contract §3.3)."""
    return f"{model_path.stem}__{preset.target}__{preset.backend}__{build_dir_suffix(preset.name)}"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def format_timestamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class BuildPlan:
    """Everything decided before the toolchain runs; also what ``build --dry-run`` prints."""

    source: Path
    model: ModelInfo
    preset: Preset
    output_root: Path
    input_shapes: dict[str, list[int]]
    backend: Backend
    presets_root: Path | None = None
    input_values: dict[str, ValueRule] | None = None
    """Value rules of synthetic inputs (calibration, smoke run, parity); part of the build key."""
    input_seed: int = 1234
    """Seed of the smoke run's synthetic input: the first of the parity inputs."""
    input_dataset: Path | None = None
    """When given, the smoke run feeds this dataset's first sample instead."""

    @property
    def build_dir(self) -> Path:
        return self.output_root / build_dir_name(self.source, self.preset)

    @property
    def artifact_path(self) -> Path:
        return self.build_dir / self.backend.artifact_filename

    @property
    def shape_context(self) -> tuple[int, int, int]:
        return primary_shape_context(self.input_shapes)

    def calibration_spec(self) -> CalibrationSpec:
        return self.preset.calibration or CalibrationSpec()

    def calibration_samples(self) -> tuple[list[Sample], Calibration]:
        spec = self.calibration_spec()
        samples, source = input_samples(self.model, self.input_shapes, count=spec.samples, seed=spec.seed,
                                        dataset=Path(spec.dataset) if spec.dataset else None, values=self.input_values)
        record = Calibration(source=source, samples=len(samples), sha256=samples_sha256(samples),
                             **({"dataset": spec.dataset} if spec.dataset else {"seed": spec.seed}))
        return samples, record

    def smoke_sample(self) -> tuple[Sample, SmokeRecord]:
        """The smoke run's input: the first sample parity will use, and its record (runner filled in later)."""
        samples, source = input_samples(self.model, self.input_shapes, count=1, seed=self.input_seed,
                                        dataset=self.input_dataset, values=self.input_values)
        sample = samples[0]
        return sample, SmokeRecord(detail="not run", input_source=source, inputs_sha256=samples_sha256([sample]),
                                   dataset=str(self.input_dataset) if self.input_dataset else None)


def plan_build(
    model_path: Path,
    preset: Preset,
    output_root: Path,
    *,
    input_shapes: dict[str, list[int]] | None = None,
    presets_root: Path | None = None,
    input_values: dict[str, ValueRule] | None = None,
    input_seed: int = 1234,
    input_dataset: Path | None = None,
) -> BuildPlan:
    """Inspect the model and resolve shapes; raises before anything is written."""
    check_preset(preset)
    model = inspect_model(model_path)
    requested = dict(preset.input_shapes or {})
    requested.update(input_shapes or {})
    shapes = resolve_input_shapes(model, requested)
    return BuildPlan(
        source=model_path.resolve(), model=model, preset=preset, output_root=output_root,
        input_shapes=shapes, backend=get_backend(preset.backend), presets_root=presets_root,
        input_values=input_values or None, input_seed=input_seed, input_dataset=input_dataset,
    )


@dataclass
class BuildRecord:
    """A published build directory and its records."""

    build_dir: Path
    metadata: BuildMetadata
    manifest: Manifest

    @property
    def artifact_path(self) -> Path:
        name = self.manifest.artifact.file or Path(self.manifest.artifact.path).name
        return self.build_dir / name

    @property
    def metadata_path(self) -> Path:
        return self.build_dir / "metadata.json"

    @property
    def manifest_path(self) -> Path:
        return self.build_dir / "manifest.json"


def load_build_record(build_dir: Path) -> BuildRecord:
    """Load a published build; its paths are absolute so every record derived from it is CWD-independent."""
    build_dir = build_dir.resolve()
    return BuildRecord(build_dir, load_metadata(build_dir / "metadata.json"), load_manifest(build_dir / "manifest.json"))


@dataclass
class BuildOutcome:
    record: BuildRecord
    cached: bool
    reason: str
    """Why it was built (first build, inputs changed, artifact tampered...) or why the cache was used."""


@dataclass
class _Fingerprint:
    source_sha256: str
    external: list[FileDigest]
    toolchain_versions: dict[str, str]
    build_key: str
    parts: dict[str, Any] = field(default_factory=dict)


def _fingerprint(plan: BuildPlan, versions: dict[str, str]) -> _Fingerprint:
    source_sha = sha256_file(plan.source)
    root = plan.source.parent
    external = [
        FileDigest(path=str(path.relative_to(root.resolve())), sha256=sha256_file(path), size_bytes=path.stat().st_size)
        for path in plan.model.external_data
    ]
    spec = plan.calibration_spec()
    dataset_digest = None
    if spec.dataset and plan.preset.precision == "int8":
        dataset_dir = Path(spec.dataset)
        if not dataset_dir.is_dir():
            raise ForgeError(f"calibration dataset directory not found: {dataset_dir}")
        dataset_digest = sha256_json(sorted((p.name, sha256_file(p)) for p in dataset_dir.iterdir() if p.is_file()))
    parts = {
        "record_format": RECORD_FORMAT,
        "source_sha256": source_sha,
        "external_data": [digest.model_dump() for digest in external],
        "preset": plan.preset.snapshot(),
        "input_shapes": plan.input_shapes,
        "toolchain": {"backend": plan.preset.backend, "versions": versions},
        "calibration_dataset": dataset_digest,
    }
    if plan.input_values:
        parts["input_values"] = rules_snapshot(plan.input_values)
    return _Fingerprint(source_sha, external, versions, sha256_json(parts), parts)


def _reuse_or_reason(plan: BuildPlan, fingerprint: _Fingerprint) -> tuple[BuildRecord | None, str]:
    """A verified cached build for this key, or the reason a (re)build is needed."""
    build_dir = plan.build_dir
    if not build_dir.exists():
        return None, "first build"
    try:
        manifest = load_manifest(build_dir / "manifest.json")
    except RecordError as exc:
        return None, f"existing build directory has no usable manifest ({exc}); rebuilding"
    recorded_source = Path(manifest.source_model.path)
    if recorded_source.resolve() != plan.source:
        raise ForgeError(
            f"{build_dir} already holds a build of a different source model ({recorded_source}); two models with "
            f"the stem '{plan.source.stem}' cannot share the output root {plan.output_root}: use another --output"
        )
    if manifest.build.build_key != fingerprint.build_key:
        return None, _describe_change(manifest, plan, fingerprint.source_sha256)
    report = verify_build_dir(build_dir)
    if not report.valid:
        return None, f"cached build failed verification ({report.errors[0].line()}); rebuilding"
    return load_build_record(build_dir), "cache hit: same build key, hashes verified"


def _describe_change(manifest: Manifest, plan: BuildPlan, source_sha256: str) -> str:
    changes = []
    if manifest.source_model.sha256 != source_sha256:
        changes.append("source model changed")
    if manifest.preset_snapshot != drop_nulls(plan.preset.snapshot()):
        changes.append("preset changed")
    if manifest.input_shapes and manifest.input_shapes != plan.input_shapes:
        changes.append("input shapes changed")
    if manifest.input_values != rules_snapshot(plan.input_values):
        changes.append("input value rules changed")
    return "build inputs changed (" + (", ".join(changes) or "toolchain or record format changed") + "); rebuilding"


LOGGER = logging.getLogger("inferedgeforge.build")
"""Build progress also goes here (never to the root logger's handlers), so pytest's log capture shows it."""


class _BuildLog:
    def __init__(self, progress: Progress | None) -> None:
        self.lines: list[str] = []
        self._progress = progress

    def __call__(self, message: str) -> None:
        stamp = utc_now().strftime("%H:%M:%S.%f")[:-3]
        self.lines.append(f"{stamp} {message}")
        LOGGER.info(message)
        if self._progress:
            self._progress(message)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def build(plan: BuildPlan, *, progress: Progress | None = None, force: bool = False) -> BuildOutcome:
    """Build (or reuse) ``plan`` and return the published, verified record."""
    availability = plan.backend.available()
    if not availability.ok:
        raise ToolchainUnavailable(f"{plan.preset.name}: {availability.reason}")
    fingerprint = _fingerprint(plan, availability.versions)
    if plan.output_root.exists() and not plan.output_root.is_dir():
        raise ForgeError(f"output root {plan.output_root} exists and is not a directory")
    plan.output_root.mkdir(parents=True, exist_ok=True)
    lock_dir = plan.output_root / ".locks"
    lock_dir.mkdir(exist_ok=True)
    with FileLock(str(lock_dir / f"{plan.build_dir.name}.lock")):
        _remove_leftovers(plan)
        cached, reason = _reuse_or_reason(plan, fingerprint)
        if cached is not None and not force:
            return BuildOutcome(cached, cached=True, reason=reason)
        if force:
            reason = "forced rebuild"
        return _build_fresh(plan, fingerprint, reason, progress)


def _remove_leftovers(plan: BuildPlan) -> None:
    """Work dirs of this build name left by a killed process; only the lock holder creates them, so any
    that exist while we hold the lock are dead."""
    for pattern in (f".tmp-{plan.build_dir.name}-*", f".old-{plan.build_dir.name}-*"):
        for leftover in plan.output_root.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


def _build_fresh(plan: BuildPlan, fingerprint: _Fingerprint, reason: str, progress: Progress | None) -> BuildOutcome:
    log = _BuildLog(progress)
    failure_record = plan.output_root / f"{plan.build_dir.name}.failed.json"
    work_dir = plan.output_root.resolve() / f".tmp-{plan.build_dir.name}-{uuid.uuid4().hex[:8]}"
    work_dir.mkdir()
    started = utc_now()
    clock = time.perf_counter()
    try:
        log(f"build {plan.preset.name} of {plan.source} ({reason})")
        log(f"input shapes: {plan.input_shapes}; build key {fingerprint.build_key}")
        request = BuildRequest(
            source=plan.source, model=plan.model, preset=plan.preset, input_shapes=plan.input_shapes,
            work_dir=work_dir, calibration_samples=plan.calibration_samples, log=log,
        )
        output = plan.backend.build(request)
        for artifact in output.artifacts:
            if not artifact.is_file() or artifact.parent != work_dir:
                raise ForgeError(f"{plan.backend.name} reported artifact {artifact.name} but did not write it")
        smoke = smoke_build(plan, output.artifacts[0], log)
        finished = utc_now()
        log(f"build finished in {time.perf_counter() - clock:.3f}s")
        (work_dir / LOG_FILE).write_text(log.text(), encoding="utf-8")
        metadata, manifest = _compose_records(plan, fingerprint, output, started, finished,
                                              round(time.perf_counter() - clock, 3), work_dir, smoke)
        write_json_atomic(work_dir / "metadata.json", metadata_to_dict(metadata))
        write_json_atomic(work_dir / "manifest.json", manifest_to_dict(manifest))
        _publish(work_dir, plan.build_dir)
    except BaseException as exc:
        shutil.rmtree(work_dir, ignore_errors=True)
        if isinstance(exc, Exception):
            log(f"FAILED: {exc}")
            write_json_atomic(failure_record, {
                "status": "failed", "preset": plan.preset.name, "source_model": str(plan.source),
                "build_dir": str(plan.build_dir), "timestamp": format_timestamp(utc_now()),
                "error": str(exc), "log": log.lines,
            })
        raise
    failure_record.unlink(missing_ok=True)
    return BuildOutcome(load_build_record(plan.build_dir), cached=False, reason=reason)


def _publish(work_dir: Path, build_dir: Path) -> None:
    """Swap the finished work directory into place; the old build, if any, is removed after."""
    retired = None
    if build_dir.exists():
        retired = build_dir.with_name(f".old-{build_dir.name}-{uuid.uuid4().hex[:8]}")
        os.replace(build_dir, retired)
    os.replace(work_dir, build_dir)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def _compose_records(
    plan: BuildPlan,
    fingerprint: _Fingerprint,
    output: BuildOutput,
    started: dt.datetime,
    finished: dt.datetime,
    duration: float,
    work_dir: Path,
    smoke: SmokeRecord,
) -> tuple[BuildMetadata, Manifest]:
    preset = plan.preset
    stamp = format_timestamp(started)
    build_info = BuildInfo(
        build_id=f"{plan.source.stem}-{preset.backend}-{preset.suffix}-{stamp.replace('-', '').replace(':', '')}",
        timestamp=stamp, preset_name=preset.name, backend=preset.backend, target=preset.target,
        build_key=fingerprint.build_key, started_at=started.isoformat(timespec="microseconds"),
        finished_at=finished.isoformat(timespec="microseconds"), duration_s=duration, record_format=RECORD_FORMAT,
    )
    inputs = [
        InputRecord(name=t.name, dtype=t.dtype, model_dims=list(t.dims), shape=plan.input_shapes[t.name])
        for t in plan.model.inputs
    ]
    source = SourceModel(
        path=str(plan.source), format=plan.source.suffix.lstrip(".") or "onnx", sha256=fingerprint.source_sha256,
        size_bytes=plan.source.stat().st_size, opset=plan.model.opset, ir_version=plan.model.ir_version,
        inputs=inputs, external_data=fingerprint.external or None,
    )
    artifacts = [
        Artifact(path=str(plan.build_dir.resolve() / path.name), format=preset.artifact_format,
                 role="deployment_model", sha256=sha256_file(path), file=path.name, size_bytes=path.stat().st_size)
        for path in output.artifacts
    ]
    primary = artifacts[0]
    batch, height, width = plan.shape_context
    toolchain = Toolchain(backend=preset.backend, versions=fingerprint.toolchain_versions, calls=output.calls,
                          log=LOG_FILE, details=output.details or None)
    tool = Tool(**tool_facts(plan.presets_root))
    evidence: dict[str, Any] = {
        "quantization": QuantizationAudit.model_validate(output.quantization) if output.quantization else None,
        "warnings": output.warnings or None, "input_values": rules_snapshot(plan.input_values), "smoke": smoke,
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
    report = validate_manifest_data(manifest_to_dict(manifest), work_dir, work_dir / "manifest.json")
    reasons = [issue.line() for issue in report.errors]
    ready = not reasons
    metadata = BuildMetadata(
        build=build_info, source_model=source, artifacts=artifacts,
        handoff=Handoff(consumer="InferEdgeLab", ready=ready, reasons=reasons or None),
        lab_compat=LabCompat(profile_ready=ready, runtime=LabRuntime(
            engine=preset.backend, device=preset.target, precision=preset.precision,
            engine_path=primary.path, runtime_artifact_path=primary.path,
            requested_batch=batch, requested_height=height, requested_width=width)),
        preset_snapshot=preset.snapshot(), input_shapes=plan.input_shapes, toolchain=toolchain,
        calibration=output.calibration, tool=tool, **evidence,
    )
    return metadata, manifest

