"""The smoke run: one inference that every fresh artifact must survive before it is published.

It feeds the first input parity will use (the spec's dataset, or the first seeded synthetic
sample under the value rules), so a model whose inputs mean something (a sample rate) is
smoke-run on meaningful values, and the record says which.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_inferedgeforge.engine.toolchains import load_runner
from pytest_inferedgeforge.model.errors import ForgeError, RunnerError, ToolchainUnavailable
from pytest_inferedgeforge.model.inputs import Sample
from pytest_inferedgeforge.model.records.build import SmokeRecord

if TYPE_CHECKING:
    from pytest_inferedgeforge.engine.plan import BuildPlan


@dataclass(frozen=True)
class SmokeResult:
    runner: str | None
    """Where it ran; None when the backend cannot load artifacts on this machine."""
    detail: str
    """The output shapes when it ran, else why it did not."""


def smoke_run(backend: str, artifact: Path, sample: Sample) -> SmokeResult:
    """Load an artifact and run one sample through it.

    A backend that cannot load artifacts here is reported, not failed; an artifact that does not
    load or does not run (a :class:`RunnerError` from its backend) raises :class:`ForgeError` with the
    toolchain's own first line. Any other exception is a bug and propagates with its traceback.
    """
    try:
        runner = load_runner(backend, artifact)
    except ToolchainUnavailable as exc:
        return SmokeResult(None, str(exc))
    except RunnerError as exc:
        raise ForgeError(f"the artifact does not load: {exc}") from exc
    try:
        outputs = runner.run(sample)
    except RunnerError as exc:
        raise ForgeError(f"the artifact failed its smoke run: {exc}") from exc
    finally:
        runner.close()
    return SmokeResult(runner.description, f"output shapes {[list(o.shape) for o in outputs]}")


def smoke_build(plan: BuildPlan, artifact: Path, log: Callable[[str], None]) -> SmokeRecord:
    """Run the fresh artifact once, so a build that cannot execute is never published."""
    sample, record = plan.smoke_sample()
    try:
        result = smoke_run(plan.preset.backend, artifact, sample)
    except ForgeError as exc:
        hint = ""
        if record.input_source == "synthetic" and not plan.input_values:
            hint = (" (it was fed seeded synthetic values; if an input's values matter, such as a sample rate or "
                    "token ids, give them with --input-value NAME=RULE or the spec's inputs.values)")
        raise ForgeError(f"{plan.preset.name}: {exc}{hint}") from exc
    record.runner, record.detail = result.runner, result.detail
    if result.runner is None:
        log(f"smoke run skipped: {result.detail}")
    else:
        log(f"smoke run ok on {result.runner} ({record.input_source} input, sha256 {record.inputs_sha256}): "
            f"{result.detail}")
    return record
