"""Across builds: list them, pick compare candidates, preview Lab's compare, tabulate deltas, attach accuracy."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.cli.common import (
    add_build_dir,
    add_command,
    add_root,
    add_trust,
    build_arg,
    output_root,
    print_json,
    scan,
    warn,
)
from pytest_inferedgeforge.cli.views import run_lines, run_view, status_text
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.extras import available, install_hint


def cmd_list_builds(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.catalog import group_by_source

    entries = scan(args)
    if args.json:
        print_json([{"source_model": e.source_path, "preset": e.preset_name, "build_dir": str(e.build_dir),
                      "artifact": str(e.artifact_or_none) if e.artifact_or_none else None,
                      "state": e.readiness.state, "reason": e.readiness.reason,
                      "last_good_run": run_view(e.run_summary), "last_failed_run": run_view(e.last_failed_run)}
                     for e in entries])
        return 0
    if not entries:
        print("No builds found.")
        return 0
    blocks = []
    for source, group in group_by_source(entries).items():
        lines = [f"Build Group: {source}", "-" * 32]
        for index, entry in enumerate(group, 1):
            lines += [f"[{index}] {entry.preset_name}", f"    artifact : {entry.artifact_or_none or 'none'}",
                      f"    status   : {status_text(entry)}"]
            lines += [f"    {label:<9}: {text}" for label, text in run_lines(entry)]
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
    from pytest_inferedgeforge.handoff.compare import choose_pair, lab_pair, ready_runs

    choice = choose_pair(scan(args), args.left, args.right)
    pair = None
    if choice.left is not None and choice.right is not None:
        runs = ready_runs({entry.preset_name: entry for entry in (choice.left, choice.right)})
        pair = lab_pair(runs, choice.left.preset_name, choice.right.preset_name, allow_mixed=args.allow_mixed)
    if args.json:
        print_json({
            "model": args.model, "status": "available" if pair else "unavailable",
            "reason": choice.reason, "next_step": choice.next_step,
            "left": choice.left.preset_name if choice.left else None,
            "right": choice.right.preset_name if choice.right else None,
            "command": pair.lab_command if pair else None,
            "mixed_settings": pair.mixed_settings if pair else [], "caveats": pair.caveats if pair else [],
        })
        return 0 if pair else 1
    print("Compare Command Preview")
    print("-----------------------")
    if pair is None:
        print(f"Model : {args.model}")
        print("Status: unavailable")
        print(f"Reason: {choice.reason}")
        print("")
        print("Next Step")
        print("---------")
        print(f"- {choice.next_step}")
        return 1
    print(f"Model       : {args.model}")
    print(f"Left Preset : {pair.left}")
    print(f"Right Preset: {pair.right}")
    print("")
    print(pair.lab_command)
    print("")
    if pair.caveats:
        print("Forge Caveats (what Lab's verdict does not show)")
        print("------------------------------------------------")
        print("\n".join(f"- {caveat}" for caveat in pair.caveats))
        print("")
    print("Next Step")
    print("---------")
    print("- run the compare command in InferEdgeLab")
    print("- review latency and trade-off differences")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.handoff.compare import compare_table, markdown_table

    if (args.left is None) != (args.right is None):
        raise ForgeError("give both --left and --right, or neither")
    if args.left is not None and args.baseline is not None:
        raise ForgeError("--baseline cannot be combined with --left/--right")
    entries = scan(args)
    table = compare_table(entries, args.model, baseline=args.baseline,
                          only=(args.left, args.right) if args.left else None, allow_mixed=args.allow_mixed)
    _pictures(args, table, entries)
    if args.json:
        print_json(table.model_dump(mode="json"))
    else:
        print(markdown_table(table))
        for plot in table.plots:
            print(f"Plot: {plot}")
        if table.html:
            print(f"HTML: {table.html}")
    return 0


def _pictures(args: argparse.Namespace, table: Any, entries: list[Any]) -> None:
    """The model's one figure (PNG, needs matplotlib) and, with --html, the self-contained page (its figure
    inline when matplotlib is installed, else a line saying which extra draws it)."""
    if args.no_plot and not args.html:
        return
    directory = Path(args.plot_dir) if args.plot_dir else default_plot_dir(output_root(args))
    png = None
    if available("matplotlib"):
        from pytest_inferedgeforge.handoff.figures import model_figure_png, write_figure

        png = model_figure_png(table, {entry.preset_name: (entry.run_summary.latencies_ms or [])
                                       if entry.run_summary else [] for entry in entries})  # one drawing, PNG and page
        if not args.no_plot:
            write_figure(table, png, directory)
    elif not args.no_plot:
        warn(args, f"plots skipped: matplotlib is not installed ({install_hint('matplotlib')}, or pass --no-plot)")
    if args.html:
        from pytest_inferedgeforge.handoff.html_page import write_compare_page

        write_compare_page(table, entries, png, directory)


def default_plot_dir(root: Path) -> Path:
    """Beside the builds root, never inside it: a folder of plots there is not a build and must not look like one."""
    return root.resolve().parent / "compare"


def cmd_attach_accuracy(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.signing import load_signing_key
    from pytest_inferedgeforge.handoff.attach import attach_accuracy

    signer = load_signing_key(Path(args.sign_key)).signer if args.sign_key else None
    path = attach_accuracy(build_arg(args), Path(args.accuracy_json), signer)
    if args.json:
        print_json({"structured_result_path": str(path)})
    else:
        print(f"Accuracy attached: {path}")
    return 0


def _pair_options(parser: argparse.ArgumentParser, helps: tuple[str, str]) -> None:
    """--dir, --model, --left and --right, as the two pair commands share them."""
    add_root(parser)
    parser.add_argument("--model", required=True, help="source model: its path, or its file name or stem (tiny_cnn)")
    parser.add_argument("--left", default=None, help=helps[0])
    parser.add_argument("--right", default=None, help=helps[1])
    add_trust(parser)


def _allow_mixed(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-mixed", action="store_true",
                        help="compare runs measured with different settings (warm-up, run count or time budget, "
                             "threads, native vs Lab); refused otherwise")


def register(sub: Any) -> None:
    for name, handler, text in (
        ("list-builds", cmd_list_builds, "list builds grouped by source model, with readiness"),
        ("show-compare-candidates", cmd_show_compare_candidates, "show ready and not-ready compare candidates"),
    ):
        p = add_command(sub, name, handler, text)
        add_root(p)
        p.add_argument("--model", default=None, help="only builds of this source model: a path, or a file name or stem")
        add_trust(p)

    p = add_command(sub, "show-compare-command", cmd_show_compare_command,
                    "preview the InferEdgeLab compare command for two ready builds (exit 1 when unavailable)",
                    "The exact 'python -m inferedgelab.cli compare' command for two ready builds of the model, with\n"
                    "Forge's caveats beside it: percentiles the run had too few samples for, runs flagged unstable,\n"
                    "figures from a simulator, parity failed or not measured. Runs measured with different settings\n"
                    "are refused, as compare refuses them, unless --allow-mixed (the differences are then a caveat).")
    _pair_options(p, ("left preset (give with --right)", "right preset (give with --left)"))
    _allow_mixed(p)

    p = add_command(sub, "compare", cmd_compare, "tabulate latency and accuracy deltas of ready builds and plot them",
                    "One row per compare-ready build of the model: median with its 95% interval, mean, p99 (or\n"
                    "'insufficient' when the run had too few samples), CV (! = unstable), parity, and whether it was\n"
                    "measured on the device or a simulator. Builds left out are listed with the reason. One figure\n"
                    "per model (latency box plots beside parity) goes to compare/<model>.png; --html adds a\n"
                    "self-contained page.")
    _pair_options(p, ("compare only this preset (the baseline) ...", "... against this one"))
    p.add_argument("--baseline", default=None, help="baseline preset (default: an fp32 build, else the first)")
    p.add_argument("--plot-dir", default=None,
                   help="where the figure and page go (default: compare/ beside the builds root, never inside it)")
    p.add_argument("--no-plot", action="store_true", help="do not write the PNG figure")
    p.add_argument("--html", action="store_true",
                   help="also write <model>.html: one self-contained page (sortable table, left-out builds, the Lab "
                        "command to copy, the figure inline; works offline)")
    _allow_mixed(p)

    p = add_command(sub, "attach-accuracy", cmd_attach_accuracy,
             "bind a Lab-style accuracy payload to a build's artifact and merge it into its result")
    add_build_dir(p, "--build-dir")
    p.add_argument("--accuracy-json", required=True, help='payload: {"task", "metrics": {...}, "dataset": {...}}')
    p.add_argument("--sign-key", metavar="KEY", default=None,
                   help="seal the rewritten run again with this private key (required when the run is signed)")
