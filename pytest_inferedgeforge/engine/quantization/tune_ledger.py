"""The trial ledger of a search, written into the build it settles on and bound into that build's records.

The resulting build goes through the ordinary build path with its backend wrapped: the wrapper lets the backend
build as usual, then writes ``tuning/trials.jsonl`` into the same work directory and records the ledger's sha256
in ``toolchain.details.tuning`` and as a ``forge.tune`` call. The manifest (and so the provenance, which names the
manifest's digest and every call) binds the ledger, and ``verify`` re-hashes it (verify/tuning.py). Nothing of the
ledger enters the build key: the build is the one its preset snapshot reproduces.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from pytest_inferedgeforge.backends.api import Availability, Backend, BuildOutput, BuildRequest, Runner
from pytest_inferedgeforge.model.records.build import ToolCall
from pytest_inferedgeforge.model.records.tuning import TUNE_CALL, TUNING_LEDGER, TuningTrial


def ledger_bytes(trials: list[TuningTrial]) -> bytes:
    """One trial a line, keys sorted, nulls left out: the bytes whose sha256 the records hold."""
    return b"".join(json.dumps(trial.model_dump(mode="json", exclude_none=True), sort_keys=True).encode() + b"\n"
                    for trial in trials)


class LedgerBackend:
    """``inner`` as it is, except that a build also writes the ledger and binds it."""

    def __init__(self, inner: Backend, trials: list[TuningTrial], summary: dict[str, Any]) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.artifact_filename: str = inner.artifact_filename
        self.artifact_format: str = inner.artifact_format
        self.precisions: tuple[str, ...] = inner.precisions
        self.options_model: type[BaseModel] = inner.options_model
        self.marker_help: str = inner.marker_help
        self._ledger = ledger_bytes(trials)
        self._summary = {"ledger": TUNING_LEDGER, "sha256": hashlib.sha256(self._ledger).hexdigest(),
                         "trials": len(trials), **summary}

    def available(self) -> Availability:
        return self.inner.available()

    def build(self, request: BuildRequest) -> BuildOutput:
        output = self.inner.build(request)
        path: Path = request.work_dir / TUNING_LEDGER
        path.parent.mkdir()
        path.write_bytes(self._ledger)
        request.log(f"tuning ledger: {self._summary['trials']} trial(s) in {TUNING_LEDGER}, sha256 "
                    f"{self._summary['sha256']}")
        output.details = {**output.details, "tuning": self._summary}
        output.calls = [*output.calls, ToolCall(api=TUNE_CALL, args=self._summary)]
        return output

    def load(self, artifact: Path, *, threads: int | None = None) -> Runner:
        return self.inner.load(artifact, threads=threads)
