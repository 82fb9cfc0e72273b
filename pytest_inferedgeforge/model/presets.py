"""Presets: the named build intent of one backend, target and precision.

A preset lives at ``<root>/<backend>/<name>.yaml`` (``.yml`` and the original's
``.json`` work too) and its ``name`` must equal its id ``backend/name``.

Two layers are searched: the project's presets root (``--forge-presets``, the
ini, or ``./presets`` when it exists) and the built-in presets that ship inside
the package. A project preset with the same id overrides the built-in one;
every entry says where it came from (docs/presets.md#where-presets-come-from).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pytest_inferedgeforge.model.containment import check_component
from pytest_inferedgeforge.model.errors import ForgeError, PresetError, describe_validation_error, did_you_mean
from pytest_inferedgeforge.model.hashing import file_identity
from pytest_inferedgeforge.model.precision import PRECISIONS, Precision
from pytest_inferedgeforge.model.project import builtin_presets_root
from pytest_inferedgeforge.model.yamlio import load_document

PRESET_SUFFIXES = (".yaml", ".yml", ".json")
BUILTIN = "built-in"
PROJECT = "project"


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
    _base: Path | None = PrivateAttr(None)

    def dataset_dir(self) -> Path | None:
        """The dataset directory: as written when absolute, else relative to the preset file. The record keeps the
        text as written, so a moved project keeps its build key."""
        if not self.dataset:
            return None
        written = Path(self.dataset)
        return written if written.is_absolute() or self._base is None else (self._base / written).resolve()


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
    _file: Path | None = PrivateAttr(None)

    @property
    def file(self) -> Path | None:
        """The file this preset was read from (None for one built in code or from a record's snapshot)."""
        return self._file

    @property
    def is_builtin(self) -> bool:
        return self._file is not None and self._file.resolve().is_relative_to(builtin_presets_root().resolve())

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
    origin: str = PROJECT
    """``project`` (the presets root given or found) or ``built-in`` (shipped in the package)."""


def _split_id(preset_id: str) -> tuple[str, str]:
    if not isinstance(preset_id, str) or not preset_id.strip():
        raise PresetError("Preset ID must be a non-empty string in 'backend/name' format.")
    parts = preset_id.split("/")
    if len(parts) != 2 or not all(parts) or any(part in (".", "..") for part in parts):
        raise PresetError(f"Preset ID '{preset_id}' must use the format 'backend/name'.")
    return parts[0], parts[1]


def _roots(root: Path | None) -> list[tuple[Path, str]]:
    """The layers searched, project first. The project root may be the built-in folder itself (this repository)."""
    builtin = builtin_presets_root()
    layers = [] if root is None or not root.is_dir() else [(root, PROJECT)]
    if not any(path.resolve() == builtin.resolve() for path, _ in layers):
        layers.append((builtin, BUILTIN))
    return layers


def _files_in(root: Path, backend: str, name: str) -> list[Path]:
    return [path for path in (root / backend / f"{name}{suffix}" for suffix in PRESET_SUFFIXES) if path.is_file()]


def find_preset_file(preset_id: str, root: Path | None, backends: BackendCatalog) -> Path:
    """The file of ``preset_id``: the project's when it has one, else the built-in one."""
    backend, name = _split_id(preset_id)
    for layer, _ in _roots(root):
        found = _files_in(layer, backend, name)
        if len(found) > 1:
            raise PresetError(f"Preset ID '{preset_id}' is ambiguous: {', '.join(str(path) for path in found)}")
        if found:
            return found[0]
    # Only the project's own folder is named: the built-in folder is inside the installed package, no place to edit.
    searched = "the built-in presets" if root is None or not root.is_dir() else f"{root} or the built-in presets"
    known = [entry.preset_id for entry in list_presets(root, backends) if entry.error is None]
    # Within a known backend only the name is compared, so the shared backend prefix does not make every id look close.
    same_backend = [known_id.split("/", 1)[1] for known_id in known if known_id.startswith(f"{backend}/")]
    hint = (did_you_mean(name, same_backend).replace("'", f"'{backend}/", 1) if same_backend
            else did_you_mean(preset_id, known)) or f" ({len(known)} presets exist)"
    raise PresetError(f"Preset not found for ID '{preset_id}': not in {searched}{hint}; "
                      "`inferedgeforge presets` lists them")


def read_preset_file(path: Path, preset_id: str, backends: BackendCatalog) -> Preset:
    """Parse and validate one preset file; every problem is a one-line :class:`PresetError` naming the file."""
    data = load_document(path, "preset file", PresetError)
    if not isinstance(data, dict):
        raise PresetError(f"{path}: preset file must contain a mapping of keys")
    try:
        preset = Preset.model_validate(data, context={"backends": backends})
    except ValidationError as exc:
        raise PresetError(describe_validation_error(exc, str(path), Preset)) from exc
    if preset.name != preset_id:
        raise PresetError(f"{path}: Preset name mismatch for '{preset_id}': expected '{preset_id}', found '{preset.name}'.")
    if preset.backend != preset_id.split("/")[0]:
        raise PresetError(f"{path}: backend '{preset.backend}' does not match the directory '{preset_id.split('/')[0]}'")
    preset._file = path.resolve()
    if preset.calibration is not None:
        preset.calibration._base = path.parent.resolve()
    return preset


_PARSED: dict[tuple[object, ...], Preset] = {}
"""Presets already read in this process, by id, file, catalog and the file's identity (hashing.file_identity):
collecting thousands of specs parses each preset once, and a changed file is read again."""


def load_preset(preset_id: str, root: Path | None, backends: BackendCatalog) -> Preset:
    path = find_preset_file(preset_id, root, backends)
    # A registry's catalog is one object per process (hashable); a plain mapping is keyed by its contents.
    traits = backends if isinstance(backends, Hashable) else tuple(sorted(backends.items()))
    key = (preset_id, str(path), traits, file_identity(path))
    if key not in _PARSED:
        _PARSED[key] = read_preset_file(path, preset_id, backends)
    return _PARSED[key].model_copy(deep=True)  # each caller gets its own, as if it had read the file


def list_presets(root: Path | None, backends: BackendCatalog) -> list[PresetEntry]:
    """Every preset file exactly one directory below each layer, validated, sorted by id; a project preset
    hides the built-in one of the same id."""
    entries: dict[str, list[PresetEntry]] = {}
    for layer, origin in _roots(root):
        seen_here: set[str] = set()
        for path in sorted(layer.glob("*/*")):
            if path.suffix not in PRESET_SUFFIXES or not path.is_file():
                continue
            preset_id = f"{path.parent.name}/{path.stem}"
            if preset_id in entries and preset_id not in seen_here:
                continue  # overridden by the project layer
            seen_here.add(preset_id)
            try:
                entry = PresetEntry(preset_id, path, read_preset_file(path, preset_id, backends), None, origin)
            except PresetError as exc:
                entry = PresetEntry(preset_id, path, None, str(exc), origin)
            entries.setdefault(preset_id, []).append(entry)
    return sorted((entry for group in entries.values() for entry in group),
                  key=lambda entry: (entry.preset_id, entry.path.suffix))
