"""A STAND-IN backend, named as such: it exists to prove that a third-party package can add a backend
through the ``inferedgeforge.backends`` entry-point group without any edit to Forge.

Its "toolchain" copies the source ONNX model byte for byte into ``model.standin``, and its runner
executes that copy with ONNX Runtime on CPU. Nothing here claims to be an edge toolchain.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from pytest_inferedgeforge.backends.api import (
    Availability,
    BuildOutput,
    BuildRequest,
    Runner,
    ToolCall,
    parse_options,
    reference_runner,
)


class StandInOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    precision: Literal["fp32"] = "fp32"


class StandInBackend:
    name = "standin"
    artifact_filename = "model.standin"
    artifact_format = "standin"
    precisions = ("fp32",)
    options_model = StandInOptions
    marker_help = "stand-in backend items (a test package's copy-the-model backend)"

    def available(self) -> Availability:
        return Availability(True, versions={"standin": "0.1"}, location="tests/standin_backend")

    def build(self, request: BuildRequest) -> BuildOutput:
        parse_options(StandInOptions, request.preset)
        artifact = request.work_dir / self.artifact_filename
        shutil.copyfile(request.source, artifact)
        request.log(f"stand-in: copied {request.source.name}")
        return BuildOutput(artifacts=[artifact], calls=[ToolCall(api="shutil.copyfile", args={})])

    def load(self, artifact: Path, *, threads: int | None = None) -> Runner:
        return reference_runner(artifact, threads)  # the artifact is the source's bytes: ORT on CPU runs it
