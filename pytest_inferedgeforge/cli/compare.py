"""Across builds: list them, pick compare candidates, preview Lab's compare, tabulate deltas, attach accuracy."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.cli.common import add_command, print_json, scan
from pytest_inferedgeforge.cli.views import status_text
from pytest_inferedgeforge.model.errors import ForgeError


def cmd_list_builds(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.catalog import group_by_source

    entries = scan(args)
    if args.json:
        print_json([{"source_model": e.source_path, "preset": e.preset_name, "build_dir": str(e.build_dir),
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
                      f"    status   : {status_text(entry)}"]
        blocks.append("\n".join(lines))
    print("\n\n".join(blocks))
    return 0


def cmd_show_compare_candidates(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.catalog import group_by_source

    entries = scan(args)
    if args.json:
        print_json([{"source_model": e.source_path, "preset": e.preset_name, "build_dir": str(e.build_dir),
                      "ready": e.readiness.ready, "state": e.readiness.state, "reason": e.readiness.reason,
                      "structured_result_path": str(e.structured_result) if e.structured_result else None}
                     for e in entries])
        return 0
    if not entries:
        print("No compare candidates found.")
        return 0
    blocks = []
    for source, group in group_by_source(entries).items():
        ready = [e for e in group if e.readiness.ready]
        pending = [e for e in group if not e.readiness.ready]
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

    choice = choose_pair(scan(args), args.left, args.right)
    command = None
    if choice.left is not None and choice.right is not None:
        assert choice.left.run_summary is not None and choice.right.run_summary is not None  # ready implies a run summary
        command = lab_compare_command(str(choice.left.structured_result), str(choice.right.structured_result))
    if args.json:
        print_json({
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
    entries = scan(args)
    table = compare_table(entries, args.model, baseline=args.baseline,
                          only=(args.left, args.right) if args.left else None)
    if not args.no_plot:
        write_plots(table, entries, Path(args.plot_dir) if args.plot_dir else Path(args.dir) / "compare")
    if args.json:
        print_json(table.model_dump(mode="json"))
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


def _pair_options(parser: argparse.ArgumentParser, helps: tuple[str, str, str]) -> None:
    """--dir, --model, --left, --right and --json, as the two pair commands share them."""
    parser.add_argument("--dir", required=True, help="directory to search for builds")
    parser.add_argument("--model", required=True, help="source model")
    parser.add_argument("--left", default=None, help=helps[0])
    parser.add_argument("--right", default=None, help=helps[1])
    parser.add_argument("--json", action="store_true", help=helps[2])


def register(sub: Any) -> None:
    for name, handler, text in (
        ("list-builds", cmd_list_builds, "list builds grouped by source model, with readiness"),
        ("show-compare-candidates", cmd_show_compare_candidates, "show ready and not-ready compare candidates"),
    ):
        p = add_command(sub, name, handler, text)
        p.add_argument("--dir", required=True, help="directory to search for builds")
        p.add_argument("--model", default=None, help="only builds of this source model (paths are normalised)")
        p.add_argument("--json", action="store_true", help="print as JSON")

    p = add_command(sub, "show-compare-command", cmd_show_compare_command,
                    "preview the InferEdgeLab compare command for two ready builds (exit 1 when unavailable)")
    _pair_options(p, ("left preset (give with --right)", "right preset (give with --left)", "print the preview as JSON"))

    p = add_command(sub, "compare", cmd_compare, "tabulate latency and accuracy deltas of ready builds and plot them")
    _pair_options(p, ("compare only this preset (the baseline) ...", "... against this one",
                      "print the table as JSON instead of Markdown"))
    p.add_argument("--baseline", default=None, help="baseline preset (default: an fp32 build, else the first)")
    p.add_argument("--plot-dir", default=None, help="where latency plots go (default: DIR/compare)")
    p.add_argument("--no-plot", action="store_true", help="do not write plots")

    p = add_command(sub, "attach-accuracy", cmd_attach_accuracy,
             "bind a Lab-style accuracy payload to a build's artifact and merge it into its result")
    p.add_argument("--build-dir", required=True, help="build directory")
    p.add_argument("--accuracy-json", required=True, help='payload: {"task", "metrics": {...}, "dataset": {...}}')
