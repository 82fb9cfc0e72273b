"""rebuild-from-manifest: rebuild a recorded build and say how reproducible it is.

The rebuild uses the recorded preset snapshot (not whatever the preset file
says today), refuses a changed source model unless told otherwise, never
touches the original build, and ends in a verdict:

* **bitwise**: the rebuilt artifact has the same sha256;
* **functional**: the bytes differ but both artifacts give outputs within the
  preset precision's parity thresholds on the same inputs (figures kept);
* **not_reproducible**: with the reasons;
* **not_verifiable_here**: the bytes differ and this host cannot run both
  artifacts themselves (the RKNN simulator runs only its own re-conversions, so
  comparing two of them would compare a recipe with itself and could not fail).
"""

from __future__ import annotations

import difflib
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from pytest_inferedgeforge.backends.api import Runner
from pytest_inferedgeforge.backends.registry import backend_catalog
from pytest_inferedgeforge.engine.build import VerifiedBuild, build
from pytest_inferedgeforge.engine.parity import check_parity, run_all
from pytest_inferedgeforge.engine.plan import BuildPlan, plan_build
from pytest_inferedgeforge.engine.presets import load_preset
from pytest_inferedgeforge.engine.record import BuildRecord, load_build_record
from pytest_inferedgeforge.model.errors import ForgeError, PresetError, RecordError, ToolchainUnavailable
from pytest_inferedgeforge.model.hashing import file_digest
from pytest_inferedgeforge.model.inputs import input_samples, rules_from_record, samples_sha256
from pytest_inferedgeforge.model.jsonio import drop_nulls, read_json_object, write_json_atomic
from pytest_inferedgeforge.model.layout import METADATA_FILE, REPRODUCIBILITY_FILE, format_timestamp, utc_now
from pytest_inferedgeforge.model.preprocess import preprocess_from_record
from pytest_inferedgeforge.model.presets import Preset
from pytest_inferedgeforge.model.records.evidence import ParityResult
from pytest_inferedgeforge.model.records.paths import locate_source, resolve_in, source_base
from pytest_inferedgeforge.model.records.reproduce import PresetCheck, ReproducibilityReport, SourceCheck
from pytest_inferedgeforge.model.spec import DEFAULT_SEED, effective_thresholds


@dataclass
class RebuildResult:
    outcome: VerifiedBuild
    report: ReproducibilityReport
    report_path: Path


def _require(manifest: dict[str, Any], path: Path) -> tuple[str, str]:
    for section in ("build", "source_model"):
        if not isinstance(manifest.get(section), dict):
            raise RecordError(f"{path}: manifest is missing {section} required for rebuild")
    preset_name = manifest["build"].get("preset_name")
    if not isinstance(preset_name, str) or not preset_name.strip():
        raise RecordError(f"{path}: manifest is missing preset_name required for rebuild")
    source = manifest["source_model"].get("path")
    if not isinstance(source, str) or not source.strip():
        raise RecordError(f"{path}: manifest is missing source model path required for rebuild")
    return preset_name, source


def _snapshot_preset(snapshot: dict[str, Any] | None) -> Preset | None:
    """The recorded preset, completing an original (v0.1) snapshot from the backend's fixed traits."""
    if not isinstance(snapshot, dict):
        return None
    data = dict(snapshot)
    catalog = backend_catalog()
    traits = catalog.get(str(data.get("backend")))
    if traits is not None:
        data.setdefault("artifact_format", traits.artifact_format)
    data.setdefault("source_format", "onnx")
    try:
        return Preset.model_validate(data, context={"backends": catalog})
    except ValidationError:
        return None


def _diff(snapshot: Preset | None, current: Preset | None) -> list[str]:
    if snapshot is None or current is None:
        return []
    old = yaml.safe_dump(drop_nulls(snapshot.snapshot()), sort_keys=True).splitlines()
    new = yaml.safe_dump(drop_nulls(current.snapshot()), sort_keys=True).splitlines()
    return list(difflib.unified_diff(old, new, "recorded preset_snapshot", "current preset file", lineterm=""))


def _named_calibration(manifest: dict[str, Any], build_dir: Path) -> Path | None:
    """The calibration dataset a spec or --calibration-dataset named (the preset names its own), as recorded."""
    calibration = manifest.get("calibration")
    if not isinstance(calibration, dict) or calibration.get("named_by") != "inputs":
        return None
    recorded = calibration.get("dataset")
    return resolve_in(recorded, source_base(build_dir)) if isinstance(recorded, str) else None


def rebuild_from_manifest(
    manifest_path: Path,
    *,
    output: Path | None = None,
    presets_root: Path | None = None,
    use_current_preset: bool = False,
    allow_source_change: bool = False,
) -> RebuildResult:
    manifest = read_json_object(manifest_path, "Build manifest")
    preset_name, source_text = _require(manifest, manifest_path)
    build_dir = manifest_path.resolve().parent
    source = locate_source(manifest["source_model"], build_dir) or resolve_in(source_text, source_base(build_dir))
    if not source.is_file():
        raise ForgeError(f"Source model file from manifest does not exist: {source}. Ensure the source model path "
                         "from manifest exists in this environment.")
    recorded_sha = manifest["source_model"].get("sha256")
    current_sha = file_digest(source)
    if recorded_sha and recorded_sha != current_sha and not allow_source_change:
        raise ForgeError(f"source model {source} changed since the build (recorded {recorded_sha}, now {current_sha}); "
                         "refusing to rebuild (pass --allow-source-change to rebuild anyway)")
    preset, preset_check = _choose_preset(manifest, manifest_path, preset_name, presets_root, use_current_preset)
    original_dir = manifest_path.parent.resolve()
    if output is None and not (original_dir / METADATA_FILE).is_file():
        raise ForgeError(f"{manifest_path} is not inside a build directory (no metadata.json beside it); "
                         "pass --output to choose where the rebuild goes")
    root = output if output is not None else original_dir.parent.parent / "rebuilds"
    smoke = manifest.get("smoke")
    recorded_dataset = smoke.get("dataset") if isinstance(smoke, dict) else None
    dataset = resolve_in(recorded_dataset, source_base(build_dir)) if isinstance(recorded_dataset, str) else None
    dataset = dataset if dataset is not None and dataset.is_dir() else None
    plan = plan_build(source, preset, root, input_shapes=manifest.get("input_shapes"),
                      input_values=rules_from_record(manifest.get("input_values")), input_dataset=dataset,
                      calibration_dataset=_named_calibration(manifest, build_dir),
                      preprocess=preprocess_from_record(manifest.get("preprocess")))
    if plan.build_dir.resolve() == original_dir:
        raise ForgeError(f"the rebuild would overwrite the original build {original_dir}; choose another --output")
    outcome = build(plan, force=True)
    record = outcome.record

    old_versions = (manifest.get("toolchain") or {}).get("versions") or {}
    new_versions = record.manifest.toolchain.versions if record.manifest.toolchain else {}
    changes = {name: [old_versions.get(name), new_versions.get(name)]
               for name in sorted(set(old_versions) | set(new_versions))
               if old_versions and old_versions.get(name) != new_versions.get(name)}
    old_artifact_sha = (manifest.get("artifact") or {}).get("sha256")
    new_artifact_sha = record.manifest.artifact.sha256
    verdict, functional, reasons = _verdict(old_artifact_sha, original_dir, record, plan)
    if not old_versions:
        reasons.append("the original record has no toolchain versions to compare")
    if changes:
        reasons.append("toolchain versions changed: " + ", ".join(f"{k} {v[0]} -> {v[1]}" for k, v in changes.items()))
    if recorded_sha and recorded_sha != current_sha:
        reasons.append("source model changed (rebuilt with --allow-source-change)")
    report = ReproducibilityReport(
        created_at=format_timestamp(utc_now()), original_manifest=str(manifest_path.resolve()),
        original_build_id=str(manifest["build"].get("build_id")), original_artifact_sha256=old_artifact_sha,
        rebuild_dir=str(record.build_dir.resolve()), rebuild_build_id=record.manifest.build.build_id,
        rebuild_artifact_sha256=new_artifact_sha,
        source=SourceCheck(path=str(source), recorded_sha256=recorded_sha, current_sha256=current_sha,
                           changed=bool(recorded_sha) and recorded_sha != current_sha),
        preset=preset_check,
        toolchain_versions={"original": old_versions, "rebuild": new_versions}, toolchain_changes=changes,
        verdict=verdict, functional=functional, reasons=reasons,
    )
    report_path = record.build_dir / REPRODUCIBILITY_FILE
    write_json_atomic(report_path, report.model_dump(mode="json"))
    return RebuildResult(outcome, report, report_path)


def _choose_preset(manifest: dict[str, Any], manifest_path: Path, preset_name: str, presets_root: Path | None,
                   use_current: bool) -> tuple[Preset, PresetCheck]:
    """The recorded snapshot (or the current file when asked, or when there is no snapshot), and the drift."""
    snapshot = _snapshot_preset(manifest.get("preset_snapshot"))
    try:
        current = load_preset(preset_name, presets_root)
    except PresetError:
        current = None
    diff = _diff(snapshot, current)
    if use_current or snapshot is None:
        if current is None:
            raise ForgeError(f"{manifest_path}: no usable preset_snapshot and preset '{preset_name}' is not under "
                             f"{presets_root}")
        return current, PresetCheck(used="current", drifted=bool(diff), diff=diff)
    return snapshot, PresetCheck(used="snapshot", drifted=bool(diff), diff=diff)


Verdict = Literal["bitwise", "functional", "not_reproducible", "not_verifiable_here"]


def _verdict(old_artifact_sha: str | None, original_dir: Path, record: BuildRecord,
             plan: BuildPlan) -> tuple[Verdict, ParityResult | None, list[str]]:
    """Bitwise when the bytes match; else functional or not reproducible by running both artifacts, or
    not verifiable here when this host can only run a re-conversion."""
    new_artifact_sha = record.manifest.artifact.sha256
    if old_artifact_sha and old_artifact_sha == new_artifact_sha:
        return "bitwise", None, []
    reasons = [f"artifact bytes differ (recorded {old_artifact_sha}, rebuilt {new_artifact_sha})"
               if old_artifact_sha else "the manifest records no artifact sha256 to compare bytes with"]
    functional, why = _functional_check(original_dir, record, plan)
    if why:
        reasons.append(why)
    verdict: Verdict
    if functional is not None and functional.evidence != "artifact":
        verdict = "not_verifiable_here"
        reasons.append(f"not verifiable on this host: the runtime here ran {functional.evidence}s, not the two "
                       "artifacts; run the functional check on a device")
    else:
        verdict = "functional" if functional is not None and functional.passed else "not_reproducible"
    if functional is not None and not functional.passed:
        reasons.extend(functional.failures)
    return verdict, functional, reasons


def _functional_check(original_dir: Path, record: BuildRecord, plan: BuildPlan) -> tuple[ParityResult | None, str | None]:
    """Run the original and the rebuilt artifact on the same inputs and compare outputs."""
    try:
        original = load_build_record(original_dir)
    except RecordError as exc:
        return None, f"functional check impossible: {exc}"
    if not original.artifact_path.is_file():
        return None, f"functional check impossible: original artifact missing at {original.artifact_path}"
    with ExitStack() as runners:
        try:
            old_runner = plan.backend.load(original.artifact_path)
        except ToolchainUnavailable as exc:
            return None, f"functional check impossible here: {exc}"
        runners.callback(old_runner.close)
        new_runner = plan.backend.load(record.artifact_path)
        runners.callback(new_runner.close)
        return _compare_runs(old_runner, new_runner, plan), None


def _compare_runs(old_runner: Runner, new_runner: Runner, plan: BuildPlan) -> ParityResult:
    # the inputs the original build's smoke run saw: its dataset, else its value rules
    samples, source = input_samples(plan.model, plan.input_shapes, count=4, seed=DEFAULT_SEED, dataset=plan.input_dataset,
                                    values=plan.input_values, preprocess=plan.preprocess)
    names = [output.name for output in plan.model.outputs]
    # Not the artifacts' own figures when either runner could only run a re-conversion.
    evidence = next((runner.evidence for runner in (old_runner, new_runner) if runner.evidence != "artifact"),
                    "artifact")
    thresholds, warnings = effective_thresholds(plan.preset.precision or "fp32", None, source)
    return check_parity(
        run_all(old_runner, samples), run_all(new_runner, samples), names, thresholds=thresholds, input_source=source,
        inputs_sha256=samples_sha256(samples), candidate=f"rebuilt artifact vs original, {new_runner.description}",
        evidence=evidence, warnings=warnings,
    )
