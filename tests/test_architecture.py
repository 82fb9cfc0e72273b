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
