"""``runs/<run id>/run.dsse.json``: a signed in-toto Statement over one run's records (docs/records.md#signed-runs).

A build's provenance vouches for the artifact; a run's figures are made later,
often on another machine (a device runner). Without a signature of their own they
are only consistent with each other: latencies scaled down and figures recomputed
verify. So a run made with a sign key is sealed by its runner: the Statement's
subjects are the run's record files by sha256, and its predicate names what the
figures are about (the build key, the artifact digest, the inputs digest) and who
measured them (the runner and its host). ``verify --key`` and the ``--forge-trust``
gate require every run to be sealed by a trusted key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pytest_inferedgeforge.model.provenance import STATEMENT_TYPE, Subject
from pytest_inferedgeforge.model.records.run import RunSummary

RUN_PREDICATE_TYPE = "https://inferedgeforge.dev/run-types/benchmark-run/v1"
"""What the predicate's fields mean (docs/records.md#signed-runs); a new version when their meaning changes."""
RUN_SIGNATURE_FILE = "run.dsse.json"


class RunHost(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hostname: str | None = None
    platform: str | None = None
    machine: str | None = None
    cpu_model: str | None = None


class RunPredicate(BaseModel):
    """What a run's figures are about and who measured them."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    run_dir: str = Field(description="runs/<run id>, relative to the build directory.")
    status: str
    build_id: str | None = None
    build_key: str | None = None
    artifact_sha256: str | None = Field(None, description="The artifact the run measured.")
    inputs_sha256: str | None = Field(None, description="The exact inputs of the benchmark and parity.")
    runner: str | None = None
    evidence: str | None = None
    host: RunHost
    started_at: str | None = None
    finished_at: str | None = None


class RunStatement(BaseModel):
    """The envelope's payload. ``type_`` is written as in-toto's ``_type``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type_: str = Field(STATEMENT_TYPE, alias="_type")
    subject: list[Subject]
    predicateType: str = RUN_PREDICATE_TYPE
    predicate: RunPredicate


def run_predicate(summary: RunSummary, host: dict[str, Any]) -> RunPredicate:
    """The predicate of a run: all but ``host`` follows from its summary, so verify recomposes and compares it;
    ``host`` (model/environment.py host_facts) says on which machine the runner measured."""
    return RunPredicate(
        run_id=str(summary.run_id), run_dir=str(summary.run_dir), status=summary.status, build_id=summary.build_id,
        build_key=summary.build_key, artifact_sha256=summary.artifact_sha256_at_run, inputs_sha256=summary.inputs_sha256,
        runner=summary.runner, evidence=summary.evidence,
        host=RunHost(hostname=host.get("hostname"), platform=host.get("platform"), machine=host.get("machine"),
                     cpu_model=(summary.host_state or {}).get("cpu_model")),
        started_at=summary.started_at, finished_at=summary.finished_at)


def run_statement(subjects: dict[str, str], summary: RunSummary, host: dict[str, Any]) -> RunStatement:
    """``subjects``: file name inside the run directory -> sha256."""
    return RunStatement(subject=[Subject(name=name, digest={"sha256": digest}) for name, digest in sorted(subjects.items())],
                        predicate=run_predicate(summary, host))


def statement_bytes(statement: RunStatement) -> bytes:
    """The exact payload signed: compact, keys sorted, so the same run always gives the same bytes."""
    return json.dumps(statement.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"),
                      allow_nan=False).encode()


def signed_files(run_dir: Path) -> list[str]:
    """The run's records a seal must cover: every file in the run directory but the envelope itself."""
    return sorted(path.name for path in run_dir.iterdir() if path.name != RUN_SIGNATURE_FILE)


def parse_run_statement(payload: bytes) -> dict[str, Any]:
    """The payload as JSON (strict); :class:`ValueError` when it is not."""
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")
    value = json.loads(payload, parse_constant=refuse)
    if not isinstance(value, dict):
        raise ValueError("the payload is not a JSON object")
    return value
