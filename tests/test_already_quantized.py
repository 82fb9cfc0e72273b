"""Already-quantized sources: recognised at plan time, built as they are on onnxruntime, refused elsewhere."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest

Cli = Callable[..., tuple[int, str, str]]
"""The conftest's ``cli`` fixture: ``code, out, err = cli("build", ...)``."""
QDQ = ("QuantizeLinear", "DequantizeLinear")


class _Reader:
    """Four seeded images for onnxruntime.quantization's calibration."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self._samples = iter([{"input": rng.random((1, 3, 224, 224), dtype=np.float32)} for _ in range(4)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._samples, None)


@pytest.fixture
def qdq_model(workspace: Path) -> Path:
    """The shipped CNN quantized statically (QDQ) by onnxruntime.quantization, as a third party would ship it."""
    from onnxruntime.quantization import QuantFormat, quantize_static

    path = workspace / "models" / "tiny_qdq.onnx"
    quantize_static(str(workspace / "models" / "tiny_cnn.onnx"), str(path), _Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True)
    return path


def _ops(path: Path) -> Counter[str]:
    return Counter(node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node)


def test_inspection_counts_the_quantized_ops_of_a_source(qdq_model: Path, workspace: Path) -> None:
    from pytest_inferedgeforge.model.onnx_model import inspect_model

    source = _ops(qdq_model)
    assert inspect_model(qdq_model).quantized_ops == {op: source[op] for op in QDQ}
    assert inspect_model(workspace / "models" / "tiny_cnn.onnx").quantized_ops == {}


def test_int8_builds_an_already_quantized_model_as_it_is(qdq_model: Path, cli: Cli) -> None:
    code, _, err = cli("build", "--model", str(qdq_model), "--preset", "onnxruntime/cpu_int8", "--output", "builds")
    assert code == 0, err
    build_dir = Path("builds/tiny_qdq__cpu__onnxruntime__cpu_int8")
    audit = json.loads((build_dir / "manifest.json").read_text(encoding="utf-8"))["quantization"]
    source = _ops(qdq_model)
    assert audit["already_quantized"] is True
    assert audit["source_quantized_ops"] == {op: source[op] for op in QDQ}
    artifact = _ops(build_dir / "model.onnx")
    assert {op: artifact[op] for op in QDQ} == {op: source[op] for op in QDQ}  # not quantized a second time
    assert audit["quantized_ops"] == sum(source[op] for op in QDQ)


def test_an_already_quantized_int8_build_passes_parity(qdq_model: Path, cli: Cli) -> None:
    assert cli("build", "--model", str(qdq_model), "--preset", "onnxruntime/cpu_int8", "--output", "builds")[0] == 0
    build_dir = Path("builds/tiny_qdq__cpu__onnxruntime__cpu_int8")
    code, _, err = cli("run-benchmark", str(build_dir), "--runs", "5", "--warmup", "1")
    assert code == 0, err
    summary = json.loads((build_dir / "run_summary.json").read_text(encoding="utf-8"))
    assert summary["accuracy"]["passed"] is True
    assert summary["accuracy"]["min_cosine"] > 0.9999


def test_fp16_keeps_the_quantized_parts_and_converts_the_float_ones(qdq_model: Path, cli: Cli) -> None:
    code, _, err = cli("build", "--model", str(qdq_model), "--preset", "onnxruntime/cpu_fp16", "--output", "builds")
    assert code == 0, err
    build_dir = Path("builds/tiny_qdq__cpu__onnxruntime__cpu_fp16")
    artifact = onnx.load(str(build_dir / "model.onnx"))
    ops = Counter(node.op_type for node in artifact.graph.node)
    source = _ops(qdq_model)
    assert {op: ops[op] for op in QDQ} == {op: source[op] for op in QDQ}
    assert ops["Cast"] > 0  # the float parts between them run in float16
    audit = json.loads((build_dir / "manifest.json").read_text(encoding="utf-8"))["quantization"]
    assert audit["already_quantized"] is True


@pytest.mark.parametrize("preset", ["rknn/rk3588_int8", "tensorrt/jetson_fp16"])
def test_other_backends_refuse_an_already_quantized_model_in_one_line_before_their_toolchain(
        qdq_model: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, preset: str) -> None:
    from pytest_inferedgeforge.backends.rknn.backend import RKNNBackend
    from pytest_inferedgeforge.backends.tensorrt import TensorRTBackend

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the toolchain was used")

    for backend in (RKNNBackend, TensorRTBackend):
        monkeypatch.setattr(backend, "build", never)
        monkeypatch.setattr(backend, "available", never)
    code, _, err = cli("build", "--model", str(qdq_model), "--preset", preset, "--output", "builds")
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"Error: tiny_qdq.onnx is already quantized ({sum(_ops(qdq_model)[op] for op in QDQ)} "
                               f"QDQ ops); {preset}")
    assert "build it with an fp32 preset or the onnxruntime int8 preset" in lines[0]
    assert not Path("builds").exists() or not any(Path("builds").glob("tiny_qdq__*"))
