"""The package as a user installs it: a wheel (not editable) in a fresh venv, run from an empty directory."""

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE_PRESETS = "pytest_inferedgeforge/builtin_presets/"


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False, timeout=600)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check", "-w", str(out),
                  str(REPO)], REPO)
    assert built.returncode == 0, built.stderr[-2000:]
    return next(out.glob("*.whl"))


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel and its (core) dependencies from the package registry: no extras. The venv sits
    inside another project's git repository, as an installed package often does."""
    repo = tmp_path_factory.mktemp("someone-elses-repo")
    for argv in (["git", "init", "-q"], ["git", "-c", "user.name=x", "-c", "user.email=x@example.com", "commit", "-q",
                                        "--allow-empty", "-m", "theirs"]):
        assert _run(argv, repo).returncode == 0
    env = repo / "v"
    assert _run([sys.executable, "-m", "venv", str(env)], REPO).returncode == 0
    installed = _run([str(env / "bin/pip"), "install", "-q", "--disable-pip-version-check", str(wheel)], REPO)
    assert installed.returncode == 0, installed.stderr[-2000:]
    return env


@pytest.fixture(scope="module")
def project(venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty directory after ``inferedgeforge init`` and ``pytest``."""
    root = tmp_path_factory.mktemp("empty")
    init = _run([str(venv / "bin/inferedgeforge"), "init"], root)
    assert init.returncode == 0, init.stderr
    ran = _run([str(venv / "bin/pytest"), "-p", "no:cacheprovider"], root)
    assert ran.returncode == 0, ran.stdout[-3000:]
    (root / "pytest.out").write_text(ran.stdout)
    return root


def test_the_wheel_carries_exactly_the_repositorys_presets(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        packaged = {name[len(PACKAGE_PRESETS):]: hashlib.sha256(archive.read(name)).hexdigest()
                    for name in archive.namelist() if name.startswith(PACKAGE_PRESETS)}
    folder = {path.relative_to(REPO / "presets").as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
              for path in (REPO / "presets").rglob("*") if path.is_file()}
    assert packaged == folder and folder


def test_the_wheel_carries_the_example_model(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read("pytest_inferedgeforge/example/tiny_cnn.onnx")
    assert data == (REPO / "models/tiny_cnn.onnx").read_bytes()


def test_the_wheel_carries_the_html_pages_template(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read("pytest_inferedgeforge/handoff/templates/report.html.j2")
    assert data == (REPO / "pytest_inferedgeforge/handoff/templates/report.html.j2").read_bytes()


def test_init_then_pytest_builds_checks_and_benchmarks_every_onnxruntime_preset(project: Path) -> None:
    out = (project / "pytest.out").read_text()
    assert "4 passed" in out
    for preset in ("cpu_fp32", "cpu_fp16", "cpu_int8", "cpu_int8_dynamic"):
        summary = json.loads((project / f"builds/tiny_cnn__cpu__onnxruntime__{preset}/run_summary.json").read_text())
        assert summary["status"] == "completed" and summary["accuracy"]["passed"] is True


def test_list_presets_lists_the_built_in_presets_with_their_origin(venv: Path, project: Path) -> None:
    listed = _run([str(venv / "bin/inferedgeforge"), "list-presets"], project)
    rows = dict(line.split() for line in listed.stdout.splitlines())
    assert listed.returncode == 0 and rows["onnxruntime/cpu_int8"] == "built-in" and rows["rknn/rk3588_fp16"] == "built-in"


def test_an_installed_forge_records_its_distribution_and_no_foreign_commit(project: Path) -> None:
    tool = json.loads((project / "builds/tiny_cnn__cpu__onnxruntime__cpu_fp32/manifest.json").read_text())["tool"]
    assert tool.get("forge_git_commit") is None
    assert tool["forge_install"]["distribution"] == "pytest-inferedgeforge" and tool["forge_install"]["version"]
    assert tool["presets_root"] == "built-in"


def test_without_the_plots_extra_compare_warns_and_still_prints_the_table(venv: Path, project: Path) -> None:
    compared = _run([str(venv / "bin/inferedgeforge"), "compare", "--model", "models/tiny_cnn.onnx"], project)
    assert compared.returncode == 0, compared.stderr
    assert "plots skipped: matplotlib is not installed" in compared.stderr and "[plots]" in compared.stderr
    assert "onnxruntime/cpu_int8" in compared.stdout


def test_a_forge_checkout_records_its_own_commit() -> None:
    from pytest_inferedgeforge.model.environment import PACKAGE_DIR, forge_git_commit

    if PACKAGE_DIR.parent != REPO or not (REPO / ".git").exists():
        pytest.skip("Forge is not running from this checkout")
    head = _run(["git", "rev-parse", "HEAD"], REPO).stdout.strip()
    assert forge_git_commit() == head
