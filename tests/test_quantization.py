"""Precision conversions that are real and say what they did, on graphs shaped like real exports."""

from pathlib import Path

import onnx
import pytest
from graphs import constant_weights_cnn, huge_variance_bn, if_subgraph_cnn

from pytest_inferedgeforge.engine.build import build
from pytest_inferedgeforge.engine.plan import plan_build
from pytest_inferedgeforge.engine.presets import load_preset
from pytest_inferedgeforge.model.errors import BuildFailed
from pytest_inferedgeforge.model.inputs import ValueRule
from pytest_inferedgeforge.model.presets import Preset
from pytest_inferedgeforge.model.quant_audit import audit_quantization

SR_16K = {"sr": ValueRule(value=16000)}


def _preset(workspace: Path, preset_id: str, **options: object) -> Preset:
    preset = load_preset(preset_id, workspace / "presets")
    return preset.model_copy(update={"build_options": {**preset.build_options, **options}})


def test_static_int8_of_an_opset_11_model_upgrades_the_opset_first(workspace: Path) -> None:
    model = constant_weights_cnn(workspace / "paddle_like.onnx", opset=11)
    record = build(plan_build(model, _preset(workspace, "onnxruntime/cpu_int8"), workspace / "builds")).record
    calls = [call.api for call in record.manifest.toolchain.calls]
    assert calls[0] == "onnx.version_converter.convert_version"
    assert record.manifest.toolchain.calls[0].args == {"from_opset": 11, "target_version": 13}
    assert record.manifest.quantization is not None and record.manifest.quantization.quantized_ops > 0


def test_dynamic_int8_of_constant_weights_runs_the_same_preprocessing(workspace: Path) -> None:
    model = constant_weights_cnn(workspace / "paddle_like.onnx", opset=13)
    record = build(plan_build(model, _preset(workspace, "onnxruntime/cpu_int8_dynamic"), workspace / "builds")).record
    assert [call.api for call in record.manifest.toolchain.calls] == [
        "onnxruntime.quantization.shape_inference.quant_pre_process", "onnxruntime.quantization.quantize_dynamic"]
    audit = record.manifest.quantization
    assert audit is not None and audit.by_op_type.get("ConvInteger") == 2 and audit.float_compute_nodes_total == 0


def test_static_int8_that_quantizes_nothing_is_an_error_naming_the_float_nodes(workspace: Path) -> None:
    model = if_subgraph_cnn(workspace / "if_net.onnx")
    plan = plan_build(model, _preset(workspace, "onnxruntime/cpu_int8"), workspace / "builds", input_values=SR_16K)
    with pytest.raises(BuildFailed, match=r"produced no quantized op \(2 compute node\(s\) left in float.*Conv"):
        build(plan)
    assert not (workspace / "builds" / plan.build_dir.name).exists()


def test_dynamic_int8_quantizes_inside_if_subgraphs_and_counts_them(workspace: Path) -> None:
    model = if_subgraph_cnn(workspace / "if_net.onnx")
    plan = plan_build(model, _preset(workspace, "onnxruntime/cpu_int8_dynamic"), workspace / "builds",
                      input_values=SR_16K)
    audit = build(plan).record.manifest.quantization
    assert audit is not None and audit.by_op_type["ConvInteger"] == 2 and audit.quantized_ops_in_subgraphs == 2


def test_blocking_every_quantizable_op_fails_the_int8_build(workspace: Path) -> None:
    model = constant_weights_cnn(workspace / "paddle_like.onnx", opset=13)
    preset = _preset(workspace, "onnxruntime/cpu_int8_dynamic", op_block_list=["Conv"])
    with pytest.raises(BuildFailed, match="produced no quantized op"):
        build(plan_build(model, preset, workspace / "builds"))


def test_nodes_to_exclude_leaves_one_node_in_float(workspace: Path) -> None:
    model = constant_weights_cnn(workspace / "paddle_like.onnx", opset=13)
    conv_names = [node.name for node in onnx.load(str(model)).graph.node if node.op_type == "Conv"]
    assert conv_names == ["", ""]  # unnamed, as exporters often leave them; name one to exclude it
    named = onnx.load(str(model))
    named.graph.node[-1].name = "head_conv"
    onnx.save(named, str(model))
    preset = _preset(workspace, "onnxruntime/cpu_int8_dynamic", nodes_to_exclude=["head_conv"])
    audit = build(plan_build(model, preset, workspace / "builds")).record.manifest.quantization
    assert audit is not None and audit.float_compute_nodes == ["head_conv (Conv)"]


def test_fp16_names_clamped_weights_in_log_and_record(workspace: Path) -> None:
    model = huge_variance_bn(workspace / "bn.onnx")
    record = build(plan_build(model, _preset(workspace, "onnxruntime/cpu_fp16"), workspace / "builds")).record
    assert record.manifest.warnings and "tensor 'bn_var' has |value| up to 1e+08" in record.manifest.warnings[0]
    assert record.metadata.warnings == record.manifest.warnings
    assert "WARNING: fp16: tensor 'bn_var'" in (record.build_dir / "build.log").read_text()


def test_fp16_block_list_keeps_the_op_in_fp32_and_nothing_is_clamped(workspace: Path) -> None:
    model = huge_variance_bn(workspace / "bn.onnx")
    preset = _preset(workspace, "onnxruntime/cpu_fp16", op_block_list=["BatchNormalization"])
    record = build(plan_build(model, preset, workspace / "builds")).record
    assert record.manifest.warnings is None
    artifact = onnx.load(str(record.artifact_path))
    bn_var = next(t for t in artifact.graph.initializer if t.name == "bn_var")
    assert bn_var.data_type == onnx.TensorProto.FLOAT


def test_audit_counts_qdq_compute_nodes_as_quantized() -> None:
    from onnx import TensorProto, helper

    nodes = [helper.make_node("DequantizeLinear", ["wq", "s"], ["w"]), helper.make_node("Conv", ["x", "w"], ["y"]),
             helper.make_node("MatMul", ["y", "m"], ["z"], name="float_matmul")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)])
    audit = audit_quantization(helper.make_model(graph))
    assert audit["quantized_ops"] == 1 and audit["float_compute_nodes"] == ["float_matmul (MatMul)"]
