"""The JSON shapes Forge writes, as pydantic models: the single source of every schema.

``metadata.json`` keeps the original's schema "0.1.0" shape and
``manifest.json`` its "inferedgeforge-manifest-v1" shape (docs/contract.md#metadata, #manifest);
everything Forge adds is an extra, optional key, so older readers keep working
and older records still load. Records allow unknown keys on read, so a
downstream tool may annotate them without breaking us.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pytest_inferedgeforge.model.errors import RecordError, describe_validation_error
from pytest_inferedgeforge.model.jsonio import drop_nulls, read_json_object

METADATA_SCHEMA_VERSION = "0.1.0"
MANIFEST_SCHEMA_VERSION = "inferedgeforge-manifest-v1"
RECORD_FORMAT = 7
"""Forge's own record generation; part of the build key, so a format change invalidates caches.
Format 7: RFC 3339 UTC ``Z`` timestamps, ``toolchain.components``, spec-exact provenance (docs/provenance.md)."""


RecordT = TypeVar("RecordT", bound=BaseModel)


class Record(BaseModel):
    """Records allow unknown keys on read, so a downstream tool may annotate them without breaking us."""

    model_config = ConfigDict(extra="allow")


class BuildInfo(Record):
    build_id: str = Field(min_length=1)
    timestamp: str = Field(min_length=1, description="UTC, %Y-%m-%dT%H:%M:%SZ")
    preset_name: str = Field(min_length=1)
    backend: str = Field(min_length=1)
    target: str = Field(min_length=1)
    build_key: str | None = Field(None, description="Content address: sources, preset snapshot, toolchain, record format.")
    started_at: str | None = Field(None, description=(
        "RFC 3339 UTC, 2026-01-02T03:04:05.123456Z (record format 7 on; older records: +00:00)."))
    finished_at: str | None = Field(None, description="As started_at.")
    duration_s: float | None = None
    record_format: int | None = None
    key_parts: dict[str, str] | None = Field(None, description=(
        "sha256 of each part of the build key (source, preset, shapes, toolchain...), so a rebuild names what changed; "
        "build_key is the sha256 of this object (record format 4 on)."))
    calibration_dataset_sha256: str | None = Field(None, description=(
        "Digest of the calibration dataset's files (name and sha256 of each), when an int8 preset names one."))


class FileDigest(Record):
    path: str = Field(description="Path relative to the directory of the file it belongs to.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int


class InputRecord(Record):
    name: str
    dtype: str
    model_dims: list[int | str | None]
    shape: list[int] = Field(description="The concrete shape used for this build.")


class SourceModel(Record):
    path: str = Field(min_length=1, description=(
        "The source model: relative to the output root's parent when it lies under it (record format 5), else "
        "absolute. Older records: the absolute path at build time."))
    path_abs: str | None = Field(None, description="Informational: the absolute path at build time.")
    format: str = Field(min_length=1)
    sha256: str | None = None
    size_bytes: int | None = None
    opset: int | None = None
    ir_version: int | None = None
    inputs: list[InputRecord] | None = None
    external_data: list[FileDigest] | None = Field(None, description="ONNX external-data files and their hashes.")


class Artifact(Record):
    path: str = Field(min_length=1, description=(
        "The artifact, relative to the build directory (record format 5; older records: absolute)."))
    format: str = Field(min_length=1)
    role: str = Field(min_length=1)
    sha256: str | None = None
    file: str | None = Field(None, description="File name inside the build directory; what verification hashes.")
    size_bytes: int | None = None


class Handoff(Record):
    consumer: str = Field(min_length=1)
    ready: bool = Field(description="True only if the artifact exists, hashes verify and the manifest validates.")
    reasons: list[str] | None = Field(None, description="Why the build is not ready, when it is not.")


class LabRuntime(Record):
    engine: str = Field(min_length=1)
    device: str = Field(min_length=1)
    precision: str = Field(min_length=1)
    engine_path: str = Field(min_length=1)
    runtime_artifact_path: str = Field(min_length=1)
    requested_batch: int | None = None
    requested_height: int | None = None
    requested_width: int | None = None


class LabCompat(Record):
    profile_ready: bool
    runtime: LabRuntime


class ToolCall(Record):
    """One toolchain invocation: a command line (``argv``) or a Python API call (``api`` + ``args``)."""

    argv: list[str] | None = None
    api: str | None = None
    args: dict[str, Any] | None = None


ComponentKind = Literal["pypi", "python", "system", "host", "location"]


class ToolchainComponent(Record):
    """What one ``toolchain.versions`` entry is, so the provenance names it for what it is (docs/provenance.md)."""

    kind: ComponentKind = Field(description=(
        "pypi: a Python distribution installed from a package index; python: one installed otherwise (a direct "
        "URL, a local tree, a system package manager); system: a toolchain that is no Python distribution "
        "(trtexec's TensorRT); host: a fact about the machine (GPU, compute capability, driver, CUDA); "
        "location: where the toolchain lives (a binary, a venv)."))
    distribution: str | None = Field(None, description="pypi, python: the distribution's name, PEP 503 normalised.")
    version: str | None = Field(None, description="pypi, python: its version, as its installed metadata states it.")
    installer: str | None = Field(None, description="pypi, python: the tool that installed it (its INSTALLER file).")
    url: str | None = Field(None, description="python: the URL it was installed from (PEP 610 direct_url.json).")


class Toolchain(Record):
    backend: str
    versions: dict[str, str]
    components: dict[str, ToolchainComponent] | None = Field(None, description=(
        "versions entry -> what it is, read at build time (record format 7 on); an entry without one is no "
        "dependency in the provenance."))
    calls: list[ToolCall]
    log: str = Field(description="Build log file name inside the build directory.")
    details: dict[str, Any] | None = None


class Calibration(Record):
    source: Literal["dataset", "synthetic"] = Field(description="Where the samples came from.")
    samples: int = Field(description="How many samples were fed.")
    seed: int | None = None
    dataset: str | None = Field(None, description=(
        "The dataset directory: as the preset wrote it, or (named_by: inputs) relative to the output root's parent."))
    sha256: str = Field(description="Hash of the calibration samples exactly as fed to the toolchain.")
    named_by: Literal["preset", "inputs"] | None = Field(None, description=(
        "Who named the dataset: the preset's calibration.dataset, or the spec's inputs.calibration / "
        "--calibration-dataset."))
    dataset_sha256: str | None = Field(None, description=(
        "Digest of the dataset's files (name and sha256 of each), as in build.calibration_dataset_sha256."))
    warnings: list[str] | None = Field(None, description=(
        "Synthetic calibration, or calibration files that are also evaluation files (same sha256)."))


class QuantizationAudit(Record):
    """What an int8 build really quantized, read back from the artifact (subgraphs included)."""

    quantized_ops: int = Field(description="QuantizeLinear/DequantizeLinear, QLinear*, *Integer, DynamicQuantize* ops.")
    quantized_ops_in_subgraphs: int = 0
    by_op_type: dict[str, int]
    float_compute_nodes_total: int = Field(description="Conv/MatMul/Gemm/LSTM/... nodes left in float.")
    float_compute_nodes: list[str] = Field(description="Their names and op types (the first 50).")
    already_quantized: bool | None = Field(None, description=(
        "True when the source model already held quantized ops: it was built as it is (graph optimization only, "
        "no second quantization); see docs/presets.md#already-quantized-models."))
    source_quantized_ops: dict[str, int] | None = Field(None, description=(
        "With already_quantized: the quantized ops the source held, by op type."))


class SmokeRecord(Record):
    """The one inference every fresh artifact must survive before it is published."""

    runner: str | None = Field(None, description="Where it ran; null when this host cannot load the artifact.")
    detail: str
    input_source: Literal["synthetic", "dataset"]
    inputs_sha256: str = Field(description="Hash of the exact inputs fed (the same inputs parity uses first).")
    dataset: str | None = None


class Tool(Record):
    inferedgeforge_version: str
    python_version: str
    platform: str | None = None
    machine: str | None = None
    hostname: str | None = None
    forge_git_commit: str | None = Field(None, description="The commit of the Forge checkout that built this, only "
                                                             "when Forge ran from its own source tree.")
    forge_install: dict[str, Any] | None = Field(None, description=(
        "Forge's distribution and version, and the URL and VCS commit it was installed from (PEP 610)."))
    presets_root: str | None = Field(None, description=(
        "The project presets root (relative to the output root's parent when under it), or 'built-in'."))


class BuildMetadata(Record):
    """``metadata.json``: schema "0.1.0" plus Forge's additions."""

    schema_version: str = METADATA_SCHEMA_VERSION
    build: BuildInfo
    source_model: SourceModel
    artifacts: list[Artifact]
    handoff: Handoff
    lab_compat: LabCompat | None = None
    preset_snapshot: dict[str, Any] | None = None
    input_shapes: dict[str, list[int]] | None = None
    toolchain: Toolchain | None = None
    calibration: Calibration | None = None
    tool: Tool | None = None
    quantization: QuantizationAudit | None = None
    warnings: list[str] | None = Field(None, description="What the toolchain did that a reviewer must know "
                                                         "(clamped fp16 weights, ...).")
    input_values: dict[str, Any] | None = Field(None, description="Value rules of the synthetic inputs.")
    preprocess: dict[str, Any] | None = Field(None, description=(
        "Per input: how dataset images were prepared (resize, scale, mean, std, channel_order), the same for "
        "calibration and evaluation; part of the build key."))
    smoke: SmokeRecord | None = None


class ManifestArtifact(Artifact):
    model_path: str | None = None
    model_name: str | None = None
    precision: str | None = None


class ManifestRuntime(Record):
    engine: str
    device: str
    precision: str
    model_path: str
    artifact_path: str
    batch: int | None = None
    height: int | None = None
    width: int | None = None


class Manifest(Record):
    """``manifest.json``: "inferedgeforge-manifest-v1" plus Forge's additions."""

    schema_version: str = MANIFEST_SCHEMA_VERSION
    build: BuildInfo
    source_model: SourceModel
    artifact: ManifestArtifact
    runtime: ManifestRuntime
    preset_snapshot: dict[str, Any] | None = None
    tool: Tool | None = None
    artifacts: list[Artifact] | None = Field(None, description="Every artifact, not only the first.")
    input_shapes: dict[str, list[int]] | None = None
    toolchain: Toolchain | None = None
    calibration: Calibration | None = None
    quantization: QuantizationAudit | None = None
    warnings: list[str] | None = Field(None, description="What the toolchain did that a reviewer must know "
                                                         "(clamped fp16 weights, ...).")
    input_values: dict[str, Any] | None = Field(None, description="Value rules of the synthetic inputs.")
    preprocess: dict[str, Any] | None = Field(None, description=(
        "Per input: how dataset images were prepared (resize, scale, mean, std, channel_order), the same for "
        "calibration and evaluation; part of the build key."))
    smoke: SmokeRecord | None = None


def metadata_to_dict(metadata: BuildMetadata) -> dict[str, Any]:
    data = metadata.model_dump(mode="json", exclude_none=True)
    if metadata.lab_compat is not None:  # the original emits requested_* as explicit nulls
        data["lab_compat"]["runtime"] = metadata.lab_compat.runtime.model_dump(mode="json")
    return data


def manifest_to_dict(manifest: Manifest) -> dict[str, Any]:
    return drop_nulls(manifest.model_dump(mode="json"))


def validated(data: dict[str, Any], model: type[RecordT], source: Path) -> RecordT:
    """``data`` as a ``model``; a schema problem is one :class:`RecordError` line naming ``source`` and the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RecordError(describe_validation_error(exc, str(source))) from exc


def load_record(path: Path, model: type[RecordT], label: str) -> RecordT:
    """Read and validate one record file; every problem is one :class:`RecordError` line."""
    return validated(read_json_object(path, label), model, path)


def load_metadata(path: Path) -> BuildMetadata:
    return load_record(path, BuildMetadata, "Build metadata")


def load_manifest(path: Path) -> Manifest:
    return load_record(path, Manifest, "Build manifest")
