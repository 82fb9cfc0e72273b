"""The build key: a content address over everything that determines an artifact.

Its parts are the record format, the source model's sha256 (and its external
data), the preset snapshot, the resolved input shapes, the toolchain and its
versions, the calibration dataset's digest, the input value rules and the
image preprocessing (model/records/key.py); the last two only when given, so
builds without them keep their keys. Each part is recorded by value and by digest in
``manifest.build.key_parts``, so "why was this rebuilt" names the part that
changed and ``verify`` can recompute the key from the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_inferedgeforge.engine.plan import BuildPlan
from pytest_inferedgeforge.model.calibration import dataset_digest
from pytest_inferedgeforge.model.hashing import file_digest
from pytest_inferedgeforge.model.inputs import rules_snapshot
from pytest_inferedgeforge.model.preprocess import preprocess_snapshot
from pytest_inferedgeforge.model.records.build import RECORD_FORMAT, FileDigest
from pytest_inferedgeforge.model.records.key import PART_NAMES, key_of, part_digests


@dataclass
class Fingerprint:
    """The build key and its parts; each part is recorded by digest so a rebuild can name what changed."""

    external: list[FileDigest]
    parts: dict[str, Any]

    @property
    def source_sha256(self) -> str:
        return str(self.parts["source_sha256"])

    @property
    def toolchain_versions(self) -> dict[str, str]:
        return dict(self.parts["toolchain"]["versions"])

    @property
    def calibration_dataset_sha256(self) -> str | None:
        return self.parts["calibration_dataset"]  # type: ignore[no-any-return]

    @property
    def build_key(self) -> str:
        return key_of(self.part_digests)

    @property
    def part_digests(self) -> dict[str, str]:
        return part_digests(self.parts)


def fingerprint(plan: BuildPlan, versions: dict[str, str]) -> Fingerprint:
    source_sha = file_digest(plan.source)
    root = plan.source.parent.resolve()
    external = [
        FileDigest(path=str(path.relative_to(root)), sha256=file_digest(path), size_bytes=path.stat().st_size)
        for path in plan.model.external_data
    ]
    dataset = plan.calibration_dir()
    calibration = dataset_digest(dataset) if dataset is not None and plan.preset.precision == "int8" else None
    parts: dict[str, Any] = {
        "record_format": RECORD_FORMAT,
        "source_sha256": source_sha,
        "external_data": [digest.model_dump() for digest in external],
        "preset": plan.preset.snapshot(),
        "input_shapes": plan.input_shapes,
        "toolchain": {"backend": plan.preset.backend, "versions": versions},
        "calibration_dataset": calibration,
    }
    if plan.input_values:
        parts["input_values"] = rules_snapshot(plan.input_values)
    if plan.preprocess:
        parts["preprocess"] = preprocess_snapshot(plan.preprocess)
    return Fingerprint(external, parts)


def describe_change(recorded: dict[str, str] | None, key: Fingerprint) -> str:
    """Why a build with another key is rebuilt, naming each part whose digest changed."""
    if recorded is None:
        return "build inputs changed (the old build predates recorded key parts); rebuilding"
    current = key.part_digests
    changed = sorted(name for name in recorded.keys() | current.keys() if recorded.get(name) != current.get(name))
    names = ", ".join(f"{PART_NAMES.get(name, name)} changed" for name in changed) or "build key changed"
    return f"build inputs changed ({names}); rebuilding"
