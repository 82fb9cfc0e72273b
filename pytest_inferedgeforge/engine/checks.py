"""The invariants every published build must satisfy, as named checks with expected and actual values."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_inferedgeforge.engine.build import BuildRecord
from pytest_inferedgeforge.verify.manifest import verify_build_dir


@dataclass(frozen=True)
class Violation:
    invariant: str
    expected: str
    actual: str

    def describe(self) -> str:
        return f"invariant '{self.invariant}' failed: expected {self.expected}, got {self.actual}"


def build_invariants(record: BuildRecord) -> list[Violation]:
    """Schema valid, 0 errors under the original rules, every hash re-verified, backend/engine agree,
    artifact inside the build directory, and handoff.ready true."""
    violations = [
        Violation(f"manifest {issue.path}", "no error", issue.message)
        for issue in verify_build_dir(record.build_dir).errors
    ]
    manifest = record.manifest
    if manifest.build.backend != manifest.runtime.engine:
        violations.append(Violation("build.backend == runtime.engine", repr(manifest.build.backend),
                                    repr(manifest.runtime.engine)))
    build_dir = record.build_dir.resolve()
    if not record.artifact_path.resolve().is_relative_to(build_dir):
        violations.append(Violation("artifact inside the build dir", f"a path under {build_dir}",
                                    str(record.artifact_path.resolve())))
    if not record.metadata.handoff.ready:
        violations.append(Violation("handoff.ready", "true", f"false ({'; '.join(record.metadata.handoff.reasons or [])})"))
    return violations
