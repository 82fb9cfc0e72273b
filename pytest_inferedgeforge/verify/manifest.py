"""Checking a build record against the original's rules, its JSON Schema and the files on disk.

The original's rules (docs/contract.md#manifest-rules) are kept word for word so downstream
scripts that grep ``ERROR``/``WARNING`` lines keep working. Forge adds what
they lacked: a schema check, re-hashing every file the record names, and a
refusal of any path that points outside the build directory.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeGuard

from pytest_inferedgeforge.model.hashing import file_digest
from pytest_inferedgeforge.model.jsonio import read_json_object, section
from pytest_inferedgeforge.model.records.build import Manifest
from pytest_inferedgeforge.model.records.paths import locate_source, source_candidates

Level = Literal["ERROR", "WARNING"]
SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Issue:
    level: Level
    path: str
    message: str

    def line(self) -> str:
        return f"{self.level} {self.path}: {self.message}"


@dataclass
class ValidationReport:
    target: Path
    issues: list[Issue] = field(default_factory=list)

    @property
    def errors(self) -> list[Issue]:
        return [issue for issue in self.issues if issue.level == "ERROR"]

    @property
    def warnings(self) -> list[Issue]:
        return [issue for issue in self.issues if issue.level == "WARNING"]

    @property
    def valid(self) -> bool:
        return not self.errors

    def first_error(self) -> str:
        """``N error(s), first: <line>``: how a refusal names what failed, on one line."""
        return f"{len(self.errors)} error(s), first: {self.errors[0].line()}" if self.errors else "0 errors"

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": str(self.target),
            "valid": self.valid,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "issues": [{"level": i.level, "path": i.path, "message": i.message} for i in self.issues],
        }


def _non_empty(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and value.strip() != ""


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and value > 0  # the original lets True pass, and so do we


_REQUIRED = {
    "build": ("build_id", "timestamp", "preset_name", "backend", "target"),
    "source_model": ("path", "format"),
    "artifact": ("path", "format", "role"),
    "runtime": ("engine", "device", "precision", "model_path", "artifact_path"),
}
_CROSS = (("build.backend", "runtime.engine"), ("build.target", "runtime.device"),
          ("artifact.path", "runtime.artifact_path"))
_FORGE_CROSS = (("artifact.model_path", "runtime.model_path"), ("artifact.precision", "runtime.precision"),
                ("preset_snapshot.precision", "runtime.precision"))


def _get(manifest: dict[str, Any], dotted: str) -> Any:
    section, key = dotted.split(".")
    part = manifest.get(section)
    return part.get(key) if isinstance(part, dict) else None


def original_rules(manifest: dict[str, Any]) -> list[Issue]:
    """The original validate-manifest rule set, in its discovery order (docs/contract.md#manifest-rules)."""
    issues: list[Issue] = []
    if not _non_empty(manifest.get("schema_version")):
        issues.append(Issue("WARNING", "schema_version", "schema_version must be a non-empty string."))
    issues += _required_issues(manifest)
    issues += _recommended_issues(manifest)
    for left, right in _CROSS:
        issues.extend(_mismatch(manifest, left, right))
    issues += _compare_context_issues(manifest)
    if not isinstance(manifest.get("tool"), dict):
        issues.append(Issue("WARNING", "tool", "tool section is recommended for provenance."))
    return issues


def _required_issues(manifest: dict[str, Any]) -> list[Issue]:
    issues = [Issue("ERROR", name, f"manifest.{name} section is required for Runtime/Lab handoff.")
              for name in _REQUIRED if not isinstance(manifest.get(name), dict)]
    for name, keys in _REQUIRED.items():
        if not isinstance(manifest.get(name), dict):
            continue
        issues += [Issue("ERROR", f"{name}.{key}", f"{name}.{key} must be a non-empty string.")
                   for key in keys if not _non_empty(manifest[name].get(key))]
    return issues


def _recommended_issues(manifest: dict[str, Any]) -> list[Issue]:
    issues = []
    for dotted in ("source_model.sha256", "artifact.sha256", "artifact.model_name"):
        section = dotted.split(".")[0]
        if isinstance(manifest.get(section), dict) and not _non_empty(_get(manifest, dotted)):
            issues.append(Issue("WARNING", dotted, f"{dotted} is recommended for provenance and reviewability."))
    if isinstance(manifest.get("runtime"), dict):
        for key in ("batch", "height", "width"):
            if not _positive_int(manifest["runtime"].get(key)):
                issues.append(Issue("WARNING", f"runtime.{key}",
                                    f"runtime.{key} is recommended for compare_key and input-shape context."))
    return issues


def _compare_context_issues(manifest: dict[str, Any]) -> list[Issue]:
    if not (isinstance(manifest.get("source_model"), dict) and isinstance(manifest.get("runtime"), dict)):
        return []
    missing = [name for name in ("source_model.path", "runtime.engine", "runtime.device", "runtime.precision")
               if not _non_empty(_get(manifest, name))]
    missing += [f"runtime.{key}" for key in ("batch", "height", "width")
                if not _positive_int(manifest["runtime"].get(key))]
    if not missing:
        return []
    return [Issue("WARNING", "compare_context", f"compare_key/backend_key context is incomplete: {', '.join(missing)}")]


def _mismatch(manifest: dict[str, Any], left: str, right: str) -> list[Issue]:
    left_value, right_value = _get(manifest, left), _get(manifest, right)
    if _non_empty(left_value) and _non_empty(right_value) and left_value != right_value:
        return [Issue("ERROR", f"{left}/{right}", f"{left} and {right} must match for handoff consistency.")]
    return []


@functools.cache
def manifest_schema() -> dict[str, Any]:
    return Manifest.model_json_schema()


def schema_issues(manifest: dict[str, Any]) -> list[Issue]:
    import jsonschema  # only where a manifest Forge did not just compose is checked (verify, the gate)

    validator = jsonschema.Draft202012Validator(manifest_schema())
    issues = []
    for error in sorted(validator.iter_errors(manifest), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(part) for part in error.absolute_path) or "<root>"
        issues.append(Issue("ERROR", where, f"schema: {error.message}"))
    return issues


def forge_consistency(manifest: dict[str, Any]) -> list[Issue]:
    """Cross-field rules the original lacked; they only fire when both sides are present."""
    issues: list[Issue] = []
    for left, right in _FORGE_CROSS:
        issues.extend(_mismatch(manifest, left, right))
    for dotted in ("source_model.sha256", "artifact.sha256"):
        value = _get(manifest, dotted)
        if _non_empty(value) and not SHA256.match(value):
            issues.append(Issue("ERROR", dotted, f"{dotted} must be 64 lowercase hex characters, got '{value}'."))
    return issues


def path_issues(recorded: Any, expected: Path, build_dir: Path, label: str) -> list[Issue]:
    """A recorded path a downstream tool loads must name ``expected`` (a file inside ``build_dir``).

    Forge writes it relative to the build directory; older records hold absolute paths. A path that
    names the same file by the build directory's name and the file's place in it is a build tree that
    was moved: a WARNING, and downstream views use ``expected``. Anything else would make a downstream
    tool load another file than the one verified: an ERROR.
    """
    if not _non_empty(recorded):
        return [Issue("ERROR", label, "must be a non-empty string naming the artifact")]
    root = build_dir.resolve()
    try:
        candidates = {(root / recorded).resolve()}
    except (OSError, ValueError, RuntimeError):
        return [Issue("ERROR", label, f"{recorded!r} is not a usable path")]
    if expected in candidates:
        return []
    tail = (root.name, *expected.relative_to(root).parts)
    if Path(recorded).parts[-len(tail):] == tail:
        return [Issue("WARNING", label, f"{recorded} names this build's file by its old location (the build tree "
                                        f"was moved); downstream views use {expected}")]
    return [Issue("ERROR", label, f"{recorded} is not this build's verified file {expected}; a downstream tool "
                                  "would load something else")]


def artifact_location(entry: dict[str, Any], build_dir: Path, label: str,
                      published_as: Path | None = None) -> tuple[Path | None, list[Issue]]:
    """Where an artifact entry's file is, refusing anything outside the build directory.

    Forge records name the file inside the build directory (``file``). Original
    v0.1 records only have ``path``, relative to wherever that build ran; such a
    path is tried as given and then by name inside the build directory, and is
    only judged when it points at an existing file.
    """
    root = build_dir.resolve()
    name = entry.get("file")
    if _non_empty(name):
        candidate = (root / name).resolve()
        if "/" in name or "\\" in name or not candidate.is_relative_to(root) or candidate == root:
            return None, [Issue("ERROR", f"{label}.file", f"'{name}' escapes the build directory {root}")]
        recorded = entry.get("path")
        if not _non_empty(recorded):
            return candidate, []
        final = published_as.resolve() if published_as is not None else root
        return candidate, path_issues(recorded, final / candidate.relative_to(root), final, f"{label}.path")
    recorded = entry.get("path")
    if not _non_empty(recorded):
        return None, []
    candidate = Path(recorded).resolve()
    if not candidate.exists():
        by_name = root / Path(recorded).name
        if Path(recorded).parent.name == root.name and by_name.is_file():
            candidate = by_name
        else:
            return None, [Issue("WARNING", f"{label}.path",
                                f"artifact not found at {recorded}; its hash cannot be re-verified here")]
    if not candidate.is_relative_to(root):
        return None, [Issue("ERROR", f"{label}.path", f"{recorded} escapes the build directory {root}")]
    return candidate, []


def hash_issue(label: str, path: Path, expected: str) -> list[Issue]:
    if not path.is_file():
        return [Issue("ERROR", label, f"file not found: {path}")]
    actual = file_digest(path)
    if actual != expected:
        return [Issue("ERROR", label, f"sha256 mismatch for {path}: recorded {expected}, file has {actual}")]
    return []


def size_issue(label: str, path: Path, recorded: Any) -> list[Issue]:
    """A recorded size must be the file's size (checked before hashing: cheap, and a swap shows here first)."""
    if recorded is None:
        return []
    actual = path.stat().st_size
    if not isinstance(recorded, int) or isinstance(recorded, bool) or recorded != actual:
        return [Issue("ERROR", label, f"size mismatch for {path}: recorded {recorded!r}, file has {actual} bytes")]
    return []


def file_issues(manifest: dict[str, Any], build_dir: Path, published_as: Path | None = None) -> list[Issue]:
    """Re-hash every file the manifest names: artifacts (must be inside the build dir) and sources."""
    issues: list[Issue] = []
    entries: list[tuple[str, dict[str, Any]]] = []
    if isinstance(manifest.get("artifact"), dict):
        entries.append(("artifact", manifest["artifact"]))
    listed = manifest.get("artifacts")
    for index, entry in enumerate(listed if isinstance(listed, list) else []):
        if isinstance(entry, dict):
            entries.append((f"artifacts[{index}]", entry))
    for label, entry in entries:
        location, found = artifact_location(entry, build_dir, label, published_as)
        issues.extend(found)
        if location is None:
            continue
        if not location.is_file():
            issues.append(Issue("ERROR", f"{label}.path", f"artifact file not found: {location}"))
            continue
        issues.extend(size_issue(f"{label}.size_bytes", location, entry.get("size_bytes")))
        if _non_empty(entry.get("sha256")) and SHA256.match(entry["sha256"]):
            issues.extend(hash_issue(f"{label}.sha256", location, entry["sha256"]))
        if label == "artifact":
            issues.extend(_loaded_path_issues(manifest, location, build_dir, published_as))
    source = manifest.get("source_model")
    if isinstance(source, dict) and _non_empty(source.get("path")):
        issues += _source_issues(source, published_as or build_dir)
    return issues


LOADED_FIELDS = (("runtime", "model_path"), ("runtime", "artifact_path"), ("artifact", "model_path"))
"""The manifest fields a downstream tool loads the primary artifact from (besides ``artifact.path``)."""


def _loaded_path_issues(manifest: dict[str, Any], artifact: Path, build_dir: Path,
                        published_as: Path | None) -> list[Issue]:
    root = build_dir.resolve()
    final = published_as.resolve() if published_as is not None else root
    expected = final / artifact.relative_to(root)
    return [issue for name, key in LOADED_FIELDS if key in section(manifest, name)
            for issue in path_issues(section(manifest, name)[key], expected, final, f"{name}.{key}")]


def _source_issues(source: dict[str, Any], build_dir: Path) -> list[Issue]:
    """The source model and its external data, re-hashed when they are where the record says (relative to the
    output root's parent, or at ``path_abs``)."""
    source_path = locate_source(source, build_dir)
    if source_path is None:
        tried = " or ".join(str(path) for path in source_candidates(source, build_dir))
        return [Issue("WARNING", "source_model.path",
                      f"source model not found at {tried}; its hash cannot be re-verified here")]
    issues = []
    if _non_empty(source.get("sha256")) and SHA256.match(source["sha256"]):
        issues.extend(hash_issue("source_model.sha256", source_path, source["sha256"]))
    source_root = source_path.resolve().parent
    external = source.get("external_data")
    for index, item in enumerate(external if isinstance(external, list) else []):
        label = f"source_model.external_data[{index}]"
        if not isinstance(item, dict):
            issues.append(Issue("ERROR", label, "must be an object"))
            continue
        data_path = (source_root / str(item.get("path", ""))).resolve()
        if not data_path.is_relative_to(source_root):
            issues.append(Issue("ERROR", label, f"{item.get('path')} escapes {source_root}"))
        else:
            issues.extend(hash_issue(label, data_path, str(item.get("sha256"))))
    return issues


def validate_manifest_data(manifest: dict[str, Any], build_dir: Path, target: Path,
                           published_as: Path | None = None, *, against_schema: bool = True) -> ValidationReport:
    """``published_as``: where a work directory's build will be published, which its recorded paths name.
    ``against_schema=False`` only for a manifest just dumped from the :class:`Manifest` model, which the JSON
    schema is generated from (a schema check would re-prove its construction; every other rule still runs)."""
    report = ValidationReport(target=target)
    report.issues.extend(original_rules(manifest))
    if against_schema:
        report.issues.extend(schema_issues(manifest))
    report.issues.extend(forge_consistency(manifest))
    report.issues.extend(file_issues(manifest, build_dir, published_as))
    return report


def validate_manifest_file(path: Path) -> ValidationReport:
    """Validate one manifest.json; unreadable files raise :class:`RecordError`."""
    manifest = read_json_object(path, "Build manifest")
    return validate_manifest_data(manifest, path.parent, path)
