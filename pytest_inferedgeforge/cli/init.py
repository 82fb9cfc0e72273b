"""``init``: scaffold a project that runs ``pytest`` at once."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.cli.common import add_command, print_json


def cmd_init(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.scaffold import init_project

    result = init_project(Path(args.directory), Path(args.model) if args.model else None)
    if args.json:
        print_json({"created": result.created, "kept": result.kept, "notes": result.notes})
        return 0
    for name in result.created:
        print(f"created  {name}")
    for name in result.kept:
        print(f"kept     {name} (exists; not overwritten)")
    for note in result.notes:
        print(f"note     {note}")
    if not args.quiet:
        print(f"\nNext: cd {args.directory} && pytest")
    return 0


def register(sub: Any) -> None:
    p = add_command(sub, "init", cmd_init, "scaffold a project: an experiment spec, pytest settings, .gitignore",
                    "Write experiments/<model>.forge.yaml for MODEL (default: a copy of the example model the\n"
                    "package carries, in models/) over every built-in ONNX Runtime preset, a pytest.ini naming the\n"
                    "builds root (unless a pytest configuration exists), and .gitignore lines for what Forge\n"
                    "writes. Nothing that exists is overwritten; running it again changes nothing.")
    p.add_argument("directory", nargs="?", default=".", metavar="DIR", help="project directory (default: .)")
    p.add_argument("--model", default=None, metavar="PATH", help="the ONNX model the experiment builds")
