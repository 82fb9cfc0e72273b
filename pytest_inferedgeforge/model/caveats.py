"""Forge's caveats about one run's figures, in plain words (docs/records.md#caveats).

Lab judges a run by its mean and p99; these say what Forge knows that those two
numbers do not: a percentile the sample cannot support, a run flagged unstable,
figures from a simulator rather than the artifact, parity failed, never
measured or unable to establish something (its warnings). The structured
result keeps them (``extra.forge_caveats``) and every Lab handoff prints them
beside the compare command.
"""

from __future__ import annotations

from pytest_inferedgeforge.model.records.run import RunSummary, measured_on


def run_caveats(summary: RunSummary) -> list[str]:
    """The caveats of a run's figures; empty when Forge has none."""
    latency = summary.latency
    if latency is None:
        caveats = [f"statistics {summary.statistics}" if summary.statistics else
                   "statistics not recorded: no percentile sufficiency or stability verdict"]
    else:
        caveats = [f"{name}: insufficient ({estimate.samples} of {estimate.needed} samples needed)"
                   for name, estimate in (latency.percentiles or {}).items() if estimate.status != "ok"]
        if latency.stability is not None and not latency.stability.stable:
            caveats.append("unstable: " + "; ".join(latency.stability.reasons))
    if measured_on(summary.evidence) == "simulator":
        caveats.append(f"evidence: {summary.evidence}, not the artifact measured on its device")
    parity = summary.accuracy
    if parity is None:
        caveats.append("parity: not measured")
    else:
        if not parity.get("passed"):
            caveats.append("parity: failed (" + "; ".join(parity.get("failures") or ["below its thresholds"]) + ")")
        caveats += [f"parity: {warning}" for warning in parity.get("warnings") or []]
    return caveats
