"""List and show presets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.cli.common import add_command, add_presets_root, print_json
from pytest_inferedgeforge.cli.views import preset_view


def cmd_list_presets(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.presets import list_presets

    entries = list_presets(Path(args.presets_root))
    if args.json:
        print_json([{"id": e.preset_id, "path": str(e.path), "valid": e.error is None, "error": e.error,
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


def cmd_show_preset(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.presets import load_preset

    print_json(preset_view(load_preset(args.preset_id, Path(args.presets_root))))
    return 0


def register(sub: Any) -> None:

    p = add_command(sub, "list-presets", cmd_list_presets, "list preset ids (every file is validated)")
    add_presets_root(p)
    p.add_argument("--json", action="store_true", help="print ids, paths, validity and errors as JSON")

    p = add_command(sub, "show-preset", cmd_show_preset, "print one validated preset as JSON")
    p.add_argument("preset_id", metavar="PRESET_ID", help="backend/name, e.g. onnxruntime/cpu_int8")
    add_presets_root(p)
