"""A third-party backend is a package: the stand-in in tests/standin_backend registers itself through the
``inferedgeforge.backends`` entry-point group and is listed, selectable by marker and buildable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
STANDIN = Path(__file__).resolve().parent / "standin_backend"
PRESET = """\
name: standin/cpu
backend: standin
target: cpu
artifact_format: standin
precision: fp32
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    shutil.copytree(REPO / "presets", pytester.path / "presets")
    shutil.copytree(REPO / "models", pytester.path / "models")
    (pytester.path / "presets" / "standin").mkdir()
    (pytester.path / "presets" / "standin" / "cpu.yaml").write_text(PRESET)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(STANDIN), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("FORGE_TOOLCHAINS_DIR", str(pytester.path / "no-toolchains"))
    pytester.makefile(".forge.yaml", tiny="name: tiny\nmodel: models/tiny_cnn.onnx\n"
                      "presets: [onnxruntime/cpu_fp32, standin/cpu]\nbenchmark: {warmup: 1, runs: 2}\n")
    return pytester


def _cli(project: pytest.Pytester, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_inferedgeforge", *argv], cwd=project.path,
                          capture_output=True, text=True, check=False)


def test_the_stand_in_backend_is_listed_with_its_toolchain(project: pytest.Pytester) -> None:
    listed = _cli(project, "toolchain", "list", "--json")
    rows = {row["backend"]: row for row in json.loads(listed.stdout)}
    assert rows["standin"]["available"] and rows["standin"]["location"] == "tests/standin_backend"


def test_its_preset_validates_against_its_declared_traits(project: pytest.Pytester) -> None:
    (project.path / "presets" / "standin" / "half.yaml").write_text(PRESET.replace("cpu", "half").replace(
        "fp32", "fp16").replace("target: half", "target: cpu"))
    listed = _cli(project, "list-presets", "--json")
    entries = {entry["id"]: entry for entry in json.loads(listed.stdout)}
    assert entries["standin/cpu"]["valid"]
    assert "precision 'fp16' is not supported by backend 'standin' (supported: fp32)" in entries["standin/half"]["error"]


def test_the_cli_builds_and_verifies_with_it(project: pytest.Pytester) -> None:
    built = _cli(project, "build", "--model", "models/tiny_cnn.onnx", "--preset", "standin/cpu", "--output", "builds")
    assert built.returncode == 0, built.stderr
    build_dir = project.path / "builds" / "tiny_cnn__cpu__standin__cpu"
    assert (build_dir / "model.standin").read_bytes() == (project.path / "models" / "tiny_cnn.onnx").read_bytes()
    verified = _cli(project, "verify", str(build_dir))
    assert verified.returncode == 0, verified.stdout


def test_its_marker_selects_exactly_its_items(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-m", "standin", "-v", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*tiny*standin/cpu*PASSED*"])
    result.assert_outcomes(passed=1, deselected=1)


def test_its_marker_help_is_registered(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.standin: stand-in backend items (a test package's copy-the-model backend)"])
