"""The docs cover every command and option, and README's set-up commands are the ones CI runs."""

import argparse
from pathlib import Path

from pytest_inferedgeforge.cli.main import build_parser

REPO = Path(__file__).resolve().parent.parent


def _subparsers(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[f"{prefix}{name}"] = sub
                found.update(_subparsers(sub, f"{prefix}{name} "))
    return found


def test_cli_reference_is_generated_from_the_parser() -> None:
    from pytest_inferedgeforge.cli.docs import render

    assert (REPO / "docs/cli.md").read_text() == render(), \
        "docs/cli.md drifted; run: python -m pytest_inferedgeforge.cli.docs > docs/cli.md"


def test_readme_names_every_command() -> None:
    readme = (REPO / "README.md").read_text()
    for name in _subparsers(build_parser()):
        assert name.split()[0] in readme, name


def test_ci_runs_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci/run").read_text()
    assert ".venv/bin/pytest tests/" in readme
    assert ".venv/bin/pytest tests/" in ci


def test_readme_installs_from_the_checkout_as_the_packaging_test_does() -> None:
    readme = (REPO / "README.md").read_text()
    packaging = (REPO / "tests/test_packaging.py").read_text()
    assert "pip install pytest-inferedgeforge" not in readme  # no package index serves it
    assert "pip wheel --no-deps -w dist ." in readme and '"wheel", "-q", "--no-deps"' in packaging
