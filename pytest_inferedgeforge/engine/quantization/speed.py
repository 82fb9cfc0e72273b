"""The speed verdict: an int8 or fp16 run's median against the fp32 run of the same model on this host.

A reduced-precision artifact that passes parity is not worth deploying when it
runs slower than the fp32 build of the same model (dynamic int8 on a CPU
without integer dot products often does). So every int8 and fp16 run looks,
in its output root's history (engine/history.py, the ledger that outlives
rebuilds), for the newest completed fp32 run of the same source model (by
sha256) on the same backend and target, measured on this host (CPU model and
logical CPUs) with the same settings (the compare table's
:func:`~pytest_inferedgeforge.model.records.run.run_settings`) and the same
inputs (by digest). Noise is never called slower: the verdict is ``faster``
or ``slower`` only when the two medians' 95 % bootstrap intervals do not
overlap and the host's speed probe moved less than the difference
(model/regression.py reasons the same way); overlapping intervals are
``no_clear_difference``. Anything that prevents the comparison is
``not established: <why>`` in plain words.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pytest_inferedgeforge.engine.history import HistoryEntry, read_history
from pytest_inferedgeforge.model.layout import model_prefix
from pytest_inferedgeforge.model.records.run import RunSummary, SpeedVerdict, measured_on, run_settings
from pytest_inferedgeforge.model.regression import HOST_DRIFT_LIMIT, host_drift

REDUCED_PRECISIONS = ("int8", "fp16")
NO_FP32_RUN = "not established: no fp32 run of this model on this host"
HOST_KEYS = ("cpu_model", "cpu_count_logical")
"""What makes two runs' host the same host (model/host_state.py); a key either run lacks is not compared."""


def lineage_prefix(summary: RunSummary) -> str:
    """The start every build directory name of this model on this backend and target shares, so only those
    lineages are read."""
    source = Path(str((summary.source_model or {}).get("path") or ""))
    return model_prefix(source, str(summary.target), str(summary.backend))


def _same_model(entry: HistoryEntry, current: RunSummary) -> bool:
    before = entry.summary
    return (before.status == "completed" and before.precision == "fp32"
            and (before.source_model or {}).get("sha256") == (current.source_model or {}).get("sha256")
            and (before.backend, before.target) == (current.backend, current.target)
            and before.run_id != current.run_id and (before.started_at or "") < (current.started_at or "~"))


def _same_host(before: RunSummary, current: RunSummary) -> bool:
    then, now = before.host_state or {}, current.host_state or {}
    return all(then[key] == now[key] for key in HOST_KEYS if key in then and key in now)


def _differences(before: RunSummary, current: RunSummary) -> list[str]:
    """How the fp32 run was measured differently, one ``key fp32=x, this=y`` per setting."""
    then, now = run_settings(before), run_settings(current)
    found = [f"{key} fp32={then.get(key)}, this run={now.get(key)}" for key in now if then.get(key) != now.get(key)]
    if before.inputs_sha256 != current.inputs_sha256:
        found.append("inputs (their digests differ)")
    return found


def speed_vs_fp32(current: RunSummary, output_root: Path) -> SpeedVerdict | None:
    """The verdict of a completed int8/fp16 run (``current``, host state and figures filled in) against the
    newest matching fp32 run under ``output_root``; None for other precisions."""
    if current.precision not in REDUCED_PRECISIONS:
        return None
    latency = current.latency
    if latency is None or latency.median_ms is None or latency.median_ci_ms is None:
        return SpeedVerdict(verdict="not established: this run records no median interval")
    mine = {"median_ms": latency.median_ms, "median_ci_ms": latency.median_ci_ms}
    if measured_on(current.evidence) != "device":
        return SpeedVerdict(verdict="not established: this run's figures come from a simulator, not the artifact",
                            **mine)
    entries = read_history(output_root, lineage_prefix(current))[0] if output_root.is_dir() else []
    fp32 = [entry for entry in entries if _same_model(entry, current) and _same_host(entry.summary, current)]
    if not fp32:
        return SpeedVerdict(verdict=NO_FP32_RUN, **mine)
    matching = [entry for entry in fp32 if not _differences(entry.summary, current)]
    if not matching:
        newest = fp32[-1].summary
        return SpeedVerdict(verdict=f"not established: the latest fp32 run of this model ({newest.run_id}) was "
                                    f"measured differently ({'; '.join(_differences(newest, current))}); "
                                    "run both alike", fp32_run_id=newest.run_id, **mine)
    return _verdict(matching[-1], current)


def interval_verdict(mine: Sequence[float], fp32: Sequence[float]) -> str:
    """``slower`` or ``faster`` only when the two medians' 95 % intervals do not overlap; else
    ``no_clear_difference``: noise is never called slower."""
    if mine[0] > fp32[1]:
        return "slower"
    if mine[1] < fp32[0]:
        return "faster"
    return "no_clear_difference"


def _verdict(entry: HistoryEntry, current: RunSummary) -> SpeedVerdict:
    before, latency = entry.summary.latency, current.latency
    assert latency is not None and latency.median_ms is not None and latency.median_ci_ms is not None
    facts = SpeedVerdict(verdict="", fp32_build_dir=entry.lineage, fp32_build_key=entry.summary.build_key,
                         fp32_preset=entry.summary.preset_name, fp32_run_id=entry.summary.run_id,
                         median_ms=latency.median_ms, median_ci_ms=latency.median_ci_ms)
    if before is None or before.median_ms is None or before.median_ci_ms is None or before.median_ms <= 0:
        facts.verdict = f"not established: the fp32 run {entry.summary.run_id} records no median interval"
        return facts
    drift = host_drift(current.host_state, entry.summary.host_state)
    facts.fp32_median_ms, facts.fp32_median_ci_ms = before.median_ms, before.median_ci_ms
    facts.ratio = round(latency.median_ms / before.median_ms, 4)
    facts.host_drift = round(drift, 4) if drift is not None else None
    verdict = interval_verdict(latency.median_ci_ms, before.median_ci_ms)
    if verdict != "no_clear_difference" and drift is not None and drift > HOST_DRIFT_LIMIT \
            and abs(facts.ratio - 1) <= drift:
        verdict = (f"not established: the host's speed probe moved {drift:.0%} between the fp32 run and this one, "
                   f"as much as the difference ({facts.ratio:.2f}x)")
    facts.verdict = verdict
    return facts


def describe(verdict: SpeedVerdict) -> str:
    """One plain line: ``slower than fp32 (2.31x its median: 12.3 ms vs 5.3 ms, run <id>)``."""
    if verdict.ratio is None or verdict.fp32_median_ms is None or verdict.median_ms is None:
        return verdict.verdict
    words = {"faster": "faster than fp32", "slower": "slower than fp32",
             "no_clear_difference": "no clear difference from fp32"}.get(verdict.verdict, verdict.verdict)
    return (f"{words} ({verdict.ratio:.2f}x its median: {verdict.median_ms:.3f} ms vs {verdict.fp32_median_ms:.3f} ms "
            f"of {verdict.fp32_preset} run {verdict.fp32_run_id})")
