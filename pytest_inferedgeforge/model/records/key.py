"""The build key from its parts, and the parts as a build record states them, so ``verify`` can recompute it.

A build key is the sha256 of the digests of its parts (record format, source
model and external data, preset snapshot, input shapes, toolchain and versions,
calibration dataset, input value rules, image preprocessing). Every part is recorded, by value, in
the build's records, and by digest in ``build.key_parts``; recomputing both from
a record shows whether any input was edited after the build.
"""

from __future__ import annotations

from typing import Any

from pytest_inferedgeforge.model.hashing import sha256_json
from pytest_inferedgeforge.model.jsonio import section

PART_NAMES = {"record_format": "record format", "source_sha256": "source model", "external_data": "external data",
              "preset": "preset", "input_shapes": "input shapes", "toolchain": "toolchain",
              "calibration_dataset": "calibration dataset", "input_values": "input value rules",
              "preprocess": "input preprocessing"}
"""Each part's name as a user reads it ("build inputs changed (input shapes changed)")."""

PART_FIELDS = {"record_format": "build.record_format", "source_sha256": "source_model.sha256",
               "external_data": "source_model.external_data", "preset": "preset_snapshot",
               "input_shapes": "input_shapes", "toolchain": "toolchain.backend/toolchain.versions",
               "calibration_dataset": "build.calibration_dataset_sha256", "input_values": "input_values",
               "preprocess": "preprocess"}
"""Where a record states each part."""


def part_digests(parts: dict[str, Any]) -> dict[str, str]:
    return {name: sha256_json(value) for name, value in parts.items()}


def key_of(digests: dict[str, str]) -> str:
    """The build key of a set of part digests."""
    return sha256_json(digests)


def recorded_parts(record: dict[str, Any]) -> dict[str, Any]:
    """The key parts exactly as a Forge record (manifest or metadata) states them."""
    build, source, toolchain = section(record, "build"), section(record, "source_model"), section(record, "toolchain")
    external = source.get("external_data") or []
    parts: dict[str, Any] = {
        "record_format": build.get("record_format"),
        "source_sha256": source.get("sha256"),
        "external_data": [{key: item.get(key) for key in ("path", "sha256", "size_bytes")}
                          for item in external if isinstance(item, dict)] if isinstance(external, list) else external,
        "preset": record.get("preset_snapshot"),
        "input_shapes": record.get("input_shapes"),
        "toolchain": {"backend": toolchain.get("backend"), "versions": toolchain.get("versions")},
        "calibration_dataset": build.get("calibration_dataset_sha256"),
    }
    if record.get("input_values"):
        parts["input_values"] = record["input_values"]
    if record.get("preprocess"):
        parts["preprocess"] = record["preprocess"]
    return parts
