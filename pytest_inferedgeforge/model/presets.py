"""Presets: the named build intent of one backend, target and precision.

A preset lives at ``<root>/<backend>/<name>.yaml`` (``.yml`` and the original's
``.json`` work too) and its ``name`` must equal its id ``backend/name``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pytest_inferedgeforge.model.containment import check_component
from pytest_inferedgeforge.model.errors import ForgeError, PresetError, describe_validation_error
from pytest_inferedgeforge.model.precision import PRECISIONS, Precision
from pytest_inferedgeforge.model.yamlio import load_document

PRESET_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class BackendTraits:
    """What a backend can produce, as presets are checked against it. Each backend declares its own
    (see ``backends/api.py``); the registry hands them to the preset loader."""

    artifact_format: str
    precisions: tuple[str, ...]


BackendCatalog = Mapping[str, BackendTraits]
"""Backend name -> traits, for every backend the registry knows."""


class CalibrationSpec(BaseModel):
    """Where int8 calibration inputs come from: a directory of ``.npy`` files, or seeded synthetic data."""

    model_config = ConfigDict(extra="forbid")

    dataset: str | None = Field(None, description="Directory of .npy (or .npz) samples, relative to the preset file.")
    samples: PositiveInt = Field(16, description="How many samples to use (synthetic: how many to generate).")
    seed: int = Field(0, description="Seed of the synthetic samples.")


class Preset(BaseModel):
    """The original's preset keys plus explicit precision, shapes and calibration."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    backend: str = Field(min_length=1)
    target: str = Field(min_length=1, description="Any device or family name: cpu, rk3588, jetson, jetson_orin...")
    source_format: Literal["onnx"] = "onnx"
    artifact_format: str = Field(min_length=1)
    precision: Precision | None = Field(None, description="fp32|fp16|int8; defaults to build_options.precision.")
    input_shapes: dict[str, list[PositiveInt]] | None = None
    calibration: CalibrationSpec | None = None
    build_options: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] | None = None

    @field_validator("backend", "target")
    @classmethod
    def _safe_name(cls, value: str, info: ValidationInfo) -> str:
        """Both end up in build directory names, so they must be single safe path components."""
        try:
            return check_component(value, str(info.field_name))
        except ForgeError as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("name")
    @classmethod
    def _safe_id(cls, value: str) -> str:
        parts = value.split("/")
        try:
            for part in parts:
                check_component(part, "preset name segment")
        except ForgeError as exc:
            raise ValueError(str(exc)) from exc
        return value

    @model_validator(mode="after")
    def _check_consistency(self, info: ValidationInfo) -> Preset:
        """Precision rules always; backend rules when the validation context carries the backend catalog
        (``{"backends": BackendCatalog}``), which every loader below passes on."""
        backends: BackendCatalog | None = (info.context or {}).get("backends")
        traits = backends.get(self.backend) if backends is not None else None
        if backends is not None and traits is None:
            raise ValueError(f"backend must be one of: {', '.join(sorted(backends))}; got '{self.backend}'")
        if traits is not None and self.artifact_format != traits.artifact_format:
            raise ValueError(
                f"artifact_format must match backend '{self.backend}': expected '{traits.artifact_format}', "
                f"got '{self.artifact_format}'"
            )
        option_precision = self.build_options.get("precision")
        if option_precision is not None and str(option_precision).lower() not in PRECISIONS:
            raise ValueError(f"build_options.precision must be one of {', '.join(PRECISIONS)}; got '{option_precision}'")
        if self.precision is None:
            if option_precision is None:
                raise ValueError(f"precision is required ({'|'.join(PRECISIONS)}), as 'precision' or build_options.precision")
            self.precision = str(option_precision).lower()  # type: ignore[assignment]
        elif option_precision is not None and str(option_precision).lower() != self.precision:
            raise ValueError(f"precision '{self.precision}' contradicts build_options.precision '{option_precision}'")
        if traits is not None and self.precision not in traits.precisions:
            raise ValueError(
                f"precision '{self.precision}' is not supported by backend '{self.backend}' "
                f"(supported: {', '.join(traits.precisions)})"
            )
        self.build_options["precision"] = self.precision
        return self

    @property
    def suffix(self) -> str:
        """The last segment of the name, as used in build directory names."""
        return self.name.rsplit("/", 1)[-1]

    def snapshot(self) -> dict[str, Any]:
        """The preset as recorded in a build: everything needed to rebuild without the file (unset keys left
        out, exactly as the records hold it, so the build key can be recomputed from a record)."""
        return self.model_dump(mode="json", exclude_none=True)


@dataclass(frozen=True)
class PresetEntry:
    """One preset file found under a root, loaded or not."""

    preset_id: str
    path: Path
    preset: Preset | None
    error: str | None


def _split_id(preset_id: str) -> tuple[str, str]:
    if not isinstance(preset_id, str) or not preset_id.strip():
        raise PresetError("Preset ID must be a non-empty string in 'backend/name' format.")
    parts = preset_id.split("/")
    if len(parts) != 2 or not all(parts) or any(part in (".", "..") for part in parts):
        raise PresetError(f"Preset ID '{preset_id}' must use the format 'backend/name'.")
    return parts[0], parts[1]


def find_preset_file(preset_id: str, root: Path, backends: BackendCatalog) -> Path:
    backend, name = _split_id(preset_id)
    candidates = [root / backend / f"{name}{suffix}" for suffix in PRESET_SUFFIXES]
    found = [path for path in candidates if path.is_file()]
    if not found:
        available = ", ".join(e.preset_id for e in list_presets(root, backends) if e.error is None) or "none"
        raise PresetError(f"Preset not found for ID '{preset_id}': {candidates[0]} (available: {available})")
    if len(found) > 1:
        raise PresetError(f"Preset ID '{preset_id}' is ambiguous: {', '.join(str(path) for path in found)}")
    return found[0]


def read_preset_file(path: Path, preset_id: str, backends: BackendCatalog) -> Preset:
    """Parse and validate one preset file; every problem is a one-line :class:`PresetError` naming the file."""
    data = load_document(path, "preset file", PresetError)
    if not isinstance(data, dict):
        raise PresetError(f"{path}: preset file must contain a mapping of keys")
    try:
        preset = Preset.model_validate(data, context={"backends": backends})
    except ValidationError as exc:
        raise PresetError(describe_validation_error(exc, str(path))) from exc
    if preset.name != preset_id:
        raise PresetError(f"{path}: Preset name mismatch for '{preset_id}': expected '{preset_id}', found '{preset.name}'.")
    if preset.backend != preset_id.split("/")[0]:
        raise PresetError(f"{path}: backend '{preset.backend}' does not match the directory '{preset_id.split('/')[0]}'")
    if preset.calibration is not None and preset.calibration.dataset:
        preset.calibration.dataset = str((path.parent / preset.calibration.dataset).resolve())
    return preset


def load_preset(preset_id: str, root: Path, backends: BackendCatalog) -> Preset:
    return read_preset_file(find_preset_file(preset_id, root, backends), preset_id, backends)


def list_presets(root: Path, backends: BackendCatalog) -> list[PresetEntry]:
    """Every preset file exactly one directory below ``root``, validated, sorted by id."""
    if not root.is_dir():
        return []
    entries: list[PresetEntry] = []
    for path in sorted(root.glob("*/*")):
        if path.suffix not in PRESET_SUFFIXES or not path.is_file():
            continue
        preset_id = f"{path.parent.name}/{path.stem}"
        try:
            entries.append(PresetEntry(preset_id, path, read_preset_file(path, preset_id, backends), None))
        except PresetError as exc:
            entries.append(PresetEntry(preset_id, path, None, str(exc)))
    return sorted(entries, key=lambda entry: (entry.preset_id, entry.path.suffix))
