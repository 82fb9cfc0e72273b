"""``inferedgeforge``: the command line. One module per command group registers its commands here.

Errors caused by input print one ``Error: <message>`` line on stderr and exit 1;
argparse usage errors exit 2. Set ``FORGE_DEBUG=1`` to see a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from pytest_inferedgeforge.cli import agent, build, compare, inspect, presets, records, runs, toolchain
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.hashing import digest_memo
from pytest_inferedgeforge.model.version import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inferedgeforge",
        description="InferEdgeForge: build ONNX models into edge artifacts (ONNX Runtime, RKNN, TensorRT) with "
                    "verifiable provenance records, benchmarks, parity evidence and InferEdgeLab handoff.",
        epilog="Errors print 'Error: <message>' on stderr and exit 1. FORGE_DEBUG=1 shows tracebacks. "
               "Docs: README.md and docs/.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (presets, build, inspect, runs, compare, records, agent, toolchain):
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with digest_memo():
            return args.handler(args)
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        return 130
    except (ForgeError, OSError, ValueError) as exc:
        if os.environ.get("FORGE_DEBUG"):
            traceback.print_exc()
        message = str(exc).strip().replace("\n", " ") or type(exc).__name__
        print(f"Error: {message}", file=sys.stderr)
        return 1
    except Exception as exc:
        if os.environ.get("FORGE_DEBUG"):
            traceback.print_exc()
        print(f"Error: internal error ({type(exc).__name__}: {exc}); rerun with FORGE_DEBUG=1 and report it",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
