"""Shared fixtures: a scratch workspace with the shipped presets and models, and model factories."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import obstore  # noqa: F401  (see below)
import onnx
import pytest
import scipy.stats  # noqa: F401  (see below)
import securesystemslib.signer  # noqa: F401  (see below)
import yaml  # noqa: F401  (see below)
from onnx import TensorProto, helper, numpy_helper
from s3_server import S3Server, start_server

from pytest_inferedgeforge.cli.main import main

# pytester's in-process runs restore sys.modules afterwards; C extensions cannot be loaded twice in one process
# (scipy's and numpy.fft refuse; libyaml's keeps pointing at the first yaml module's classes, so a re-imported
# yaml's CSafeLoader fails; obstore's and cryptography's Rust extensions the same), so they are loaded here, before
# any snapshot is taken.

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory laid out like the repository (presets/, models/), and the current directory."""
    shutil.copytree(REPO / "presets", tmp_path / "presets")
    shutil.copytree(REPO / "models", tmp_path / "models")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FORGE_TOOLCHAINS_DIR", str(tmp_path / "no-toolchains"))
    return tmp_path


@pytest.fixture
def rknn_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository-like current directory for builds with the real rknn-toolkit2 (skipped where it is absent)."""
    from pytest_inferedgeforge.backends.rknn.toolchain import read_marker, rknn_env_dir

    if read_marker(rknn_env_dir()) is None:
        pytest.skip(f"rknn-toolkit2 not installed at {rknn_env_dir()}; run `inferedgeforge toolchain install rknn`")
    shutil.copytree(REPO / "presets", tmp_path / "presets")
    shutil.copytree(REPO / "models", tmp_path / "models")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def make_dynamic_model(path: Path) -> Path:
    """A model in the style of a third-party export: symbolic batch, height and width, and an opset-13
    graph of Conv, Relu, GlobalAveragePool, Flatten and MatMul that is unlike the shipped CNN."""
    rng = np.random.default_rng(42)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.2, (8, 3, 3, 3)).astype(np.float32), "conv.w"),
        numpy_helper.from_array(rng.normal(0, 0.1, 8).astype(np.float32), "conv.b"),
        numpy_helper.from_array(rng.normal(0, 0.3, (8, 10)).astype(np.float32), "fc.w"),
    ]
    nodes = [
        helper.make_node("Conv", ["pixel_values", "conv.w", "conv.b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("MatMul", ["f", "fc.w"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes, "exported",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="pytorch")
    model.ir_version = 7
    onnx.save(model, path)
    return path


TWO_PRESET_SPEC = """\
name: tiny
model: models/tiny_cnn.onnx
presets: [onnxruntime/cpu_fp32, onnxruntime/cpu_int8_dynamic]
benchmark: {warmup: 1, runs: 3}
inputs: {samples: 2}
"""


@pytest.fixture
def forge_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester project with the shipped presets and models, and no installed toolchain but ONNX Runtime."""
    shutil.copytree(REPO / "presets", pytester.path / "presets")
    shutil.copytree(REPO / "models", pytester.path / "models")
    monkeypatch.setenv("FORGE_TOOLCHAINS_DIR", str(pytester.path / "no-toolchains"))
    return pytester


@pytest.fixture
def two_preset_project(forge_project: pytest.Pytester) -> pytest.Pytester:
    """``forge_project`` with ``tiny.forge.yaml``: two quick ONNX Runtime presets of the shipped CNN."""
    forge_project.makefile(".forge.yaml", tiny=TWO_PRESET_SPEC)
    return forge_project


@pytest.fixture
def dynamic_model(tmp_path: Path) -> Path:
    return make_dynamic_model(tmp_path / "exported_dynamic.onnx")


Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run the CLI in-process: ``code, out, err = cli("build", "--model", ...)``."""

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def flip_byte() -> Callable[[Path], None]:
    """Tamper with a file by inverting one byte."""

    def flip(path: Path, offset: int = 100) -> None:
        data = bytearray(path.read_bytes())
        data[offset] ^= 0xFF
        path.write_bytes(bytes(data))

    return flip


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One real S3 server (SeaweedFS) per test session (per xdist worker), stopped by PID at the end.

    Skips with the reason where the binary cannot run; ``FORGE_S3_REQUIRED=1`` (CI) makes that a failure.
    """
    try:
        server = start_server(tmp_path_factory.mktemp("seaweedfs"))
    except (OSError, RuntimeError) as exc:
        if os.environ.get("FORGE_S3_REQUIRED"):
            pytest.fail(f"FORGE_S3_REQUIRED is set but the S3 server could not start: {exc}", pytrace=False)
        pytest.skip(f"no S3 server: {exc}")
    yield server
    server.stop()


@pytest.fixture
def s3_cache(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty ``s3://`` cache URL on the real server, with the client's AWS_* variables set."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server.url()
