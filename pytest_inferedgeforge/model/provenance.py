"""``provenance.json``: an in-toto Statement v1 whose predicate is SLSA Provenance v1 (docs/provenance.md).

These models are the one source of the file's shape (its JSON Schema is generated
from them). They keep the specifications' field names, ``_type`` included, and
take ``externalParameters``/``internalParameters`` as plain JSON objects, so
integers stay integers and a standard in-toto or SLSA tool reads the file as is.
What each toolchain component is comes from the installed distribution metadata
at build time (:func:`python_component`) and is recorded in the manifest, so the
statement follows from the manifest alone, on any machine.
"""

from __future__ import annotations

import json
import re
import sys
from importlib import metadata
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from pytest_inferedgeforge.model.records.build import Manifest, Toolchain, ToolchainComponent

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://inferedgeforge.dev/build-types/onnx-edge-artifact/v2"
"""What Forge's ``externalParameters`` and ``internalParameters`` mean, defined at the section the URI's path names
(docs/provenance.md#build-typesonnx-edge-artifactv2); a new version when their meaning changes."""
BUILD_TYPE_V1 = "https://inferedgeforge.dev/build-types/onnx-edge-artifact/v1"
"""The build type of records before :data:`SPEC_EXACT_SINCE`, whose provenance keeps its shape
(docs/provenance.md#build-typesonnx-edge-artifactv1)."""
SPEC_EXACT_SINCE = 7
"""The record format from which timestamps are UTC ``Z``, ``pkg:pypi`` names only distributions installed from an
index, and digests sit in ``resolvedDependencies`` alone (build type v2)."""
BUILDER_ID = "https://inferedgeforge.dev/builder/pytest-inferedgeforge"
"""Forge's builder, defined at the section the URI's path names (docs/provenance.md#builderpytest-inferedgeforge)."""
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
_INDEX_INSTALLERS = frozenset({"pip", "uv", "poetry", "pdm"})
"""Installers that fetch a requirement by name from a package index; an install from a direct URL (a wheel file,
a VCS, a local tree) leaves PEP 610's ``direct_url.json`` instead."""


def _normalised_name(name: str) -> str:
    """A distribution name as PEP 503 normalises it, the form a ``pkg:pypi`` purl takes."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _direct_url(found: metadata.Distribution) -> str | None:
    """PEP 610: the URL a distribution was installed from, "" when the file is unreadable, None without one."""
    text = found.read_text("direct_url.json")
    if text is None:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return ""
    return str(data["url"]) if isinstance(data, dict) and data.get("url") else ""


def python_component(name: str, path: list[str] | None = None) -> ToolchainComponent:
    """What ``name`` is, from the installed distribution metadata: the distribution of that name (searched on
    ``path``, e.g. another venv's site-packages) or, on this interpreter, the one providing the importable module
    ``name``; kind ``pypi`` only for a distribution an index installer fetched, ``system`` when none provides it."""
    found = next(iter(metadata.distributions(name=name, path=sys.path if path is None else path)), None)
    if found is None and path is None:
        providers = metadata.packages_distributions().get(name) or []
        found = next(iter(metadata.distributions(name=providers[0])), None) if providers else None
    if found is None:
        return ToolchainComponent(kind="system")
    direct, installer = _direct_url(found), (found.read_text("INSTALLER") or "").strip() or None
    return ToolchainComponent(kind="pypi" if direct is None and installer in _INDEX_INSTALLERS else "python",
                              distribution=_normalised_name(found.name), version=found.version, installer=installer,
                              url=direct or None)


def _sha(value: str | None) -> dict[str, str] | None:
    return {"sha256": value} if value else None


def _purl(kind: str, name: str, version: str | None) -> str:
    """A package URL (purl spec): type, percent-encoded name and, when it is a version, ``@version``."""
    suffix = f"@{quote(version, safe='')}" if version and _VERSION.match(version) else ""
    return f"pkg:{kind}/{quote(name, safe='')}{suffix}"


def _external_parameters(manifest: Manifest, v1: bool) -> dict[str, Any]:
    build, source = manifest.build, manifest.source_model
    recorded = {"path": source.path, "format": source.format, **({"sha256": source.sha256} if v1 else {})}
    parameters: dict[str, Any] = {
        "preset": build.preset_name, "backend": build.backend, "target": build.target,
        "preset_snapshot": manifest.preset_snapshot, "input_shapes": manifest.input_shapes,
        "source_model": recorded,
    }
    if manifest.input_values:
        parameters["input_values"] = manifest.input_values
    if manifest.preprocess:
        parameters["preprocess"] = manifest.preprocess
    return {key: value for key, value in parameters.items() if value is not None}


def _internal_parameters(manifest: Manifest, v1: bool) -> dict[str, Any]:
    build, toolchain = manifest.build, manifest.toolchain
    parameters: dict[str, Any] = {"build_key": build.build_key, "key_parts": build.key_parts,
                                  "record_format": build.record_format}
    if toolchain is not None:
        parameters["toolchain"] = {"backend": toolchain.backend, "versions": toolchain.versions,
                                   "calls": [call.model_dump(mode="json", exclude_none=True) for call in toolchain.calls]}
        if toolchain.components:
            parameters["toolchain"]["components"] = {key: component.model_dump(mode="json", exclude_none=True)
                                                     for key, component in toolchain.components.items()}
    if manifest.calibration is not None:
        parameters["calibration"] = manifest.calibration.model_dump(mode="json", exclude_none=True,
                                                                    exclude=None if v1 else {"sha256"})
    return {key: value for key, value in parameters.items() if value is not None}


def _toolchain_dependencies(toolchain: Toolchain | None, v1: bool) -> list[ResourceDescriptor]:
    """Record format 7 on: each Python distribution and system toolchain as what it is (host facts and locations
    stay in ``internalParameters``); before, every versions entry that reads as a version, as ``pkg:pypi``."""
    if toolchain is None:
        return []
    if v1:
        return [ResourceDescriptor(name=name, uri=f"pkg:pypi/{name}@{version}")
                for name, version in sorted(toolchain.versions.items()) if _VERSION.match(version)]
    found = []
    for key, component in sorted((toolchain.components or {}).items()):
        name, version = component.distribution or key, component.version or toolchain.versions.get(key)
        if component.kind == "pypi":
            found.append(ResourceDescriptor(name=name, uri=_purl("pypi", name, version)))
        elif component.kind in ("python", "system"):
            notes = {"kind": component.kind, "installer": component.installer, "url": component.url}
            found.append(ResourceDescriptor(name=name, uri=_purl("generic", name, version),
                                            annotations={k: v for k, v in notes.items() if v is not None}))
    return found


def _dependencies(manifest: Manifest, v1: bool) -> list[ResourceDescriptor]:
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
    return found + _toolchain_dependencies(manifest.toolchain, v1)


def compose_statement(manifest: Manifest, byproducts: dict[str, str], invocation_id: str) -> Statement:
    """The provenance of a build, derived from its manifest and the digests of its own records.

    Everything but ``invocationId`` follows from the manifest, so ``verify`` recomposes it and compares; a record
    older than :data:`SPEC_EXACT_SINCE` gets the build type v1 statement it was written with.
    """
    artifacts = manifest.artifacts or [manifest.artifact]
    tool = manifest.tool
    v1 = (manifest.build.record_format or 0) < SPEC_EXACT_SINCE
    return Statement(
        subject=[Subject(name=artifact.file or artifact.path.rsplit("/", 1)[-1], digest={"sha256": artifact.sha256 or ""})
                 for artifact in artifacts],
        predicate=SlsaProvenance(
            buildDefinition=BuildDefinition(
                buildType=BUILD_TYPE_V1 if v1 else BUILD_TYPE, externalParameters=_external_parameters(manifest, v1),
                internalParameters=_internal_parameters(manifest, v1), resolvedDependencies=_dependencies(manifest, v1)),
            runDetails=RunDetails(
                builder=Builder(id=BUILDER_ID, version={"pytest-inferedgeforge": tool.inferedgeforge_version,
                                                        "python": tool.python_version} if tool else None),
                metadata=RunMetadata(invocationId=invocation_id, startedOn=manifest.build.started_at,
                                     finishedOn=manifest.build.finished_at),
                byproducts=[ResourceDescriptor(name=name, digest={"sha256": digest})
                            for name, digest in byproducts.items()]),
        ),
    )
