"""``diagnose`` of RKNN int8 builds: rknn-toolkit2's own accuracy_analysis, mapped back to the source's nodes.

The real tests need ``inferedgeforge toolchain install rknn`` and skip without it, like tests/test_rknn.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from pytest_inferedgeforge.backends.rknn.analysis import parse_error_analysis
from pytest_inferedgeforge.engine.build import build
from pytest_inferedgeforge.engine.plan import plan_build
from pytest_inferedgeforge.engine.presets import load_preset
from pytest_inferedgeforge.engine.quantization.diagnoses import diagnose_build, summary_lines
from pytest_inferedgeforge.engine.quantization.layers import cosine_threshold, map_layer
from pytest_inferedgeforge.engine.quantization.pairing import SourceTensor

REPO = Path(__file__).resolve().parent.parent
YOLO = Path("/root/.cache/inferedgeforge/zoo/models/yolov8n_320.onnx")

# Rows of a real rknn-toolkit2 2.5.0 error_analysis.txt (tiny_cnn, rk3588 int8); "block0.bn" was fused into the Relu.
REPORT = """\
layer_name                              simulator_error
                                    entire              single
                                 cos      euc        cos      euc
-----------------------------------------------------------------------
[Input] input                  1.00000 | 0.00000   1.00000 | 0.00000
[exDataConvert] input_int8     1.00000 | 0.43860   1.00000 | 0.43860
[Conv] block0.bn
[Relu] block0.relu             0.99997 | 3.62195   0.99997 | 3.62195
[Conv] logits_mm               0.99990 | 0.60285   0.99993 | 0.51813
"""


def test_error_analysis_rows_keep_entire_and_single_figures_and_fused_layers() -> None:
    layers = parse_error_analysis(REPORT)
    assert [(layer.op_type, layer.layer) for layer in layers] == [
        ("Input", "input"), ("exDataConvert", "input_int8"), ("Conv", "block0.bn"), ("Relu", "block0.relu"),
        ("Conv", "logits_mm")]
    relu = layers[3]
    assert (relu.cosine, relu.euclidean, relu.local_cosine, relu.local_euclidean) == (0.99997, 3.62195, 0.99997,
                                                                                       3.62195)
    assert layers[2].cosine is None and layers[2].local_cosine is None


def test_toolkit_layer_names_map_back_through_its_suffixes_only() -> None:
    concat = SourceTensor("/model.22/Concat_6_output_0", "/model.22/Concat_6", "Concat", ())
    output = SourceTensor("output0", "/model.22/Concat_25", "Concat", ())
    by_tensor = {tensor.tensor: tensor for tensor in (concat, output)}
    by_node = {tensor.node: tensor for tensor in (concat, output)}
    assert map_layer("output0", by_tensor, by_node) == (output, False)
    assert map_layer("/model.22/Concat_25", by_tensor, by_node) == (output, False)
    assert map_layer("/model.22/Concat_6_output_0-rs", by_tensor, by_node) == (concat, True)
    assert map_layer("output0_int8", by_tensor, by_node) == (output, True)
    assert map_layer("/model.22/Concat_6_output_1", by_tensor, by_node) == (None, False)  # never a guessed index
    assert cosine_threshold(14.0) == 0.9807



def test_rknn_int8_diagnosis_is_the_toolkits_analysis_labelled_simulator(rknn_workspace: Path) -> None:
    preset = load_preset("rknn/rk3588_int8", rknn_workspace / "presets")
    record = build(plan_build(Path("models/tiny_cnn.onnx"), preset, rknn_workspace / "builds")).record
    diagnosis, path = diagnose_build(record.build_dir, count=2)
    assert diagnosis.evidence == "simulator" and diagnosis.backend == "rknn" and diagnosis.precision == "int8"
    assert diagnosis.cosine_threshold == 0.9807 and diagnosis.samples == 2
    relu = next(figure for figure in diagnosis.tensors if figure.toolkit_layer == "block0.relu")
    assert (relu.node, relu.op_type, relu.tensor) == ("block0.relu", "Relu", "block0.relu")
    assert relu.fused_nodes == ["block0.bn", "block0.conv"]  # the toolkit fused Conv and BatchNormalization into it
    assert relu.cosine is not None and 0.99 < relu.cosine <= 1.0 and relu.local_cosine is not None
    gemm = next(figure for figure in diagnosis.tensors if figure.toolkit_layer == "logits_mm")
    assert (gemm.node, gemm.op_type, gemm.toolkit_op_type) == ("fc", "Gemm", "Conv")
    assert diagnosis.first_divergent is None and summary_lines(diagnosis)[0].startswith("no tensor below cosine")
    assert any("simulator" in note for note in diagnosis.notes)
    schema = json.loads((REPO / "docs/schemas/diagnosis.schema.json").read_text())
    jsonschema.validate(json.loads(path.read_text()), schema)
    assert sorted(p.name for p in rknn_workspace.iterdir()) == ["builds", "models", "presets"]  # no toolkit dumps


@pytest.mark.zoo
def test_rknn_yolov8n_int8_diagnosis_points_at_the_head(rknn_workspace: Path) -> None:
    if not YOLO.is_file():
        pytest.skip(f"{YOLO} is not in the zoo cache (tests/zoo/fetch_zoo.py)")
    preset = load_preset("rknn/rk3588_int8", rknn_workspace / "presets")
    plan = plan_build(YOLO, preset, rknn_workspace / "builds", input_shapes={"images": [1, 3, 320, 320]})
    diagnosis, _ = diagnose_build(build(plan).record.build_dir, count=2)
    assert diagnosis.evidence == "simulator" and diagnosis.matched_tensors > 150
    first = diagnosis.first_divergent
    assert first is not None and first.node.startswith("/model.22/"), first  # the detection head
    output = [figure for figure in diagnosis.tensors if figure.tensor == "output0"]
    assert output and "range_mixing" in output[-1].causes  # pixel boxes and [0, 1] scores under one scale
