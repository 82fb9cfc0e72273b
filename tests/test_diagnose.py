"""``inferedgeforge diagnose`` end to end on real ONNX Runtime builds: it names the layer that breaks, and why."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pytest_inferedgeforge.engine.quantization.diagnose import worst_nodes
from pytest_inferedgeforge.model.records.diagnosis import Diagnosis

REPO = Path(__file__).resolve().parents[1]
YOLO = Path("/root/.cache/inferedgeforge/zoo/models/yolov8n_320.onnx")


def _save(nodes: list, inits: list, path: Path, out_channels: int) -> Path:
    graph = helper.make_graph(nodes, path.stem, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, out_channels, 16, 16])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def two_conv_cnn(path: Path, *, loud_channel: int | None) -> Path:
    """Conv -> Relu -> Conv; with ``loud_channel``, that output channel of the first conv is 1000x the others (and
    the second conv reads it 1000x weaker, so every channel matters to the output equally)."""
    rng = np.random.default_rng(3)
    w1, w2 = rng.normal(0, 0.3, (8, 3, 3, 3)), rng.normal(0, 0.3, (4, 8, 3, 3))
    if loud_channel is not None:
        w1[loud_channel] *= 1000.0
        w2[:, loud_channel] /= 1000.0
    inits = [numpy_helper.from_array(w.astype(np.float32), n) for w, n in
             ((w1, "w1"), (np.zeros(8), "b1"), (w2, "w2"), (np.zeros(4), "b2"))]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["y"], name="conv2", pads=[1, 1, 1, 1])]
    return _save(nodes, inits, path, 4)


def overflowing_cnn(path: Path) -> Path:
    """Values up to 90000 in the middle (beyond float16's 65504), scaled back down at the end."""
    inits = [numpy_helper.from_array(np.array(300.0, np.float32), "k"),
             numpy_helper.from_array(np.array(1e-4, np.float32), "back")]
    nodes = [helper.make_node("Mul", ["x", "k"], ["m1"], name="mul1"),
             helper.make_node("Mul", ["m1", "k"], ["m2"], name="mul2"),
             helper.make_node("Mul", ["m2", "back"], ["y"], name="mul3")]
    return _save(nodes, inits, path, 3)


def _diagnose(cli, model: Path, preset: str, *extra: str, build: tuple[str, ...] = ()) -> Diagnosis:
    code, out, err = cli("build", "--model", str(model), "--output", "builds", "--preset", preset, *build)
    assert code == 0, err
    build_dir = next(Path("builds").glob(f"{model.stem}__cpu__onnxruntime__{preset.split('/')[1]}*"))
    code, out, err = cli("diagnose", str(build_dir), "--json", *extra)
    assert code == 0, out + err
    return Diagnosis.model_validate_json(out)


def test_diagnose_names_the_conv_whose_channels_share_one_scale(workspace: Path, cli) -> None:
    diagnosis = _diagnose(cli, two_conv_cnn(workspace / "mixed.onnx", loud_channel=2), "onnxruntime/cpu_int8")
    first = diagnosis.first_divergent
    assert first is not None and first.tensor == "r1" and "conv1" in first.fused_nodes  # conv1 absorbs relu1
    assert "range_mixing" in first.causes and first.sqnr_db is not None and first.sqnr_db < 14.0
    assert worst_nodes(diagnosis)[:2] == ["relu1", "conv1"]


def test_a_model_that_quantizes_well_has_no_tensor_below_the_threshold(workspace: Path, cli) -> None:
    diagnosis = _diagnose(cli, two_conv_cnn(workspace / "fine.onnx", loud_channel=None), "onnxruntime/cpu_int8")
    assert diagnosis.first_divergent is None and diagnosis.quantized_tensors >= 2
    assert all(figure.sqnr_db is not None and figure.sqnr_db >= 14.0 for figure in diagnosis.tensors)
    assert all("range_mixing" not in figure.causes for figure in diagnosis.tensors)


def test_the_json_and_the_recorded_file_validate_against_the_schema(workspace: Path, cli) -> None:
    diagnosis = _diagnose(cli, two_conv_cnn(workspace / "fine.onnx", loud_channel=None), "onnxruntime/cpu_int8",
                          "--samples", "2")
    schema = json.loads((REPO / "docs/schemas/diagnosis.schema.json").read_text())
    recorded = workspace / "builds/fine__cpu__onnxruntime__cpu_int8/diagnoses" / str(diagnosis.diagnosis_id) \
        / "diagnosis.json"
    for document in (diagnosis.model_dump(mode="json"), json.loads(recorded.read_text())):
        jsonschema.Draft202012Validator(schema).validate(document)
    assert diagnosis.samples == 2 and diagnosis.created_at.endswith("Z") and len(diagnosis.artifact_sha256) == 64


def test_fp16_names_the_tensor_that_overflows(workspace: Path, cli) -> None:
    diagnosis = _diagnose(cli, overflowing_cnn(workspace / "loud.onnx"), "onnxruntime/cpu_fp16")
    causes = {figure.tensor: figure.causes for figure in diagnosis.tensors}
    assert diagnosis.precision == "fp16" and "overflow" in causes["m2"] and "overflow" not in causes["m1"]


@pytest.mark.parametrize("make_build", [False, True])
def test_a_bad_build_dir_is_one_error_line(workspace: Path, cli, make_build: bool) -> None:
    target = "missing"
    if make_build:  # a real build of a precision diagnose does not explain
        cli("build", "--model", "models/tiny_cnn.onnx", "--output", "builds", "--preset", "onnxruntime/cpu_fp32")
        target = "builds/tiny_cnn__cpu__onnxruntime__cpu_fp32"
    code, out, err = cli("diagnose", target)
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1 and err.startswith("Error: ")


def test_a_symlinked_diagnoses_dir_is_refused(workspace: Path, cli) -> None:
    two_conv_cnn(workspace / "fine.onnx", loud_channel=None)
    cli("build", "--model", "fine.onnx", "--output", "builds", "--preset", "onnxruntime/cpu_int8")
    elsewhere = workspace / "elsewhere"
    elsewhere.mkdir()
    (workspace / "builds/fine__cpu__onnxruntime__cpu_int8/diagnoses").symlink_to(elsewhere)
    code, _, err = cli("diagnose", "builds/fine__cpu__onnxruntime__cpu_int8")
    assert code == 1 and "symbolic link" in err and not any(elsewhere.iterdir())


@pytest.mark.zoo
@pytest.mark.skipif(not YOLO.is_file(), reason="the zoo's yolov8n_320.onnx is not cached")
def test_yolov8n_int8_names_the_heads_concat_with_range_mixing(workspace: Path, cli) -> None:
    diagnosis = _diagnose(cli, YOLO, "onnxruntime/cpu_int8", "--samples", "4",
                          build=("--input-shape", "images:1x3x320x320"))
    head = [f for f in diagnosis.tensors if f.op_type == "Concat"][-1]  # boxes in pixels beside [0, 1] scores
    assert head.tensor == "output0" and "range_mixing" in head.causes and head.node in worst_nodes(diagnosis)[:3]
