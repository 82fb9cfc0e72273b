"""The live phase line: shown on a terminal, taken back without touching pytest's own line, silent elsewhere."""

from __future__ import annotations

import io
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _pytest._io import TerminalWriter

from pytest_inferedgeforge.plugin.phase import PhaseLine

REPO = Path(__file__).resolve().parent.parent
SPEC = """\
model: models/tiny_cnn.onnx
presets: [onnxruntime/cpu_fp32]
benchmark: {warmup: 1, runs: 3}
inputs: {samples: 2}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "presets", tmp_path / "presets")
    shutil.copytree(REPO / "models", tmp_path / "models")
    (tmp_path / "tiny.forge.yaml").write_text(SPEC, encoding="utf-8")
    return tmp_path


def _on_a_terminal(project: Path, *args: str) -> str:
    """pytest over the project with a pseudo-terminal as its stdout and stderr; all it wrote, raw."""
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "FORGE_TOOLCHAINS_DIR": str(project / "no-toolchains")}
    process = subprocess.Popen([sys.executable, "-m", "pytest", "tiny.forge.yaml", "-p", "no:cacheprovider",
                                "-p", "no:randomly", "--forge-output", "builds", *args],
                               cwd=project, stdout=follower, stderr=follower, stdin=subprocess.DEVNULL, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the follower side closed: the process is done
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=120) == 0
    return b"".join(chunks).decode("utf-8", "replace")


def test_a_terminal_sees_the_item_build_then_measure(project: Path) -> None:
    output = _on_a_terminal(project)
    assert " [build: " in output and " [benchmark and parity]" in output
    assert "\b" in output and "1 passed" in output


def test_quiet_mode_shows_no_phase(project: Path) -> None:
    output = _on_a_terminal(project, "-q")
    assert "[build: " not in output and "\b" not in output


def test_a_stream_that_is_no_terminal_gets_no_phase(pytester: pytest.Pytester) -> None:
    shutil.copytree(REPO / "presets", pytester.path / "presets")
    shutil.copytree(REPO / "models", pytester.path / "models")
    pytester.makefile(".forge.yaml", tiny=SPEC)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "[build: " not in result.stdout.str() and "\b" not in result.stdout.str()


def test_a_phase_is_taken_back_and_leaves_pytests_line_count_alone() -> None:
    stream = io.StringIO()
    writer = TerminalWriter(stream)
    writer.fullwidth = 80
    writer.write("tiny.forge.yaml ")
    before = writer.width_of_current_line
    phase = PhaseLine(writer)
    phase("build: quantizing")
    phase.clear()
    shown = " [build: quantizing]"
    assert stream.getvalue() == "tiny.forge.yaml " + shown + "\b" * len(shown) + " " * len(shown) + "\b" * len(shown)
    assert writer.width_of_current_line == before


def test_a_phase_too_long_for_the_line_is_shortened_not_wrapped() -> None:
    stream = io.StringIO()
    writer = TerminalWriter(stream)
    writer.fullwidth = 40
    writer.write("x" * 20)
    PhaseLine(writer)("int8 search: trial 12 [float_nodes] keep /model.22/Sigmoid in float")
    written = stream.getvalue()[20:]
    assert written.endswith("...]") and 20 + len(written) < 40
