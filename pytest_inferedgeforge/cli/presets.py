"""List and show presets."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pytest_inferedgeforge.cli.common import add_command, add_presets_root, presets_root, print_json
from pytest_inferedgeforge.cli.views import preset_view


def cmd_list_presets(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.presets import list_presets

    entries = list_presets(presets_root(args))
    if args.json:
        print_json([{"id": e.preset_id, "path": str(e.path), "origin": e.origin, "valid": e.error is None,
                      "error": e.error,
                      "backend": e.preset.backend if e.preset else None,
                      "target": e.preset.target if e.preset else None,
                      "precision": e.preset.precision if e.preset else None} for e in entries])
    else:
        width = max((len(entry.preset_id) for entry in entries), default=0)
        for entry in entries:
            if entry.error is None:
                print(f"{entry.preset_id:<{width}}  {entry.origin:<8}  {entry.path}" if args.verbose else
                      f"{entry.preset_id:<{width}}  {entry.origin}")
    broken = [entry for entry in entries if entry.error is not None]
    for entry in broken:
        print(f"Error: {entry.error}", file=sys.stderr)
    return 1 if broken else 0


def cmd_show_preset(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.presets import load_preset

    print_json(preset_view(load_preset(args.preset_id, presets_root(args))))
    return 0


def register(sub: Any) -> None:

    p = add_command(sub, "list-presets", cmd_list_presets,
                    "list preset ids and where each comes from (project or built-in; every file is validated)",
                    "List every preset id with its origin: 'project' (the presets root given, configured, or\n"
                    "./presets) or 'built-in' (shipped in the package). A project preset hides the built-in one of\n"
                    "the same id. -v adds each file's path; --json gives ids, paths, origins, validity and errors.")
    add_presets_root(p)

    p = add_command(sub, "show-preset", cmd_show_preset, "print one validated preset as JSON")
    p.add_argument("preset_id", metavar="PRESET_ID", help="backend/name, e.g. onnxruntime/cpu_int8")
    add_presets_root(p)
