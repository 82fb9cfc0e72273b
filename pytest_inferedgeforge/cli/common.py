"""What every command shares: output helpers, option helpers, the build-directory argument."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Handler = Callable[[argparse.Namespace], int]


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def print_report(header: str, report: Any, as_json: bool) -> int:
    """The original validate-* output: verdict, file, counts, then one line per issue."""
    if as_json:
        print_json(report.to_dict())
    else:
        print(f"{header}: {'valid' if report.valid else 'invalid'}")
        print(f"Manifest: {report.target}")
        print(f"Errors: {len(report.errors)}")
        print(f"Warnings: {len(report.warnings)}")
        for issue in report.issues:
            print(issue.line())
    return 0 if report.valid else 1


def status(message: str):
    from rich.console import Console

    return Console(stderr=True).status(message, spinner="dots")


def metadata_path(text: str) -> Path:
    path = Path(text)
    return path / "metadata.json" if path.is_dir() else path


def add_command(sub: Any, name: str, handler: Handler, help_text: str, description: str | None = None) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=description or help_text,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(handler=handler)
    return parser


def add_presets_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--presets-root", default="presets", metavar="DIR",
                        help="directory holding <backend>/<name>.yaml presets (default: presets)")


def scan(args: argparse.Namespace) -> list[Any]:
    from pytest_inferedgeforge.engine.catalog import scan_builds

    entries, problems = scan_builds(Path(args.dir), model=args.model)
    for problem in problems:
        print(f"Warning: {problem}", file=sys.stderr)
    return entries


