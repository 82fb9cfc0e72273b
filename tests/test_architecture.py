"""The house rules docs/architecture.md states, checked: layers run one way (import-linter's contracts in
pyproject.toml), modules stay small, and the code cites only documents inside the repository."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "pytest_inferedgeforge"
SOURCES = sorted([*PACKAGE.rglob("*.py"), *(REPO / "inferedgeforge").rglob("*.py")])
MAX_LINES = 400
CITATION = re.compile(r"docs/([\w./-]+\.md)(#[\w-]+)?")
OUTSIDE = re.compile(r"contract §|DEVELOPERS\.md|shared/reference|forge-v0-contract", re.IGNORECASE)


def test_import_linter_contracts_are_kept() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is a dev dependency: pip install -e '.[dev]'"
    result = subprocess.run([lint_imports], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:]
    assert result.stdout.count("KEPT") >= 3 and "BROKEN" not in result.stdout


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_module_is_at_most_400_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_code_cites_no_document_outside_the_repository() -> None:
    offenders = [f"{path.relative_to(REPO)}:{number}" for path in SOURCES
                 for number, line in enumerate(path.read_text().splitlines(), 1) if OUTSIDE.search(line)]
    assert offenders == []


def _anchors(markdown: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+\s+(.+)$", markdown.read_text(), flags=re.MULTILINE)
    return {"#" + re.sub(r"[^\w\- ]", "", heading).strip().lower().replace(" ", "-") for heading in headings}


def test_every_cited_document_and_anchor_exists() -> None:
    missing = []
    for path in SOURCES:
        for match in CITATION.finditer(path.read_text()):
            document = REPO / "docs" / match.group(1)
            if not document.is_file():
                missing.append(f"{path.relative_to(REPO)}: docs/{match.group(1)}")
            elif match.group(2) and match.group(2) not in _anchors(document):
                missing.append(f"{path.relative_to(REPO)}: docs/{match.group(1)}{match.group(2)}")
    assert missing == []


BACKEND_API = "pytest_inferedgeforge.backends.api"
SHIPPED_BACKENDS = {  # module file -> the modules of its own backend it may import besides the API
    "backends/onnxruntime.py": ("backends.ort_",),
    "backends/ort_prequantized.py": ("backends.ort_",),
    "backends/ort_tensors.py": ("backends.ort_",),
    "backends/tensorrt.py": (),
    **{f"backends/rknn/{path.name}": ("backends.rknn.",) for path in (PACKAGE / "backends" / "rknn").glob("*.py")},
}


def _forge_imports(path: Path) -> list[str]:
    from import_graph import imported_names, module_name

    return [name for name in imported_names(path, module_name(path, path.parent))
            if name.split(".")[0] == "pytest_inferedgeforge"]


def test_standin_backend_imports_only_the_public_backend_api() -> None:
    """A third-party backend needs nothing of Forge but backends/api.py; the stand-in proves it."""
    imports = _forge_imports(REPO / "tests" / "standin_backend" / "standin_backend.py")
    assert imports, "the stand-in imports the API"
    assert [name for name in imports if name.rpartition(".")[0] != BACKEND_API] == []


@pytest.mark.parametrize("relative", sorted(SHIPPED_BACKENDS))
def test_shipped_backend_imports_only_the_api_and_its_own_modules(relative: str) -> None:
    own = tuple(f"pytest_inferedgeforge.{prefix}" for prefix in SHIPPED_BACKENDS[relative])
    imports = _forge_imports(PACKAGE / relative)
    assert [name for name in imports if name.rpartition(".")[0] != BACKEND_API and not name.startswith(own)] == []


def test_package_import_graph_has_no_circle() -> None:
    """Function-level imports count: they hide a circle until the function runs."""
    from import_graph import cycles, import_graph

    graph = import_graph(REPO, "pytest_inferedgeforge")
    assert graph["pytest_inferedgeforge.plugin.baseline"], "the graph was read"
    assert cycles(graph) == []


def test_a_function_level_import_circle_is_found(tmp_path: Path) -> None:
    from import_graph import cycles, import_graph

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("from pkg.b import thing\n")
    (tmp_path / "pkg" / "b.py").write_text("def thing():\n    from pkg import a\n    return a\n")
    assert cycles(import_graph(tmp_path, "pkg")) == [["pkg.a", "pkg.b"]]


def test_the_check_only_gate_does_not_load_the_build_engine() -> None:
    code = ("import sys, pytest_inferedgeforge.plugin.gate; "
            "print(sorted(m for m in sys.modules if m.startswith(('pytest_inferedgeforge.engine', "
            "'pytest_inferedgeforge.plugin.items', 'pytest_inferedgeforge.backends'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
