"""What every command shares: one grammar for build directories, the builds root, presets, output and errors.

- A command that reads one build takes ``BUILD_DIR`` positionally; the build
  directory's ``metadata.json`` or ``manifest.json`` is accepted too, as the
  v0.1 tool took them, and v0.1's flags (``--build-dir``, ``--manifest``) stay as
  hidden aliases.
- A command that scans builds takes ``--dir``, defaulting to the project's
  ``forge_output`` (the same ini key as the plugin's ``--forge-output``).
- Every command takes ``--json`` (errors then print ``{"error": ...}`` on stdout,
  same exit codes), ``-q`` and ``-v``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.layout import MANIFEST_FILE, METADATA_FILE

Handler = Callable[[argparse.Namespace], int]


class UsageError(ForgeError):
    """A command line that cannot be run as given (exit 2, like argparse's own usage errors)."""

BUILD_DIR_HELP = "build directory (or its metadata.json / manifest.json, as v0.1 took them)"


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, allow_nan=False))


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


@contextlib.contextmanager
def status(message: str, args: argparse.Namespace) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr for long work (none with ``-q``); yields a function that updates its text."""
    if getattr(args, "quiet", False):
        yield lambda _: None
        return
    from rich.console import Console

    with Console(stderr=True).status(message, spinner="dots") as spinner:
        yield lambda text: spinner.update(text)


def warn(args: argparse.Namespace, message: str) -> None:
    if not getattr(args, "quiet", False):
        print(f"Warning: {message}", file=sys.stderr)


def add_command(sub: Any, name: str, handler: Handler, help_text: str, description: str | None = None) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=description or help_text,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(handler=handler)
    output = parser.add_argument_group("output")
    output.add_argument("--json", action="store_true", help='print the result as JSON; errors too, as {"error": ...}')
    output.add_argument("-q", "--quiet", action="store_true", help="no progress spinner and no warnings on stderr")
    output.add_argument("-v", "--verbose", action="store_true", help="log each step (build progress) on stderr")
    return parser


def add_build_dir(parser: argparse.ArgumentParser, *legacy_flags: str) -> None:
    """``BUILD_DIR`` positionally; ``legacy_flags`` (v0.1's ``--build-dir``/``--manifest``) as hidden aliases."""
    parser.add_argument("build_dir", nargs="?", metavar="BUILD_DIR", help=BUILD_DIR_HELP)
    for flag in legacy_flags:
        parser.add_argument(flag, dest="legacy_build_dir", default=None, help=argparse.SUPPRESS)


def build_arg(args: argparse.Namespace) -> Path:
    given = [value for value in (args.build_dir, getattr(args, "legacy_build_dir", None)) if value]
    if len(given) != 1:
        raise UsageError("give one build directory (BUILD_DIR)" if not given else
                         "give the build directory once (BUILD_DIR, or the v0.1 flag, not both)")
    return Path(given[0])


def _record_file(args: argparse.Namespace, name: str, sibling: str) -> Path:
    """The build's ``name`` record: inside BUILD_DIR, beside a given ``sibling`` record, or the given file itself."""
    path = build_arg(args)
    if path.is_dir():
        return path / name
    return path.parent / name if path.name == sibling else path


def metadata_path(args: argparse.Namespace) -> Path:
    return _record_file(args, METADATA_FILE, MANIFEST_FILE)


def manifest_path(args: argparse.Namespace) -> Path:
    return _record_file(args, MANIFEST_FILE, METADATA_FILE)


def add_root(parser: argparse.ArgumentParser, help_text: str = "builds root to search") -> None:
    parser.add_argument("--dir", default=None, metavar="DIR",
                        help=f"{help_text} (default: the project's forge_output, else ./builds)")


def output_root(args: argparse.Namespace, option: str = "dir") -> Path:
    """``--dir`` (or ``option``) as given, else the project's configured output root, found as pytest finds its ini."""
    from pytest_inferedgeforge.model.project import find_project_settings

    given = getattr(args, option, None)
    return Path(given) if given else find_project_settings().output_root


def add_presets_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--presets-root", default=None, metavar="DIR",
                        help="project presets root, <backend>/<name>.yaml, searched before the built-in presets "
                             "(default: the project's forge_presets, else ./presets when it exists)")


def presets_root(args: argparse.Namespace) -> Path | None:
    """The project presets layer: ``--presets-root`` (which must exist), else the project's."""
    from pytest_inferedgeforge.model.project import find_project_settings, presets_root_at

    if args.presets_root:
        return presets_root_at(Path.cwd(), args.presets_root, "--presets-root")
    return find_project_settings().presets_root()


def add_trust(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", action="append", metavar="PUB", default=None,
                        help="trusted public key (repeatable): only builds and runs signed by one of them count as "
                             "ready")


def scan(args: argparse.Namespace) -> list[Any]:
    from pytest_inferedgeforge.engine.catalog import scan_builds
    from pytest_inferedgeforge.model.keys import load_public_keys

    trusted = tuple(load_public_keys([Path(path) for path in getattr(args, "key", None) or []]))
    entries, problems = scan_builds(output_root(args), model=args.model, trusted=trusted)
    for problem in problems:
        warn(args, problem)
    return entries
