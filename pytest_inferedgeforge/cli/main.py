"""``inferedgeforge``: the command line. One module per command group registers its commands here.

Start-up is kept small: a command's module is imported and registered only when that command is run (all of
them for ``--help`` and unknown commands), and a command module imports the engine, onnx and onnxruntime inside
its handler, never at load (tests/test_cli_startup.py; docs/performance.md, start-up).

Errors caused by input (Forge's own :class:`ForgeError` family) and I/O errors (:class:`OSError`) print one
``Error: <message>`` line on stderr and exit 1 (with ``--json``: ``{"error": "<message>"}`` on stdout, same exit
code); argparse usage errors exit 2. Anything else is a bug in Forge: it keeps its traceback on stderr, followed
by one ``Error: internal error (...)`` line, and exits 1. A reader that closes the pipe early (``| head``) ends
the command quietly. Set ``FORGE_DEBUG=1`` to see the traceback of a Forge or I/O error too.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from pytest_inferedgeforge.cli.common import UsageError
from pytest_inferedgeforge.model.errors import ForgeError, did_you_mean
from pytest_inferedgeforge.model.hashing import digest_memo
from pytest_inferedgeforge.model.version import __version__

SIGPIPE_EXIT = 141
"""What a shell reports for a command ended by a closed pipe (128 + SIGPIPE), as for ``yes | head``."""


COMMAND_GROUPS: dict[str, tuple[str, ...]] = {
    "init": ("init",),
    "presets": ("list-presets", "show-preset"),
    "build": ("build",),
    "tune": ("tune",),
    "inspect": ("inspect-build", "show-lab-profile-input", "show-lab-profile-command", "show-worker-summary"),
    "runs": ("run-benchmark",),
    "diagnose": ("diagnose",),
    "history": ("history",),
    "compare": ("list-builds", "show-compare-candidates", "show-compare-command", "compare", "attach-accuracy"),
    "merge": ("merge-reports",),
    "records": ("validate-manifest", "verify", "schema", "rebuild-from-manifest"),
    "signing": ("keygen", "sign"),
    "cache": ("cache",),
    "agent": ("create-agent-manifest", "validate-agent-manifest"),
    "toolchain": ("toolchain",),
}
"""Each ``cli/<group>.py`` and the commands its ``register`` adds, in ``--help`` order; a test holds it to them."""


class ForgeArgumentParser(argparse.ArgumentParser):
    """Usage errors as JSON when the command line asks for JSON, so a script always gets JSON back; a misspelled
    command, option or choice is answered with the closest one (Python 3.11's argparse suggests none)."""

    forge_command: str | None = None
    """The command word of the command line being parsed, set by :func:`build_parser`."""

    def _suggestion(self, message: str) -> str:
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
        if choice:
            return did_you_mean(choice[1], re.findall(r"'([^']*)'", choice[2]))
        if not message.startswith("unrecognized arguments: "):
            return ""
        commands = [action for action in self._actions if isinstance(action, argparse._SubParsersAction)]
        command_parser = commands[0].choices.get(self.forge_command or "") if commands else None
        options = list((command_parser or self)._option_string_actions)
        for token in message.removeprefix("unrecognized arguments: ").split():
            hint = did_you_mean(token.split("=", 1)[0], options) if token.startswith("-") else ""
            if hint:
                return hint
        return ""

    def error(self, message: str) -> NoReturn:
        message += self._suggestion(message)
        if "--json" in sys.argv[1:]:
            print(json.dumps({"error": message, "usage": self.format_usage().strip()}, indent=2))
            raise SystemExit(2)
        super().error(message)


def _command_named(argv: Sequence[str]) -> str | None:
    """The command word: the first token that is not an option (the top level's options take no values)."""
    return next((token for token in argv if not token.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with ``command``'s group registered, or every group when ``command`` is None or unknown."""
    parser = ForgeArgumentParser(
        prog="inferedgeforge",
        description="InferEdgeForge: build ONNX models into edge artifacts (ONNX Runtime, RKNN, TensorRT) with "
                    "verifiable provenance records, benchmarks, parity evidence and InferEdgeLab handoff.",
        epilog="Errors print 'Error: <message>' on stderr and exit 1. FORGE_DEBUG=1 shows tracebacks. "
               "Docs: README.md and docs/.",
    )
    parser.forge_command = command
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups = [group for group, commands in COMMAND_GROUPS.items() if command in commands] or list(COMMAND_GROUPS)
    for group in groups:
        importlib.import_module(f"pytest_inferedgeforge.cli.{group}").register(sub)
    return parser


def _error(args: argparse.Namespace, message: str, code: int) -> int:
    try:
        if getattr(args, "json", False):
            print(json.dumps({"error": message}, indent=2), flush=True)
        else:
            print(f"Error: {message}", file=sys.stderr)
    except BrokenPipeError:
        _pipe_closed()
    return code


def _pipe_closed() -> int:
    """The reader went away: point stdout at /dev/null so the interpreter's final flush stays silent."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return SIGPIPE_EXIT


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(_command_named(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    if getattr(args, "verbose", False):
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    try:
        with digest_memo():
            code: int = args.handler(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _pipe_closed()
    except KeyboardInterrupt:
        return _error(args, "interrupted", 130)
    except UsageError as exc:
        return _error(args, str(exc), 2)
    except (ForgeError, OSError) as exc:
        if os.environ.get("FORGE_DEBUG"):
            traceback.print_exc()
        return _error(args, str(exc).strip().replace("\n", " ") or type(exc).__name__, 1)
    except Exception as exc:  # a bug in Forge: its traceback is what a report needs
        traceback.print_exc()
        return _error(args, f"internal error ({type(exc).__name__}: {exc}); a bug in Forge: report it with the "
                            "traceback above", 1)


if __name__ == "__main__":
    raise SystemExit(main())
