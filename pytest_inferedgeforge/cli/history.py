"""``history``: every stored run of each build over time, with the figures that say how far to trust them."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pytest_inferedgeforge.cli.common import add_command, add_root, output_root, print_json, warn


def cmd_history(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.history import read_history, select

    entries, problems = read_history(output_root(args))
    for problem in problems:
        warn(args, problem)
    entries = select(entries, model=args.model, preset=args.preset)
    if args.json:
        print_json({"runs": [{"lineage": entry.lineage, "regressed": entry.regressed,
                              "run": entry.summary.model_dump(mode="json", exclude_none=True)} for entry in entries]})
        return 0
    if not entries:
        print("No runs found.", file=sys.stderr)
        return 0
    from pytest_inferedgeforge.cli.views import history_lines

    for line in history_lines(entries):
        print(line)
    return 0


def register(sub: Any) -> None:
    p = add_command(sub, "history", cmd_history, "list every stored run of each build over time",
                    "Every run Forge recorded under the builds root, oldest first, grouped by lineage (the build\n"
                    "directory name: model x target x backend x preset), including runs of earlier build keys that\n"
                    "a rebuild replaced (kept in <root>/.history/). Per run: build key, status, run count, median\n"
                    "with its 95% interval, mean, p99 (or how many samples it lacks), CV, stability, min cosine.\n"
                    "A run that failed a --forge-fail-on gate is marked 'regressed' and is never chosen as a baseline.\n"
                    "--json writes {\"runs\": [{\"lineage\", \"regressed\", \"run\"}...]}, which --forge-baseline accepts.")
    add_root(p)
    p.add_argument("--model", default=None, help="only runs of this source model (file name or stem)")
    p.add_argument("--preset", default=None, help="only runs of this preset (id, or its last segment)")
