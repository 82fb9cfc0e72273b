"""Relocatable build directories: records hold relative paths, so moving the builds root or the whole project
keeps verify clean and the cache warm; a downstream path that leaves the build directory is an ERROR."""

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_inferedgeforge.engine.catalog import find_build_dirs
from pytest_inferedgeforge.verify.build_dir import verify_build_dir
from pytest_inferedgeforge.verify.manifest import validate_manifest_file

REPO = Path(__file__).resolve().parent.parent
SPEC = """\
name: tiny
model: ../models/tiny_cnn.onnx
presets: [onnxruntime/cpu_fp32, onnxruntime/cpu_int8]
benchmark: {warmup: 0, runs: 2}
inputs: {samples: 2}
"""


def _pytest(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", *args],
                          cwd=project, capture_output=True, text=True, check=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project built once: models/, experiments/, pytest.ini and builds/ with two ready builds."""
    root = tmp_path / "project"
    (root / "models").mkdir(parents=True)
    shutil.copyfile(REPO / "models/tiny_cnn.onnx", root / "models/tiny_cnn.onnx")
    (root / "experiments").mkdir()
    (root / "experiments/tiny.forge.yaml").write_text(SPEC)
    (root / "pytest.ini").write_text("[pytest]\nforge_output = builds\n")
    result = _pytest(root, "experiments")
    assert result.returncode == 0, result.stdout[-2000:]
    return root


def _strings(record: Any, path: str = "") -> list[tuple[str, str]]:
    """Every string in a parsed record with its dotted path."""
    if isinstance(record, dict):
        return [found for key, value in record.items() for found in _strings(value, f"{path}.{key}")]
    if isinstance(record, list):
        return [found for index, value in enumerate(record) for found in _strings(value, f"{path}[{index}]")]
    return [(path, record)] if isinstance(record, str) else []


def test_records_hold_no_absolute_path_except_the_informational_source_path_abs(project: Path) -> None:
    for record_file in (project / "builds").rglob("*.json"):
        absolute = [(path, value) for path, value in _strings(json.loads(record_file.read_text()))
                    if str(project) in value and not path.endswith("path_abs")]
        assert absolute == [], record_file


def test_moving_the_whole_project_keeps_verify_clean_and_every_build_a_cache_hit(project: Path, tmp_path: Path) -> None:
    moved = shutil.move(project, tmp_path / "elsewhere")
    assert len(find_build_dirs(Path(moved) / "builds")) == 2
    for build_dir in find_build_dirs(Path(moved) / "builds"):
        report = verify_build_dir(build_dir)
        assert (report.errors, report.warnings) == ([], []), build_dir
    again = _pytest(Path(moved), "experiments")
    assert again.returncode == 0, again.stdout[-2000:]
    assert sum(" hit " in line for line in again.stdout.splitlines()) == 2, again.stdout


def test_moving_only_the_builds_root_keeps_verify_clean(project: Path, tmp_path: Path) -> None:
    restored = Path(shutil.copytree(project / "builds", tmp_path / "ci-cache" / "builds"))
    assert len(find_build_dirs(restored)) == 2
    for build_dir in find_build_dirs(restored):
        report = verify_build_dir(build_dir)
        assert (report.errors, report.warnings) == ([], []), build_dir


def test_a_moved_build_hands_off_its_current_artifact_path(project: Path, tmp_path: Path) -> None:
    moved = Path(shutil.move(project, tmp_path / "elsewhere"))
    build_dir = moved / "builds/tiny_cnn__cpu__onnxruntime__cpu_fp32"
    out = subprocess.run([sys.executable, "-m", "pytest_inferedgeforge", "show-lab-profile-input", str(build_dir)],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["engine_path"] == str(build_dir / "model.onnx")


@pytest.mark.parametrize("field", ["runtime.artifact_path", "runtime.model_path", "artifact.model_path"])
def test_a_handoff_path_escaping_the_build_directory_is_an_error_naming_the_field(project: Path, field: str) -> None:
    build_dir = project / "builds/tiny_cnn__cpu__onnxruntime__cpu_fp32"
    manifest = json.loads((build_dir / "manifest.json").read_text())
    section, key = field.split(".")
    manifest[section][key] = "../../../../etc/passwd"
    (build_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    for report in (validate_manifest_file(build_dir / "manifest.json"), verify_build_dir(build_dir)):
        assert not report.valid
        assert any(issue.path == field for issue in report.errors), [issue.line() for issue in report.errors]
