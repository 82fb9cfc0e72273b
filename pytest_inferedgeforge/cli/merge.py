"""``merge-reports``: several runners' ``--forge-report`` files -> one compare handoff."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.cli.common import add_command, print_json


def cmd_merge_reports(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.handoff.merge import merge_reports
    from pytest_inferedgeforge.model.jsonio import write_json_atomic

    merged = merge_reports([Path(path) for path in args.reports])
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(output, merged.model_dump(mode="json"))
    pairs = [pair for handoff in merged.compare for pair in handoff.pairs]
    if args.json:
        print_json({"output": str(output), "items": len(merged.items), "pairs": len(pairs)})
        return 0
    hosts = sorted({str(item.host) for item in merged.items})
    print(f"Merged {len(args.reports)} reports ({len(merged.items)} items from {', '.join(hosts)}) into {output}")
    for pair in pairs:
        print(f"  {pair.lab_command}")
    return 0


def register(sub: Any) -> None:
    p = add_command(sub, "merge-reports", cmd_merge_reports, "merge several runners' JSON reports into one handoff",
                    "Merge --forge-report files of several runners (CI shards, device runners) into one report:\n"
                    "items keep their host and whether they ran on a device or a simulator. Each runner is labelled\n"
                    "by its host (a repeated host gets HOST-2, HOST-3, ...; a preset ready on several runners is\n"
                    "PRESET@LABEL). Every ready result is paired with its experiment's baseline (the first fp32\n"
                    "preset by name, else the first) for InferEdgeLab: N ready presets give N-1 pairs. A result\n"
                    "path must be a JSON file inside its runner's output root (and exist, where that root is\n"
                    "visible here). Two reports that disagree on a build key's artifact are an error.")
    p.add_argument("reports", nargs="+", metavar="REPORT", help="JSON reports written by pytest --forge-report")
    p.add_argument("-o", "--output", required=True, metavar="PATH", help="where to write the merged report")
