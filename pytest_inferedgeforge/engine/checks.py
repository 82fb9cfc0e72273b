"""The invariants every published build must satisfy, as issues in the verification report's form.

They read the verification report the build already passed (:class:`~.build.VerifiedBuild`), so an
item verifies its build once. The report already holds the v0.1 rules, the schema, the cross-field
agreements (backend and engine among them), containment and every hash; what it cannot know is
whether the build declared itself ready for its handoff.
"""

from __future__ import annotations

from pytest_inferedgeforge.engine.build import VerifiedBuild
from pytest_inferedgeforge.verify.manifest import Issue


def build_invariants(verified: VerifiedBuild) -> list[Issue]:
    issues = list(verified.report.errors)
    handoff = verified.record.metadata.handoff
    if not handoff.ready:
        issues.append(Issue("ERROR", "metadata.handoff.ready", f"the build is not ready for its handoff: "
                                                               f"{'; '.join(handoff.reasons or ['no reason recorded'])}"))
    return issues
