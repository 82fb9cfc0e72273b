"""Text views of records, kept out of the handlers so the handlers only parse and dispatch."""

from __future__ import annotations

from typing import Any


def preset_view(preset: Any) -> dict[str, Any]:
    """show-preset's JSON: the original's key order, then Forge's additions."""
    data = preset.snapshot()
    view = {key: data[key] for key in ("name", "backend", "target", "source_format", "artifact_format",
                                       "build_options")}
    if data.get("metadata") is not None:
        view["metadata"] = data["metadata"]
    view["precision"] = data["precision"]
    for key in ("input_shapes", "calibration"):
        if data.get(key) is not None:
            view[key] = data[key]
    return view


def summary_text(metadata: Any, summary: Any, readiness: Any) -> str:
    snapshot = metadata.preset_snapshot or {}
    artifact = metadata.artifacts[0] if metadata.artifacts else None
    runtime = metadata.lab_compat.runtime if metadata.lab_compat else None
    lines = ["Build:", f"  build_id: {metadata.build.build_id}", f"  backend: {metadata.build.backend}",
             f"  target: {metadata.build.target}", "", "Preset:",
             f"  name: {snapshot.get('name') or metadata.build.preset_name}"]
    options = snapshot.get("build_options") or {}
    if options:
        lines.append("  build_options: " + ", ".join(f"{k}={options[k]}" for k in sorted(options)))
    lines += ["", "Source Model:", f"  path: {metadata.source_model.path}",
              f"  sha256: {metadata.source_model.sha256 or 'unknown'}", "", "Artifact:",
              f"  path: {artifact.path if artifact else 'none'}",
              f"  sha256: {(artifact.sha256 if artifact else None) or 'unknown'}", "", "Run Status:"]
    if summary is None:
        lines.append("  no benchmark run yet")
    else:
        lines.append(f"  status: {summary.status or 'unknown'}")
        if summary.structured_result_path:
            lines.append(f"  structured_result_path: {summary.structured_result_path}")
        if summary.summary_file_path:
            lines.append(f"  summary_file_path: {summary.summary_file_path}")
        if summary.error:
            lines.append(f"  error: {summary.error}")
        fields = [("Engine     ", summary.engine), ("Device     ", summary.device),
                  ("Precision  ", summary.precision), ("Mean (ms)  ", summary.mean_ms), ("P99 (ms)   ", summary.p99_ms)]
        if any(value is not None for _, value in fields):
            lines += ["", "Run Summary:"] + [f"  {label}: {value}" for label, value in fields if value is not None]
        lines += ["", "Execution Insight:",
                  "  benchmark evidence exists for this build; compare it with another variant in InferEdgeLab "
                  "compare or compare-latest"]
    ready = readiness.ready
    lines += ["", "Compare Readiness:"]
    if summary is None:
        lines += ["  Status     : pending", "  Reason     : run-benchmark has not been executed yet"]
    elif ready:
        lines += ["  Status     : ready", "  Reason     : benchmark result is present for this artifact",
                  "  Workflow   : build another preset variant, then compare results in InferEdgeLab"]
    else:
        lines += [f"  Status     : {readiness.state}", f"  Reason     : {readiness.reason}"]
    context = [("Preset", snapshot.get("name") or metadata.build.preset_name), ("Backend", metadata.build.backend),
               ("Target", metadata.build.target), ("Source", metadata.source_model.path),
               ("Artifact", artifact.path if artifact else None), ("Engine", runtime.engine if runtime else None),
               ("Device", runtime.device if runtime else None), ("Precision", runtime.precision if runtime else None)]
    lines += ["", "Compare Context:"] + [f"  {label:<11}: {value}" for label, value in context if value is not None]
    lines += ["", "Next Step:"]
    if ready:
        lines += ["  ready for comparison in InferEdgeLab", "  build another preset variant of the same model",
                  "  run run-benchmark on that variant",
                  "  use InferEdgeLab compare or compare-latest on the two results"]
    else:
        lines.append("  run run-benchmark to generate validation results")
    return "\n".join(lines)


def run_view(summary: Any) -> dict[str, Any] | None:
    """A run as list-builds shows it: its id, status, when, and its figure or error."""
    if summary is None:
        return None
    view = {"run_id": summary.run_id, "status": summary.status, "finished_at": summary.finished_at,
            "mean_ms": summary.mean_ms, "error": summary.error, "median_ms": _median_ms(summary)}
    speed = getattr(summary, "speed_vs_fp32", None)
    if speed is not None:  # int8/fp16 runs: their median against fp32's (docs/experiments.md#speed-verdict)
        view.update(speed_vs_fp32=speed.verdict, speed_ratio_vs_fp32=speed.ratio)
    return view


def _median_ms(summary: Any) -> float | None:
    """The run's median latency, the figure Forge's statistics trust (None for runs recorded without one)."""
    latency = getattr(summary, "latency", None)
    median = getattr(latency, "median_ms", None) if latency is not None else None
    return median if isinstance(median, int | float) else None


def run_lines(entry: Any) -> list[tuple[str, str]]:
    """``last good`` and ``last failed`` lines for list-builds (only those that exist)."""
    lines = []
    good, failed = entry.run_summary, entry.last_failed_run
    if good is not None and good.status == "completed":
        median = _median_ms(good)
        figure = f", median {median:.3f} ms" if median is not None else ""
        figure += f", mean {good.mean_ms:.3f} ms" if isinstance(good.mean_ms, int | float) else ""
        speed = getattr(good, "speed_vs_fp32", None)
        if speed is not None and speed.ratio is not None:
            figure += f", {speed.ratio:.2f}x fp32's median ({speed.verdict.replace('_', ' ')})"
        lines.append(("last good", f"{good.run_id or 'run_summary.json'} ({good.finished_at or 'time unknown'}{figure})"))
    if failed is not None:
        lines.append(("last fail", f"{failed.run_id} ({failed.finished_at or 'time unknown'}): "
                                   f"{(failed.error or 'no error recorded')[:200]}"))
    return lines


def status_text(entry: Any) -> str:
    state = entry.readiness.state
    if state == "ready":
        return "ready (benchmark available)"
    if state == "pending":
        return "pending (no benchmark)"
    return f"not ready ({state}: {entry.readiness.reason})"




def history_lines(entries: list[Any]) -> list[str]:
    """``history``'s table: one block per lineage, one line per run, oldest first."""
    from pytest_inferedgeforge.model.stats import describe_percentile

    lines: list[str] = []
    for lineage in dict.fromkeys(entry.lineage for entry in entries):
        lines += ["", lineage, f"  {'started':<20} {'key':<12} {'status':<9} {'runs':>5} {'median ms [95% CI]':<26} "
                               f"{'mean ms':>8} {'p99 ms':<24} {'rob.cv':>6} {'stable':<6} {'min cos':>8}"]
        for entry in (e for e in entries if e.lineage == lineage):
            run = entry.summary
            latency = run.latency
            ci = latency.median_ci_ms if latency else None
            median = (f"{latency.median_ms:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if latency and latency.median_ms and ci
                      else f"{latency.p50_ms:.3f}" if latency else "-")
            stable = "-" if latency is None or latency.stable is None else ("yes" if latency.stable else "NO")
            cosine = (run.accuracy or {}).get("min_cosine")
            p99 = describe_percentile(latency, "p99") if latency else "-"
            verdict_cv = latency.verdict_cv if latency else None
            cv = f"{verdict_cv:.1%}" if verdict_cv is not None else "-"
            lines.append(
                f"  {(run.started_at or '-')[:19]:<20} {(run.build_key or '-')[:12]:<12} "
                f"{'regressed' if entry.regressed else run.status:<9} "
                f"{run.runs if run.runs is not None else '-':>5} {median:<26} "
                f"{f'{latency.mean_ms:.3f}' if latency else '-':>8} {p99:<24} "
                f"{cv:>6} {stable:<6} "
                f"{f'{cosine:.6f}' if isinstance(cosine, int | float) else '-':>8}")
    return lines[1:]
