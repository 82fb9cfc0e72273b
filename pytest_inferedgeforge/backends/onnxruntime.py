"""ONNX Runtime: the embedded default backend, real on any CPU.

fp32 saves the graph after ORT's own optimizer; fp16 converts initializers and
activations with ORT's float16 converter; int8 uses onnxruntime.quantization,
statically (calibrated, QDQ) or dynamically.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from pytest_inferedgeforge.backends.api import (
    PRECISIONS,
    Availability,
    BuildFailed,
    BuildOutput,
    BuildRequest,
    ForgeError,
    Precision,
    ToolCall,
    first_line,
    parse_options,
)
from pytest_inferedgeforge.backends.ort_prequantized import capped_level, fp16_block_list, prequantized_audit
from pytest_inferedgeforge.backends.ort_runner import OrtRunner, runtime_errors

if TYPE_CHECKING:  # numpy-backed names are imported where used: reading this backend's traits loads no numpy
    import numpy as np

    from pytest_inferedgeforge.backends.api import Sample

OPTIMIZATION_LEVELS = {"disabled": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
                       "all": "ORT_ENABLE_ALL"}


class OnnxRuntimeOptions(BaseModel):
    """``build_options`` understood by the onnxruntime backend; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")

    precision: Precision
    optimization_level: Literal["disabled", "basic", "extended", "all"] = "extended"
    keep_io_types: bool = True
    quantization: Literal["static", "dynamic"] = "static"
    quant_format: Literal["qdq", "qoperator"] = "qdq"
    per_channel: bool = True
    calibration_method: Literal["minmax", "entropy", "percentile"] = "minmax"
    reduce_range: bool = Field(False, description=(
        "static int8: 7-bit weights (quantize_static reduce_range), for CPUs without VNNI where 8-bit products "
        "can saturate."))
    activation_symmetric: bool = Field(False, description=(
        "static int8: activation ranges centred on zero (quantize_static extra_options ActivationSymmetric)."))
    intra_op_threads: PositiveInt | None = None
    op_block_list: list[str] = Field(default_factory=list, description=(
        "int8: op types left unquantized; fp16: op types kept in fp32 (added to ORT's own block list)."))
    nodes_to_exclude: list[str] = Field(default_factory=list, description=(
        "int8: node names left unquantized; fp16: node names kept in fp32."))
    op_types_to_quantize: list[str] = Field(default_factory=list, description=(
        "int8: quantize only these op types (empty: ONNX Runtime's default set), less op_block_list; e.g. "
        "[MatMul, Gemm, Conv] keeps the elementwise pieces of LayerNorm or Softmax in float. A dynamic build "
        "whose list has no Conv quantizes its weights to int8 (QInt8), else uint8 (ConvInteger's only kernels)."))
    weight_scale_adjust: bool = Field(True, description=(
        "static int8 QDQ, per-channel: let ONNX Runtime widen weight scales so int32 biases cannot overflow. "
        "false sets extra_options QDQDisableWeightAdjustForInt32Bias, which avoids its ValueError ('The truth "
        "value of an array ...') on a bias that is not 1-D; parity then shows whether a bias overflowed."))




def _op_types(options: OnnxRuntimeOptions, default: set[str]) -> list[str]:
    """The op types a quantizer is asked to quantize: the preset's list, else the quantizer's own default set;
    less the preset's block list."""
    return sorted(set(options.op_types_to_quantize or default) - set(options.op_block_list))


class _SampleReader:
    """An onnxruntime.quantization CalibrationDataReader over prepared samples."""

    def __init__(self, samples: list[Sample]) -> None:
        self._samples = iter(samples)

    def get_next(self) -> Sample | None:
        return next(self._samples, None)


@contextmanager
def _capture_logging(log: Any) -> Iterator[None]:
    """Copy onnxruntime.quantization's warnings (it logs through the root logger) into the build log.

    The handler is added beside whatever the root logger already has (pytest's log capture, an
    application's handlers) and removed afterwards; their handlers and the root level stay untouched.
    """

    class _Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            log(f"[{record.name}] {record.levelname}: {record.getMessage()}")

    handler = _Handler(level=logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


EXTERNAL_DATA_FILE = "model.onnx.data"
QDQ_MIN_OPSET = 13
"""Per-channel QDQ needs ``DequantizeLinear(axis)``, which arrived in opset 13."""


def _prepare_for_quantization(request: BuildRequest, scratch: Path, *, upgrade_opset: bool) -> tuple[Path, list[ToolCall]]:
    """The pre-processing both quantization paths need: an opset QDQ can express (static only),
    then ORT's quant_pre_process, which folds ``Constant`` weights into initializers and infers shapes."""
    import onnxruntime
    from onnxruntime.quantization.shape_inference import quant_pre_process

    onnxruntime.set_default_logger_severity(3)  # its sessions' warnings are not the user's business

    source, calls = request.source, []
    external = bool(request.model.external_data)
    if upgrade_opset and request.model.opset < QDQ_MIN_OPSET:
        import onnx
        from onnx import version_converter

        request.log(f"upgrading opset {request.model.opset} -> {QDQ_MIN_OPSET} (onnx.version_converter) for QDQ")
        upgraded = version_converter.convert_version(onnx.load(str(source)), QDQ_MIN_OPSET)
        source = scratch / "upgraded.onnx"
        onnx.save(upgraded, str(source), save_as_external_data=external, all_tensors_to_one_file=True,
                  location="upgraded.onnx.data")
        calls.append(ToolCall(api="onnx.version_converter.convert_version",
                              args={"from_opset": request.model.opset, "target_version": QDQ_MIN_OPSET}))
    prepared = scratch / "preprocessed.onnx"
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True, save_as_external_data=external,
                      all_tensors_to_one_file=True, external_data_location="preprocessed.onnx.data")
    calls.append(ToolCall(api="onnxruntime.quantization.shape_inference.quant_pre_process",
                          args={"skip_symbolic_shape": True}))
    return prepared, calls


def _with_external_data(artifact: Path) -> list[Path]:
    """The artifact plus its external-data file, when the toolchain wrote one."""
    data = artifact.with_name(EXTERNAL_DATA_FILE)
    return [artifact, data] if data.is_file() else [artifact]


class OnnxRuntimeBackend:
    """Models whose weights live in external data get artifacts with external data too
    (``model.onnx`` + ``model.onnx.data``), so an artifact never points back at the source."""

    name = "onnxruntime"
    artifact_filename = "model.onnx"
    artifact_format = "onnx"
    precisions = PRECISIONS
    options_model = OnnxRuntimeOptions
    marker_help = "ONNX Runtime items (embedded default backend)"
    prequantized_precisions = ("int8", "fp16")
    """Already-quantized sources: int8 builds them as they are, fp16 keeps their quantized parts."""

    def available(self) -> Availability:
        try:
            import onnx
            import onnxruntime

            from pytest_inferedgeforge.backends.api import python_component
        except ImportError as exc:  # pragma: no cover - a hard dependency
            return Availability(False, reason=f"onnxruntime is not importable: {exc}")
        return Availability(True, versions={"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__},
                            components={name: python_component(name) for name in ("onnxruntime", "onnx")})

    def build(self, request: BuildRequest) -> BuildOutput:
        options = parse_options(OnnxRuntimeOptions, request.preset)
        artifact = request.work_dir / self.artifact_filename
        try:
            with _capture_logging(request.log):
                if options.precision == "fp32":
                    return self._optimize(request, options, artifact)
                if options.precision == "fp16":
                    return self._to_fp16(request, options, artifact)
                if request.model.quantized_ops:  # already quantized: built as it is (backends/ort_prequantized.py)
                    output = self._optimize(request, options.model_copy(
                        update={"optimization_level": capped_level(options.optimization_level)}), artifact)
                    output.quantization = prequantized_audit(request, artifact)
                    return output
                return self._quantize(request, options, artifact)
        except ForgeError:  # already one clean line (a preset, a dataset, a failed toolchain step)
            raise
        except Exception as exc:  # onnx/onnxruntime.quantization raise many unrelated types for a model they refuse
            raise BuildFailed(f"onnxruntime {options.precision} build failed: {type(exc).__name__}: "
                              f"{first_line(exc)}") from exc

    def _quantize(self, request: BuildRequest, options: OnnxRuntimeOptions, artifact: Path) -> BuildOutput:
        """Quantize in a scratch directory inside the work directory, then prove the artifact is int8."""
        import onnx

        from pytest_inferedgeforge.backends.api import audit_quantization

        scratch = request.work_dir / ".quant-scratch"
        scratch.mkdir()
        try:
            if options.quantization == "dynamic":
                output = self._quantize_dynamic(request, options, artifact, scratch)
            else:
                output = self._quantize_static(request, options, artifact, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        audit = audit_quantization(onnx.load(str(artifact), load_external_data=False))
        request.log(f"quantization audit: {audit['quantized_ops']} quantized op(s) {audit['by_op_type']}, "
                    f"{audit['float_compute_nodes_total']} compute node(s) left in float")
        if not audit["quantized_ops"]:
            raise BuildFailed(
                f"{request.preset.name}: int8 {options.quantization} quantization produced no quantized op "
                f"({audit['float_compute_nodes_total']} compute node(s) left in float, e.g. "
                f"{', '.join(audit['float_compute_nodes'][:3]) or 'none'}); the artifact would be int8 in name "
                "only. The model's ops (or its If/Loop subgraphs) are not quantizable by this method: try "
                + ("onnxruntime/cpu_int8_dynamic" if options.quantization == "static" else "another precision"))
        output.quantization = audit
        return output

    def _optimize(self, request: BuildRequest, options: OnnxRuntimeOptions, artifact: Path) -> BuildOutput:
        import onnxruntime as ort

        session_options = ort.SessionOptions()
        level = OPTIMIZATION_LEVELS[options.optimization_level]
        session_options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        session_options.optimized_model_filepath = str(artifact)
        session_options.log_severity_level = 4
        if request.model.external_data:
            session_options.add_session_config_entry(
                "session.optimized_model_external_initializers_file_name", EXTERNAL_DATA_FILE)
            session_options.add_session_config_entry(
                "session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        request.log(f"optimizing graph at {level} into {artifact.name}")
        ort.InferenceSession(str(request.source), session_options, providers=["CPUExecutionProvider"])
        call = ToolCall(api="onnxruntime.InferenceSession", args={
            "path": str(request.source), "graph_optimization_level": level,
            "optimized_model_filepath": artifact.name, "providers": ["CPUExecutionProvider"],
            "external_initializers": EXTERNAL_DATA_FILE if request.model.external_data else None})
        return BuildOutput(artifacts=_with_external_data(artifact), calls=[call])

    def _to_fp16(self, request: BuildRequest, options: OnnxRuntimeOptions, artifact: Path) -> BuildOutput:
        import onnx
        from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

        from pytest_inferedgeforge.backends.api import constants_to_initializers, float16_overflows

        model = onnx.load(str(request.source))
        folded = constants_to_initializers(model)
        op_block_list = sorted(set(DEFAULT_OP_BLOCK_LIST) | set(options.op_block_list) | fp16_block_list(request))
        request.log(f"converting to float16 (keep_io_types={options.keep_io_types}; kept in fp32: op types "
                    f"{options.op_block_list or 'ORT defaults'}, nodes {options.nodes_to_exclude or 'none'})")
        overflows = float16_overflows(model)
        converted = convert_float_to_float16(model, keep_io_types=options.keep_io_types, op_block_list=op_block_list,
                                             node_block_list=options.nodes_to_exclude or None)
        halved = {t.name for t in converted.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16}
        overflows = [overflow for overflow in overflows if overflow["tensor"] in halved]
        warnings = [f"fp16: tensor '{o['tensor']}' has |value| up to {o['max_abs']:.6g}, beyond float16's 65504; "
                    f"{o['elements_clamped']} element(s) clamped to +-65504 (keep its consumer in fp32 with "
                    "build_options.op_block_list or nodes_to_exclude)" for o in overflows]
        for warning in warnings:
            request.log(f"WARNING: {warning}")
        external = bool(request.model.external_data)
        onnx.save(converted, str(artifact), save_as_external_data=external, all_tensors_to_one_file=True,
                  location=EXTERNAL_DATA_FILE, size_threshold=1024)
        calls = [ToolCall(api="forge.constants_to_initializers", args={"folded": folded})] if folded else []
        calls.append(ToolCall(api="onnxruntime.transformers.float16.convert_float_to_float16",
                        args={"keep_io_types": options.keep_io_types, "external_data": external,
                              "op_block_list": op_block_list, "node_block_list": options.nodes_to_exclude}))
        return BuildOutput(artifacts=_with_external_data(artifact), calls=calls, warnings=warnings,
                           details={"fp16_clamped": overflows} if overflows else {},
                           quantization=prequantized_audit(request, artifact) if request.model.quantized_ops else None)

    def _quantize_dynamic(self, request: BuildRequest, options: OnnxRuntimeOptions, artifact: Path,
                          scratch: Path) -> BuildOutput:
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.registry import IntegerOpsRegistry

        prepared, calls = _prepare_for_quantization(request, scratch, upgrade_opset=False)
        op_types = _op_types(options, set(IntegerOpsRegistry))
        # ConvInteger only has uint8 x uint8 kernels on CPU, so dynamic weights are uint8 wherever Conv is quantized.
        weight_type = QuantType.QUInt8 if "Conv" in op_types else QuantType.QInt8
        request.log(f"quantizing weights dynamically ({weight_type.name}), subgraphs included")
        external = bool(request.model.external_data)
        quantize_dynamic(str(prepared), str(artifact), weight_type=weight_type, use_external_data_format=external,
                         op_types_to_quantize=op_types, nodes_to_exclude=options.nodes_to_exclude,
                         extra_options={"EnableSubgraph": True})
        calls.append(ToolCall(api="onnxruntime.quantization.quantize_dynamic", args={
            "weight_type": weight_type.name, "use_external_data_format": external, "op_types_to_quantize": op_types,
            "nodes_to_exclude": options.nodes_to_exclude, "extra_options": {"EnableSubgraph": True}}))
        return BuildOutput(artifacts=_with_external_data(artifact), calls=calls)

    def _quantize_static(self, request: BuildRequest, options: OnnxRuntimeOptions, artifact: Path,
                         scratch: Path) -> BuildOutput:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

        samples, calibration = request.calibration_samples()
        request.log(f"calibrating on {calibration.samples} {calibration.source} sample(s), sha256 {calibration.sha256}")
        method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                  "percentile": CalibrationMethod.Percentile}[options.calibration_method]
        quant_format = QuantFormat.QDQ if options.quant_format == "qdq" else QuantFormat.QOperator
        # quantize_static's own default set (both registries), or the preset's list; less the preset's block list.
        op_types = _op_types(options, set(QDQRegistry) | set(QLinearOpsRegistry))
        prepared, calls = _prepare_for_quantization(request, scratch, upgrade_opset=True)
        extra_options: dict[str, bool] = {"ActivationSymmetric": True} if options.activation_symmetric else {}
        if not options.weight_scale_adjust:
            extra_options["QDQDisableWeightAdjustForInt32Bias"] = True
        quantize_static(
            str(prepared), str(artifact), _SampleReader(samples),
            quant_format=quant_format, per_channel=options.per_channel, op_types_to_quantize=op_types,
            nodes_to_exclude=options.nodes_to_exclude, reduce_range=options.reduce_range,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=method,
            use_external_data_format=bool(request.model.external_data), extra_options=extra_options,
        )
        calls.append(ToolCall(api="onnxruntime.quantization.quantize_static", args={
            "quant_format": quant_format.name, "per_channel": options.per_channel,
            "activation_type": "QUInt8", "weight_type": "QInt8", "calibrate_method": method.name,
            "op_types_to_quantize": op_types, "nodes_to_exclude": options.nodes_to_exclude,
            **({"reduce_range": True} if options.reduce_range else {}),
            **({"extra_options": extra_options} if extra_options else {})}))
        return BuildOutput(artifacts=_with_external_data(artifact), calls=calls, calibration=calibration)

    def load(self, artifact: Path, *, threads: int | None = None) -> OrtRunner:
        return OrtRunner(artifact, threads)

    def intermediate_tensors(self, model: Path, names: Sequence[str],
                             samples: Sequence[Sample]) -> Iterator[dict[str, np.ndarray]]:
        """The Diagnosable capability (backends/api.py): see backends/ort_tensors.py."""
        from pytest_inferedgeforge.backends.ort_tensors import intermediate_tensors

        return intermediate_tensors(model, names, samples, runtime_errors())
