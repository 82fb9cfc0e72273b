"""The layering DEVELOPERS.md asks for: core never imports pytest; backends never import the plugin or CLI."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_inferedgeforge"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize(("layer", "forbidden"), [
    ("core", ("pytest", "_pytest", "pytest_inferedgeforge.plugin", "pytest_inferedgeforge.cli.main")),
    ("backends", ("pytest", "_pytest", "pytest_inferedgeforge.plugin", "pytest_inferedgeforge.cli.main")),
])
def test_layer_does_not_import(layer: str, forbidden: tuple[str, ...]) -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in sorted((PACKAGE / layer).glob("*.py"))
        for name in _imports(path)
        if any(name == f or name.startswith(f"{f}.") for f in forbidden)
    ]
    assert offenders == []
