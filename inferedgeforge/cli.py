"""``python -m inferedgeforge.cli <command>``: the original entry point."""

from pytest_inferedgeforge.cli.main import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
