"""``provenance.json``: an in-toto Statement v1 whose predicate is SLSA Provenance v1 (docs/provenance.md).

These models are the one source of the file's shape (its JSON Schema is generated
from them). They keep the specifications' field names, ``_type`` included, and
take ``externalParameters``/``internalParameters`` as plain JSON objects, so
integers stay integers and a standard in-toto or SLSA tool reads the file as is.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pytest_inferedgeforge.model.records.build import Manifest

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://inferedgeforge.dev/build-types/onnx-edge-artifact/v1"
"""What Forge's ``externalParameters`` and ``internalParameters`` mean; a new version when their meaning changes."""
BUILDER_ID = "https://inferedgeforge.dev/builder/pytest-inferedgeforge"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
"""The DSSE payload type of an in-toto Statement."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ResourceDescriptor(_Strict):
    """in-toto's ResourceDescriptor: at least one of ``uri``, ``digest`` or ``content`` is set."""

    name: str | None = None
    uri: str | None = None
    digest: dict[str, str] | None = Field(None, description="Algorithm -> lowercase hex, e.g. {'sha256': '...'}.")
    content: str | None = None
    annotations: dict[str, Any] | None = None


class Subject(_Strict):
    name: str = Field(description="The artifact's file name inside the build directory.")
    digest: dict[str, str]


class BuildDefinition(_Strict):
    buildType: str
    externalParameters: dict[str, Any]
    internalParameters: dict[str, Any] | None = None
    resolvedDependencies: list[ResourceDescriptor] | None = None


class Builder(_Strict):
    id: str
    version: dict[str, str] | None = None
    builderDependencies: list[ResourceDescriptor] | None = None


class RunMetadata(_Strict):
    invocationId: str | None = None
    startedOn: str | None = None
    finishedOn: str | None = None


class RunDetails(_Strict):
    builder: Builder
    metadata: RunMetadata | None = None
    byproducts: list[ResourceDescriptor] | None = None


class SlsaProvenance(_Strict):
    buildDefinition: BuildDefinition
    runDetails: RunDetails


class Statement(_Strict):
    """The whole file. ``type_`` is written as in-toto's ``_type``."""

    type_: str = Field(STATEMENT_TYPE, alias="_type")
    subject: list[Subject]
    predicateType: str = SLSA_PROVENANCE
    predicate: SlsaProvenance


def statement_to_dict(statement: Statement) -> dict[str, Any]:
    return statement.model_dump(mode="json", by_alias=True, exclude_none=True)


BYPRODUCT_FILES = ("build.log", "metadata.json", "manifest.json")
"""The build's own records, bound into the provenance by digest (a later edit of any of them breaks it)."""
_VERSION = re.compile(r"^\d+(\.[0-9A-Za-z]+)*([.+-][0-9A-Za-z.+-]*)?$")


def _sha(value: str | None) -> dict[str, str] | None:
    return {"sha256": value} if value else None


def _external_parameters(manifest: Manifest) -> dict[str, Any]:
    build, source = manifest.build, manifest.source_model
    parameters: dict[str, Any] = {
        "preset": build.preset_name, "backend": build.backend, "target": build.target,
        "preset_snapshot": manifest.preset_snapshot, "input_shapes": manifest.input_shapes,
        "source_model": {"path": source.path, "format": source.format, "sha256": source.sha256},
    }
    if manifest.input_values:
        parameters["input_values"] = manifest.input_values
    return {key: value for key, value in parameters.items() if value is not None}


def _internal_parameters(manifest: Manifest) -> dict[str, Any]:
    build, toolchain = manifest.build, manifest.toolchain
    parameters: dict[str, Any] = {"build_key": build.build_key, "key_parts": build.key_parts,
                                  "record_format": build.record_format}
    if toolchain is not None:
        parameters["toolchain"] = {"backend": toolchain.backend, "versions": toolchain.versions,
                                   "calls": [call.model_dump(mode="json", exclude_none=True) for call in toolchain.calls]}
    if manifest.calibration is not None:
        parameters["calibration"] = manifest.calibration.model_dump(mode="json", exclude_none=True)
    return {key: value for key, value in parameters.items() if value is not None}


def _dependencies(manifest: Manifest) -> list[ResourceDescriptor]:
    source = manifest.source_model
    found = [ResourceDescriptor(name=source.path, digest=_sha(source.sha256),
                                uri=None if source.sha256 else f"file:{source.path}")]
    found += [ResourceDescriptor(name=item.path, digest=_sha(item.sha256),
                                 annotations={"role": "external_data", "size_bytes": item.size_bytes})
              for item in source.external_data or []]
    if manifest.calibration is not None:
        calibration = manifest.calibration
        found.append(ResourceDescriptor(name="calibration_samples", digest=_sha(calibration.sha256), annotations={
            "source": calibration.source, "samples": calibration.samples, "dataset": calibration.dataset}))
    if manifest.build.calibration_dataset_sha256:
        found.append(ResourceDescriptor(name="calibration_dataset", digest=_sha(manifest.build.calibration_dataset_sha256)))
    versions = manifest.toolchain.versions if manifest.toolchain is not None else {}
    found += [ResourceDescriptor(name=name, uri=f"pkg:pypi/{name}@{version}")
              for name, version in sorted(versions.items()) if _VERSION.match(version)]
    return found


def compose_statement(manifest: Manifest, byproducts: dict[str, str], invocation_id: str) -> Statement:
    """The provenance of a build, derived from its manifest and the digests of its own records.

    Everything but ``invocationId`` follows from the manifest, so ``verify`` recomposes it and compares.
    """
    artifacts = manifest.artifacts or [manifest.artifact]
    tool = manifest.tool
    return Statement(
        subject=[Subject(name=artifact.file or artifact.path.rsplit("/", 1)[-1], digest={"sha256": artifact.sha256 or ""})
                 for artifact in artifacts],
        predicate=SlsaProvenance(
            buildDefinition=BuildDefinition(
                buildType=BUILD_TYPE, externalParameters=_external_parameters(manifest),
                internalParameters=_internal_parameters(manifest), resolvedDependencies=_dependencies(manifest)),
            runDetails=RunDetails(
                builder=Builder(id=BUILDER_ID, version={"pytest-inferedgeforge": tool.inferedgeforge_version,
                                                        "python": tool.python_version} if tool else None),
                metadata=RunMetadata(invocationId=invocation_id, startedOn=manifest.build.started_at,
                                     finishedOn=manifest.build.finished_at),
                byproducts=[ResourceDescriptor(name=name, digest={"sha256": digest})
                            for name, digest in byproducts.items()]),
        ),
    )
