"""``inferedgeforge``: the command line over the core. Parsing and printing only.

Errors caused by input print one ``Error: <message>`` line on stderr and exit 1;
argparse usage errors exit 2. Set ``FORGE_DEBUG=1`` to see a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_inferedgeforge import __version__
from pytest_inferedgeforge.model.argtypes import count_at_least
from pytest_inferedgeforge.model.errors import ForgeError

if TYPE_CHECKING:
    pass

Handler = Callable[[argparse.Namespace], int]


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def _print_report(header: str, report: Any, as_json: bool) -> int:
    """The original validate-* output: verdict, file, counts, then one line per issue."""
    if as_json:
        _print_json(report.to_dict())
    else:
        print(f"{header}: {'valid' if report.valid else 'invalid'}")
        print(f"Manifest: {report.target}")
        print(f"Errors: {len(report.errors)}")
        print(f"Warnings: {len(report.warnings)}")
        for issue in report.issues:
            print(issue.line())
    return 0 if report.valid else 1


def _status(message: str):
    from rich.console import Console

    return Console(stderr=True).status(message, spinner="dots")


# -- presets ---------------------------------------------------------------------------------------


def cmd_list_presets(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.model.presets import list_presets

    entries = list_presets(Path(args.presets_root))
    if args.json:
        _print_json([{"id": e.preset_id, "path": str(e.path), "valid": e.error is None, "error": e.error,
                      "backend": e.preset.backend if e.preset else None,
                      "target": e.preset.target if e.preset else None,
                      "precision": e.preset.precision if e.preset else None} for e in entries])
    else:
        for entry in entries:
            if entry.error is None:
                print(entry.preset_id)
    broken = [entry for entry in entries if entry.error is not None]
    for entry in broken:
        print(f"Error: {entry.error}", file=sys.stderr)
    return 1 if broken else 0


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


def cmd_show_preset(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.model.presets import load_preset

    _print_json(preset_view(load_preset(args.preset_id, Path(args.presets_root))))
    return 0


# -- build -----------------------------------------------------------------------------------------


def _input_shapes(values: list[str] | None) -> dict[str, list[int]]:
    from pytest_inferedgeforge.model.onnx_model import parse_input_shape

    shapes: dict[str, list[int]] = {}
    for value in values or []:
        name, dims = parse_input_shape(value)
        if name in shapes:
            raise ForgeError(f"--input-shape given twice for input '{name}'")
        shapes[name] = dims
    return shapes


def _input_values(values: list[str] | None) -> dict[str, Any] | None:
    from pytest_inferedgeforge.model.inputs import parse_value_rule

    rules: dict[str, Any] = {}
    for value in values or []:
        name, rule = parse_value_rule(value)
        if name in rules:
            raise ForgeError(f"--input-value given twice for input '{name}'")
        rules[name] = rule
    return rules or None


def _dry_run(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.backends.registry import get_backend
    from pytest_inferedgeforge.engine.build import build_dir_name, plan_build
    from pytest_inferedgeforge.model.hashing import sha256_file
    from pytest_inferedgeforge.model.presets import load_preset

    preset = load_preset(args.preset, Path(args.presets_root))
    model, output = Path(args.model), Path(args.output)
    backend = get_backend(preset.backend)
    build_dir = output / build_dir_name(model, preset)
    shapes: dict[str, list[int]] | None = None
    batch: int | None = None
    height: int | None = None
    width: int | None = None
    notes: list[str] = []
    if model.exists():
        plan = plan_build(model, preset, output, input_shapes=_input_shapes(args.input_shape),
                          input_values=_input_values(args.input_value))
        shapes = plan.input_shapes
        batch, height, width = plan.shape_context
    else:
        notes.append(f"model file not found: {model}; shapes and hash are unknown until it exists")
    artifact = str(build_dir / backend.artifact_filename)
    availability = backend.available()
    _print_json({
        "model": args.model,
        "preset": preset.name,
        "backend": preset.backend,
        "target": preset.target,
        "artifact_format": preset.artifact_format,
        "source_model_sha256": sha256_file(model) if model.is_file() else None,
        "artifact_path_preview": artifact,
        "metadata_path_preview": str(build_dir / "metadata.json"),
        "run_summary_path_preview": str(build_dir / "run_summary.json"),
        "lab_profile_preview": {
            "engine": preset.backend, "device": preset.target, "precision": preset.precision,
            "engine_path": artifact, "runtime_artifact_path": artifact,
            "requested_batch": batch, "requested_height": height, "requested_width": width,
        },
        "build_dir_preview": str(build_dir),
        "precision": preset.precision,
        "input_shapes": shapes,
        "toolchain": {"available": availability.ok, "reason": availability.reason,
                      "versions": availability.versions},
        "notes": notes,
    })
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    if args.dry_run:
        return _dry_run(args)
    from pytest_inferedgeforge.engine.build import build, plan_build
    from pytest_inferedgeforge.model.presets import load_preset

    presets_root = Path(args.presets_root)
    preset = load_preset(args.preset, presets_root)
    plan = plan_build(Path(args.model), preset, Path(args.output), input_shapes=_input_shapes(args.input_shape),
                      presets_root=presets_root, input_values=_input_values(args.input_value))
    with _status(f"Building {preset.name}...") as status:
        outcome = build(plan, progress=lambda message: status.update(f"{preset.name}: {message}"),
                        force=args.force)
    record = outcome.record
    if args.json:
        _print_json({"cached": outcome.cached, "reason": outcome.reason, "build_dir": str(record.build_dir),
                     "metadata_path": str(record.metadata_path), "manifest_path": str(record.manifest_path),
                     "artifact_path": str(record.artifact_path), "build_id": record.manifest.build.build_id,
                     "build_key": record.manifest.build.build_key,
                     "artifact_sha256": record.manifest.artifact.sha256,
                     "source_sha256": record.manifest.source_model.sha256,
                     "ready": record.metadata.handoff.ready})
        return 0
    print("Build completed")
    print(f"Preset   : {preset.name}")
    print(f"Backend  : {preset.backend}")
    print(f"Target   : {preset.target}")
    print(f"Artifacts: {len(record.metadata.artifacts)}")
    print(f"Metadata : {record.metadata_path}")
    print(f"Artifact : {record.artifact_path}")
    print(f"SHA-256  : {record.manifest.artifact.sha256}")
    print(f"Cache    : {'hit' if outcome.cached else 'miss'} ({outcome.reason})")
    return 0


# -- inspection ------------------------------------------------------------------------------------


def _metadata_path(text: str) -> Path:
    path = Path(text)
    return path / "metadata.json" if path.is_dir() else path


def cmd_inspect_build(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.catalog import load_run_summary
    from pytest_inferedgeforge.handoff.lab import lab_profile_argv, lab_profile_input, shell_join
    from pytest_inferedgeforge.model.records.build import load_metadata

    path = _metadata_path(args.metadata_path)
    metadata = load_metadata(path)
    build_dir = path.parent
    summary = load_run_summary(build_dir)
    if args.summary:
        from pytest_inferedgeforge.engine.catalog import judge_readiness
        from pytest_inferedgeforge.model.records.build import load_manifest

        manifest_path = build_dir / "manifest.json"
        manifest = load_manifest(manifest_path) if manifest_path.exists() else None
        print(_summary_text(metadata, summary, judge_readiness(build_dir, metadata, manifest, summary)))
        return 0
    has_lab = metadata.lab_compat is not None
    view = {
        "build": metadata.build.model_dump(mode="json", exclude_none=True),
        "source_model": metadata.source_model.model_dump(mode="json", exclude_none=True),
        "artifacts": [a.model_dump(mode="json", exclude_none=True) for a in metadata.artifacts],
        "handoff": metadata.handoff.model_dump(mode="json", exclude_none=True),
        "preset_snapshot": metadata.preset_snapshot,
        "lab_profile_input": lab_profile_input(metadata) if has_lab else None,
        "lab_profile_command": shell_join(lab_profile_argv(metadata)) if has_lab else None,
        "run_summary": summary.model_dump(mode="json", exclude_none=True) if summary else None,
    }
    if (build_dir / "manifest.json").exists():
        from pytest_inferedgeforge.engine.catalog import load_entry
        from pytest_inferedgeforge.verify.manifest import verify_build_dir

        report = verify_build_dir(build_dir)
        view["verification"] = {"valid": report.valid, "errors": [i.line() for i in report.errors]}
        readiness = load_entry(build_dir).readiness
        view["compare_readiness"] = {"state": readiness.state, "reason": readiness.reason}
    _print_json(view)
    return 0


def _summary_text(metadata: Any, summary: Any, readiness: Any) -> str:
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


def cmd_show_lab_profile_input(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.handoff.lab import lab_profile_input
    from pytest_inferedgeforge.model.records.build import load_metadata

    _print_json(lab_profile_input(load_metadata(_metadata_path(args.metadata_path))))
    return 0


def cmd_show_lab_profile_command(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.handoff.lab import lab_profile_argv, shell_join
    from pytest_inferedgeforge.model.records.build import load_metadata

    print(shell_join(lab_profile_argv(load_metadata(_metadata_path(args.metadata_path)))))
    return 0


def cmd_show_worker_summary(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.handoff.lab import worker_runtime_summary
    from pytest_inferedgeforge.model.records.build import read_json_object

    metadata_path = _metadata_path(args.metadata_path).resolve()
    manifest_path = metadata_path.parent / "manifest.json"
    manifest = read_json_object(manifest_path, "Build manifest") if manifest_path.exists() else None
    _print_json(worker_runtime_summary(read_json_object(metadata_path, "Build metadata"), manifest,
                                       metadata_path=metadata_path,
                                       manifest_path=manifest_path if manifest is not None else None))
    return 0


# -- runs and compare ------------------------------------------------------------------------------


def cmd_run_benchmark(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.runs import RunSettings, run_native, run_via_lab

    build_dir = _metadata_path(args.metadata_path).parent
    if args.via == "lab":
        with _status("Running InferEdgeLab profile..."):
            outcome = run_via_lab(build_dir, timeout_s=args.timeout)
        if outcome.summary.stdout:
            print(outcome.summary.stdout, file=sys.stderr, end="")
    else:
        settings = RunSettings(warmup=args.warmup, runs=args.runs, threads=args.threads, seed=args.seed,
                               samples=args.samples, dataset=Path(args.dataset) if args.dataset else None,
                               accuracy=not args.no_accuracy)
        with _status(f"Benchmarking {build_dir.name} ({args.runs} runs)..."):
            outcome = run_native(build_dir, settings)
    _print_json(outcome.summary.model_dump(mode="json", exclude_none=True, exclude={"latencies_ms", "stdout"}))
    if not outcome.completed:
        print(f"Error: benchmark failed: {outcome.summary.error}; recorded in {outcome.summary_path}",
              file=sys.stderr)
        return 1
    if outcome.parity is not None and not outcome.parity.passed:
        print("Error: parity below thresholds: " + "; ".join(outcome.parity.failures), file=sys.stderr)
        return 1
    return 0


def _scan(args: argparse.Namespace) -> list[Any]:
    from pytest_inferedgeforge.engine.catalog import scan_builds

    entries, problems = scan_builds(Path(args.dir), model=args.model)
    for problem in problems:
        print(f"Warning: {problem}", file=sys.stderr)
    return entries


def _status_text(entry: Any) -> str:
    state = entry.readiness.state
    if state == "ready":
        return "ready (benchmark available)"
    if state == "pending":
        return "pending (no benchmark)"
    return f"not ready ({state}: {entry.readiness.reason})"


def cmd_list_builds(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.catalog import group_by_source

    entries = _scan(args)
    if args.json:
        _print_json([{"source_model": e.source_path, "preset": e.preset_name, "build_dir": str(e.build_dir),
                      "artifact": str(e.artifact_path) if e.artifact_path else None,
                      "state": e.readiness.state, "reason": e.readiness.reason} for e in entries])
        return 0
    if not entries:
        print("No builds found.")
        return 0
    blocks = []
    for source, group in group_by_source(entries).items():
        lines = [f"Build Group: {source}", "-" * 32]
        for index, entry in enumerate(group, 1):
            lines += [f"[{index}] {entry.preset_name}", f"    artifact : {entry.artifact_path or 'none'}",
                      f"    status   : {_status_text(entry)}"]
        blocks.append("\n".join(lines))
    print("\n\n".join(blocks))
    return 0


def cmd_show_compare_candidates(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.catalog import group_by_source
    from pytest_inferedgeforge.handoff.compare import comparable

    entries = _scan(args)
    if args.json:
        _print_json([{"source_model": e.source_path, "preset": e.preset_name, "build_dir": str(e.build_dir),
                      "ready": comparable(e), "state": e.readiness.state, "reason": e.readiness.reason,
                      "structured_result_path": e.run_summary.structured_result_path if e.run_summary else None}
                     for e in entries])
        return 0
    if not entries:
        print("No compare candidates found.")
        return 0
    blocks = []
    for source, group in group_by_source(entries).items():
        ready = [e for e in group if comparable(e)]
        pending = [e for e in group if not comparable(e)]
        lines = [f"Compare Candidates: {source}", "-" * 36, "Ready"]
        index = 0
        for entry in ready:
            index += 1
            runtime = entry.metadata.lab_compat.runtime if entry.metadata.lab_compat else None
            lines += [f"[{index}] {entry.preset_name}", f"    artifact : {entry.artifact_path or 'none'}",
                      f"    engine   : {runtime.engine if runtime else 'unknown'}",
                      f"    device   : {runtime.device if runtime else 'unknown'}",
                      f"    precision: {runtime.precision if runtime else 'unknown'}"]
        if not ready:
            lines.append("    none")
        lines += ["", "Pending"]
        for entry in pending:
            index += 1
            reason = "benchmark missing" if entry.readiness.state == "pending" else \
                f"{entry.readiness.state}: {entry.readiness.reason}"
            lines += [f"[{index}] {entry.preset_name}", f"    artifact : {entry.artifact_path or 'none'}",
                      f"    status   : {reason}"]
        if not pending:
            lines.append("    none")
        action = "use InferEdgeLab compare on ready variants" if len(ready) >= 2 else \
            "benchmark one more variant to enable comparison"
        lines += ["", "Summary", f"- ready builds : {len(ready)}", f"- pending builds : {len(pending)}",
                  f"- next action : {action}"]
        blocks.append("\n".join(lines))
    print("\n\n".join(blocks))
    return 0


def cmd_show_compare_command(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.handoff.compare import choose_pair
    from pytest_inferedgeforge.handoff.lab import lab_compare_command

    choice = choose_pair(_scan(args), args.left, args.right)
    command = None
    if choice.left is not None and choice.right is not None:
        assert choice.left.run_summary is not None and choice.right.run_summary is not None  # comparable() checked
        command = lab_compare_command(str(choice.left.run_summary.structured_result_path),
                                      str(choice.right.run_summary.structured_result_path))
    if args.json:
        _print_json({
            "model": args.model, "status": "available" if command else "unavailable",
            "reason": choice.reason, "next_step": choice.next_step,
            "left": choice.left.preset_name if choice.left else None,
            "right": choice.right.preset_name if choice.right else None,
            "command": command,
        })
        return 0 if command else 1
    print("Compare Command Preview")
    print("-----------------------")
    if command is None or choice.left is None or choice.right is None:
        print(f"Model : {args.model}")
        print("Status: unavailable")
        print(f"Reason: {choice.reason}")
        print("")
        print("Next Step")
        print("---------")
        print(f"- {choice.next_step}")
        return 1
    print(f"Model       : {args.model}")
    print(f"Left Preset : {choice.left.preset_name}")
    print(f"Right Preset: {choice.right.preset_name}")
    print("")
    print(command)
    print("")
    print("Next Step")
    print("---------")
    print("- run the compare command in InferEdgeLab")
    print("- review latency and trade-off differences")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.handoff.compare import compare_table, markdown_table, write_plots

    if (args.left is None) != (args.right is None):
        raise ForgeError("give both --left and --right, or neither")
    if args.left is not None and args.baseline is not None:
        raise ForgeError("--baseline cannot be combined with --left/--right")
    entries = _scan(args)
    table = compare_table(entries, args.model, baseline=args.baseline,
                          only=(args.left, args.right) if args.left else None)
    if not args.no_plot:
        write_plots(table, entries, Path(args.plot_dir) if args.plot_dir else Path(args.dir) / "compare")
    if args.json:
        _print_json(table.model_dump(mode="json"))
    else:
        print(markdown_table(table))
        for plot in table.plots:
            print(f"Plot: {plot}")
    return 0


def cmd_attach_accuracy(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.handoff.attach import attach_accuracy

    path = attach_accuracy(Path(args.build_dir), Path(args.accuracy_json))
    print(f"Accuracy attached: {path}")
    return 0


# -- validation ------------------------------------------------------------------------------------


def cmd_validate_manifest(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.verify.manifest import validate_manifest_file

    path = Path(args.manifest) if args.manifest else Path(args.build_dir) / "manifest.json"
    return _print_report("Manifest validation", validate_manifest_file(path), args.json)


def cmd_verify(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.verify.manifest import verify_build_dir

    reports = [verify_build_dir(Path(directory)) for directory in args.build_dirs]
    if args.json:
        _print_json([report.to_dict() for report in reports])
    else:
        for report in reports:
            verdict = "ok" if report.valid else "FAILED"
            print(f"{verdict} {report.target} ({len(report.errors)} error(s), {len(report.warnings)} warning(s))")
            for issue in report.issues:
                print(f"  {issue.line()}")
    return 0 if all(report.valid for report in reports) else 1


def cmd_schema(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.model.records.schemas import export_schemas, schema_names, schema_text

    if args.export:
        for path in export_schemas(Path(args.export)):
            print(path)
        return 0
    if args.name is None:
        print("\n".join(schema_names()))
        return 0
    if args.name not in schema_names():
        raise ForgeError(f"unknown schema '{args.name}'; choose from {', '.join(schema_names())}")
    print(schema_text(args.name), end="")
    return 0


def cmd_rebuild_from_manifest(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.reproduce import rebuild_from_manifest

    with _status("Rebuilding from manifest..."):
        result = rebuild_from_manifest(Path(args.manifest_path), output=Path(args.output) if args.output else None,
                                       presets_root=Path(args.presets_root),
                                       use_current_preset=args.use_current_preset,
                                       allow_source_change=args.allow_source_change)
    report = result.report
    if args.json:
        _print_json(report.model_dump(mode="json"))
        return 0
    record = result.outcome.record
    print("Rebuild completed")
    print(f"Manifest : {args.manifest_path}")
    print(f"Preset   : {record.manifest.build.preset_name} (from the {report.preset.used} preset)")
    print(f"Model    : {report.source.path}")
    print(f"Output   : {record.build_dir.parent}")
    print(f"Metadata : {record.metadata_path}")
    print(f"Verdict  : {report.verdict}")
    if report.functional is not None:
        print(f"Parity   : min cosine {report.functional.min_cosine:.8f}, max abs error "
              f"{report.functional.max_abs_error:.3g}")
    for reason in report.reasons:
        print(f"  - {reason}")
    if report.preset.drifted:
        print("Preset drift (recorded snapshot -> current file):")
        for line in report.preset.diff:
            print(f"  {line}")
    print(f"Report   : {result.report_path}")
    return 0


def cmd_toolchain_list(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.backends.registry import BACKEND_NAMES, get_backend
    from pytest_inferedgeforge.backends.rknn.toolchain import rknn_env_dir

    rows: list[dict[str, Any]] = []
    for name in BACKEND_NAMES:
        availability = get_backend(name).available()
        location = str(rknn_env_dir()) if name == "rknn" else (availability.versions.get("trtexec") or "this environment")
        rows.append({"backend": name, "available": availability.ok, "versions": availability.versions,
                     "location": location, "reason": availability.reason})
    if args.json:
        _print_json(rows)
        return 0
    for row in rows:
        versions = ", ".join(f"{k} {v}" for k, v in row["versions"].items() if k not in ("env", "trtexec"))
        print(f"{row['backend']:<12} {'available' if row['available'] else 'unavailable':<12} {row['location']}")
        print(f"{'':<12} {versions or row['reason']}")
    return 0


def cmd_toolchain_install(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.backends.rknn.toolchain import install_rknn, rknn_env_dir

    with _status(f"Installing {args.backend} toolchain into {rknn_env_dir()}...") as status:
        marker = install_rknn(lambda message: status.update(message))
    versions = ", ".join(f"{k} {v}" for k, v in marker["versions"].items())
    print(f"Installed rknn toolchain in {rknn_env_dir()} ({versions}) in {marker['install_seconds']}s")
    return 0


# -- agent manifest --------------------------------------------------------------------------------


def cmd_create_agent_manifest(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.handoff.agent import create_agent_manifest
    from pytest_inferedgeforge.model.records.build import read_json_object

    guard = None
    if args.guard_policy is not None:
        try:
            guard = json.loads(args.guard_policy)
        except json.JSONDecodeError as exc:
            raise ForgeError(f"--guard-policy is not valid JSON: {exc}") from exc
        if not isinstance(guard, dict):
            raise ForgeError("--guard-policy must decode to a JSON object")
    payload = create_agent_manifest(
        read_json_object(Path(args.manifest), "Build manifest"), args.manifest, agent_id=args.agent_id,
        agent_type=args.agent_type, priority=args.priority, latency_budget_ms=args.latency_budget_ms,
        deadline_ms=args.deadline_ms, input_type=args.input_type, output_type=args.output_type,
        fallback_mode=args.fallback_mode, required_backend=args.required_backend, device_target=args.device_target,
        precision=args.precision, runtime_artifact_path=args.runtime_artifact_path,
        tool_schema_path=args.tool_schema_path, telemetry_contract_version=args.telemetry_contract_version,
        guard_policy=guard)
    if args.output is None:
        _print_json(payload)
        return 0
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"Agent manifest written: {output}")
    return 0


def cmd_validate_agent_manifest(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.handoff.agent import validate_agent_manifest
    from pytest_inferedgeforge.model.records.build import read_json_object

    path = Path(args.manifest)
    report = validate_agent_manifest(read_json_object(path, "Agent manifest"), path)
    return _print_report("Agent manifest validation", report, args.json)


# -- parser ----------------------------------------------------------------------------------------


def _add(sub: Any, name: str, handler: Handler, help_text: str, description: str | None = None) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=description or help_text,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(handler=handler)
    return parser


def _presets_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--presets-root", default="presets", metavar="DIR",
                        help="directory holding <backend>/<name>.yaml presets (default: presets)")


def build_parser() -> argparse.ArgumentParser:
    from pytest_inferedgeforge.engine.runs import LAB_TIMEOUT_S
    from pytest_inferedgeforge.handoff.agent import AGENT_TYPES, FALLBACK_MODES, TELEMETRY_VERSION

    parser = argparse.ArgumentParser(
        prog="inferedgeforge",
        description="InferEdgeForge: build ONNX models into edge artifacts (ONNX Runtime, RKNN, TensorRT) with "
                    "verifiable provenance records, benchmarks, parity evidence and InferEdgeLab handoff.",
        epilog="Errors print 'Error: <message>' on stderr and exit 1. FORGE_DEBUG=1 shows tracebacks. "
               "Docs: README.md and docs/.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _add(sub, "list-presets", cmd_list_presets, "list preset ids (every file is validated)")
    _presets_root(p)
    p.add_argument("--json", action="store_true", help="print ids, paths, validity and errors as JSON")

    p = _add(sub, "show-preset", cmd_show_preset, "print one validated preset as JSON")
    p.add_argument("preset_id", metavar="PRESET_ID", help="backend/name, e.g. onnxruntime/cpu_int8")
    _presets_root(p)

    p = _add(sub, "build", cmd_build, "build a model with a preset (cached by content)",
             "Build MODEL with PRESET into OUTPUT/<stem>__<target>__<backend>__<preset>/.\n"
             "A build with an unchanged build key is reused after its hashes verify.")
    p.add_argument("--model", required=True, help="source ONNX model")
    p.add_argument("--preset", required=True, help="preset id, backend/name")
    p.add_argument("--output", required=True, help="output root for build directories, e.g. builds")
    p.add_argument("--dry-run", action="store_true", help="print the build plan as JSON; write nothing")
    p.add_argument("--input-shape", action="append", metavar="NAME:1x3x224x224",
                   help="concrete shape for an input with dynamic dims (repeatable; trtexec --shapes convention)")
    p.add_argument("--input-value", action="append", metavar="NAME=RULE",
                   help="synthetic values of an input for calibration, smoke run and parity: NAME=16000 (constant), "
                        "NAME=8000|16000 (choice) or NAME=-1..1 (range) (repeatable)")
    p.add_argument("--force", action="store_true", help="rebuild even when a verified cached build exists")
    p.add_argument("--json", action="store_true", help="print the build outcome as JSON")
    _presets_root(p)

    p = _add(sub, "inspect-build", cmd_inspect_build, "show a build's records, handoff and run status")
    p.add_argument("metadata_path", metavar="METADATA_PATH", help="metadata.json (or its build directory)")
    p.add_argument("--summary", action="store_true", help="print a text report instead of JSON")

    for name, handler, text in (
        ("show-lab-profile-input", cmd_show_lab_profile_input, "print the InferEdgeLab profile input JSON"),
        ("show-lab-profile-command", cmd_show_lab_profile_command, "print the InferEdgeLab profile command"),
        ("show-worker-summary", cmd_show_worker_summary, "print the worker/runtime summary (Lab worker, Runtime)"),
    ):
        p = _add(sub, name, handler, text)
        p.add_argument("metadata_path", metavar="METADATA_PATH", help="metadata.json (or its build directory)")

    p = _add(sub, "run-benchmark", cmd_run_benchmark, "benchmark a build and check parity; writes run_summary.json",
             "Native (default): load the artifact here, measure latency and compare its outputs with the source\n"
             "model. Writes run_summary.json (also when it fails), results/<lab result>.json and\n"
             "accuracy_evidence.json. --via lab runs 'python -m inferedgelab.cli profile' instead.")
    p.add_argument("metadata_path", metavar="METADATA_PATH", help="metadata.json (or its build directory)")
    p.add_argument("--via", choices=("native", "lab"), default="native", help="who runs the benchmark (default: native)")
    p.add_argument("--warmup", type=count_at_least(0), default=5, help="warmup iterations (default 5)")
    p.add_argument("--runs", type=count_at_least(1), default=30, help="measured iterations (default 30)")
    p.add_argument("--threads", type=count_at_least(1), default=None, help="intra-op threads (default: runtime decides)")
    p.add_argument("--samples", type=count_at_least(1), default=8, help="input samples for parity and benchmark (default 8)")
    p.add_argument("--seed", type=int, default=1234, help="seed of synthetic inputs (default 1234)")
    p.add_argument("--dataset", default=None, help="directory of .npy/.npz inputs instead of synthetic ones")
    p.add_argument("--no-accuracy", action="store_true", help="skip the parity check against the source model")
    p.add_argument("--timeout", type=count_at_least(1), default=LAB_TIMEOUT_S, help="seconds before --via lab is stopped")

    for name, handler, text in (
        ("list-builds", cmd_list_builds, "list builds grouped by source model, with readiness"),
        ("show-compare-candidates", cmd_show_compare_candidates, "show ready and not-ready compare candidates"),
    ):
        p = _add(sub, name, handler, text)
        p.add_argument("--dir", required=True, help="directory to search for builds")
        p.add_argument("--model", default=None, help="only builds of this source model (paths are normalised)")
        p.add_argument("--json", action="store_true", help="print as JSON")

    p = _add(sub, "show-compare-command", cmd_show_compare_command,
             "preview the InferEdgeLab compare command for two ready builds (exit 1 when unavailable)")
    p.add_argument("--dir", required=True, help="directory to search for builds")
    p.add_argument("--model", required=True, help="source model")
    p.add_argument("--left", default=None, help="left preset (give with --right)")
    p.add_argument("--right", default=None, help="right preset (give with --left)")
    p.add_argument("--json", action="store_true", help="print the preview as JSON")

    p = _add(sub, "compare", cmd_compare, "tabulate latency and accuracy deltas of ready builds and plot them")
    p.add_argument("--dir", required=True, help="directory to search for builds")
    p.add_argument("--model", required=True, help="source model")
    p.add_argument("--left", default=None, help="compare only this preset (the baseline) ...")
    p.add_argument("--right", default=None, help="... against this one")
    p.add_argument("--baseline", default=None, help="baseline preset (default: an fp32 build, else the first)")
    p.add_argument("--json", action="store_true", help="print the table as JSON instead of Markdown")
    p.add_argument("--plot-dir", default=None, help="where latency plots go (default: DIR/compare)")
    p.add_argument("--no-plot", action="store_true", help="do not write plots")

    p = _add(sub, "attach-accuracy", cmd_attach_accuracy,
             "bind a Lab-style accuracy payload to a build's artifact and merge it into its result")
    p.add_argument("--build-dir", required=True, help="build directory")
    p.add_argument("--accuracy-json", required=True, help='payload: {"task", "metrics": {...}, "dataset": {...}}')

    p = _add(sub, "validate-manifest", cmd_validate_manifest,
             "check a manifest: original rules, JSON Schema, and every hash against the files")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--manifest", help="manifest.json path")
    group.add_argument("--build-dir", help="build directory holding manifest.json")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = _add(sub, "verify", cmd_verify, "verify whole build records (manifest, metadata, hashes); exit 1 on any error")
    p.add_argument("build_dirs", nargs="+", metavar="BUILD_DIR", help="build directories")
    p.add_argument("--json", action="store_true", help="print the reports as JSON")

    p = _add(sub, "schema", cmd_schema, "list, print or export the JSON Schemas of Forge's files")
    p.add_argument("name", nargs="?", default=None, help="schema name; omit to list them")
    p.add_argument("--export", metavar="DIR", default=None, help="write every schema into DIR")

    p = _add(sub, "create-agent-manifest", cmd_create_agent_manifest, "derive an agent manifest from a build manifest")
    p.add_argument("--manifest", required=True, help="Forge manifest.json")
    p.add_argument("--agent-id", required=True)
    p.add_argument("--agent-type", required=True, choices=AGENT_TYPES)
    p.add_argument("--priority", required=True, type=int, help="0..100")
    p.add_argument("--latency-budget-ms", required=True, type=count_at_least(1))
    p.add_argument("--deadline-ms", required=True, type=count_at_least(1))
    p.add_argument("--input-type", required=True)
    p.add_argument("--output-type", required=True)
    p.add_argument("--fallback-mode", required=True, choices=FALLBACK_MODES)
    p.add_argument("--required-backend", default=None, help="override the manifest's runtime.engine")
    p.add_argument("--device-target", default=None, help="override the manifest's runtime.device")
    p.add_argument("--precision", default=None, help="override the manifest's runtime.precision")
    p.add_argument("--runtime-artifact-path", default=None, help="override the manifest's artifact path")
    p.add_argument("--tool-schema-path", default=None)
    p.add_argument("--telemetry-contract-version", default=TELEMETRY_VERSION)
    p.add_argument("--guard-policy", default=None, help="JSON object string")
    p.add_argument("--output", default=None, help="write here instead of printing")

    p = _add(sub, "validate-agent-manifest", cmd_validate_agent_manifest, "validate an agent manifest")
    p.add_argument("--manifest", required=True)
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = _add(sub, "rebuild-from-manifest", cmd_rebuild_from_manifest,
             "rebuild a recorded build and write a reproducibility verdict",
             "Rebuild from the manifest's recorded preset snapshot into a separate root (default: a\n"
             "'rebuilds' directory beside the original output root), then compare: bitwise (same sha256),\n"
             "functional (outputs agree within the precision's thresholds) or not reproducible.")
    p.add_argument("manifest_path", metavar="MANIFEST_PATH", help="manifest.json of the build to reproduce")
    p.add_argument("--output", default=None, help="output root for the rebuild (never the original build dir)")
    p.add_argument("--use-current-preset", action="store_true",
                   help="rebuild from the current preset file instead of the recorded snapshot")
    p.add_argument("--allow-source-change", action="store_true",
                   help="rebuild even if the source model's sha256 differs from the manifest")
    p.add_argument("--json", action="store_true", help="print the reproducibility report as JSON")
    _presets_root(p)

    toolchain = sub.add_parser("toolchain", help="list or install backend toolchains (rknn-toolkit2 has its own venv)",
                               description="List or install backend toolchains.")
    actions = toolchain.add_subparsers(dest="toolchain_command", metavar="ACTION", required=True)
    p = _add(actions, "list", cmd_toolchain_list, "show each backend's availability, versions and location")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p = _add(actions, "install", cmd_toolchain_install, "create and populate a toolchain environment",
             "Install a backend toolchain. Only rknn needs this: rknn-toolkit2 pins old numpy/onnx/torch,\n"
             "so it gets its own venv at $FORGE_RKNN_ENV, else $FORGE_TOOLCHAINS_DIR/rknn, else the user\n"
             "cache dir. It downloads about 5.6 GB (torch with CUDA wheels).")
    p.add_argument("backend", choices=("rknn",), help="toolchain to install")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        return 130
    except (ForgeError, OSError, ValueError) as exc:
        if os.environ.get("FORGE_DEBUG"):
            traceback.print_exc()
        message = str(exc).strip().replace("\n", " ") or type(exc).__name__
        print(f"Error: {message}", file=sys.stderr)
        return 1
    except Exception as exc:
        if os.environ.get("FORGE_DEBUG"):
            traceback.print_exc()
        print(f"Error: internal error ({type(exc).__name__}: {exc}); rerun with FORGE_DEBUG=1 and report it",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
