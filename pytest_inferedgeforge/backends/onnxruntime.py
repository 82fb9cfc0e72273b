"""ONNX Runtime: the embedded default backend, real on any CPU.

fp32 saves the graph after ORT's own optimizer; fp16 converts initializers and
activations with ORT's float16 converter; int8 uses onnxruntime.quantization,
statically (calibrated, QDQ) or dynamically.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, PositiveInt, ValidationError

from pytest_inferedgeforge.backends.base import Availability, BuildOutput, BuildRequest
from pytest_inferedgeforge.core.errors import BuildFailed, PresetError, describe_validation_error
from pytest_inferedgeforge.core.inputs import Sample
from pytest_inferedgeforge.core.records import ToolCall

OPTIMIZATION_LEVELS = {"disabled": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
                       "all": "ORT_ENABLE_ALL"}


class OnnxRuntimeOptions(BaseModel):
    """``build_options`` understood by the onnxruntime backend; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")

    precision: Literal["fp32", "fp16", "int8"]
    optimization_level: Literal["disabled", "basic", "extended", "all"] = "extended"
    keep_io_types: bool = True
    quantization: Literal["static", "dynamic"] = "static"
    quant_format: Literal["qdq", "qoperator"] = "qdq"
    per_channel: bool = True
    calibration_method: Literal["minmax", "entropy", "percentile"] = "minmax"
    intra_op_threads: PositiveInt | None = None


def parse_options(build_options: dict[str, Any], preset_name: str) -> OnnxRuntimeOptions:
    try:
        return OnnxRuntimeOptions.model_validate(build_options)
    except ValidationError as exc:
        raise PresetError(describe_validation_error(exc, f"preset {preset_name} build_options")) from exc


class OrtRunner:
    def __init__(self, artifact: Path, threads: int | None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(artifact), options, providers=["CPUExecutionProvider"])
        self.description = "onnxruntime CPUExecutionProvider"
        self.settings = {"provider": "CPUExecutionProvider", "intra_op_threads": threads or 0,
                         "onnxruntime": ort.__version__}

    def run(self, feeds: Sample) -> list[np.ndarray]:
        return self.session.run(None, feeds)


class _SampleReader:
    """An onnxruntime.quantization CalibrationDataReader over prepared samples."""

    def __init__(self, samples: list[Sample]) -> None:
        self._samples = iter(samples)

    def get_next(self) -> Sample | None:
        return next(self._samples, None)


@contextmanager
def _capture_logging(log: Any) -> Iterator[None]:
    """Route onnxruntime.quantization's logging into the build log instead of stderr."""

    class _Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            log(f"[{record.name}] {record.levelname}: {record.getMessage()}")

    handler = _Handler(level=logging.INFO)
    root = logging.getLogger()
    previous_handlers, previous_level = root.handlers[:], root.level
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.handlers = previous_handlers
        root.setLevel(previous_level)


EXTERNAL_DATA_FILE = "model.onnx.data"


def _with_external_data(artifact: Path) -> list[Path]:
    """The artifact plus its external-data file, when the toolchain wrote one."""
    data = artifact.with_name(EXTERNAL_DATA_FILE)
    return [artifact, data] if data.is_file() else [artifact]


class OnnxRuntimeBackend:
    """Models whose weights live in external data get artifacts with external data too
    (``model.onnx`` + ``model.onnx.data``), so an artifact never points back at the source."""

    name = "onnxruntime"
    artifact_filename = "model.onnx"

    def available(self) -> Availability:
        try:
            import onnx
            import onnxruntime
        except ImportError as exc:  # pragma: no cover - a hard dependency
            return Availability(False, reason=f"onnxruntime is not importable: {exc}")
        return Availability(True, versions={"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__})

    def build(self, request: BuildRequest) -> BuildOutput:
        options = parse_options(request.preset.build_options, request.preset.name)
        artifact = request.work_dir / self.artifact_filename
        try:
            with _capture_logging(request.log):
                if options.precision == "fp32":
                    return self._optimize(request, options, artifact)
                if options.precision == "fp16":
                    return self._to_fp16(request, options, artifact)
                if options.quantization == "dynamic":
                    return self._quantize_dynamic(request, artifact)
                return self._quantize_static(request, options, artifact)
        except (PresetError, BuildFailed):
            raise
        except Exception as exc:
            raise BuildFailed(f"onnxruntime {options.precision} build failed: {type(exc).__name__}: {exc}") from exc

    def _optimize(self, request: BuildRequest, options: OnnxRuntimeOptions, artifact: Path) -> BuildOutput:
        import onnxruntime as ort

        session_options = ort.SessionOptions()
        level = OPTIMIZATION_LEVELS[options.optimization_level]
        session_options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        session_options.optimized_model_filepath = str(artifact)
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
        from onnxruntime.transformers.float16 import convert_float_to_float16

        request.log(f"converting to float16 (keep_io_types={options.keep_io_types})")
        model = onnx.load(str(request.source))
        converted = convert_float_to_float16(model, keep_io_types=options.keep_io_types)
        external = bool(request.model.external_data)
        onnx.save(converted, str(artifact), save_as_external_data=external, all_tensors_to_one_file=True,
                  location=EXTERNAL_DATA_FILE, size_threshold=1024)
        call = ToolCall(api="onnxruntime.transformers.float16.convert_float_to_float16",
                        args={"keep_io_types": options.keep_io_types, "external_data": external})
        return BuildOutput(artifacts=_with_external_data(artifact), calls=[call])

    def _quantize_dynamic(self, request: BuildRequest, artifact: Path) -> BuildOutput:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # ConvInteger only has uint8 x uint8 kernels on CPU, so dynamic weights are uint8.
        request.log("quantizing weights dynamically (QUInt8)")
        external = bool(request.model.external_data)
        quantize_dynamic(str(request.source), str(artifact), weight_type=QuantType.QUInt8,
                         use_external_data_format=external)
        call = ToolCall(api="onnxruntime.quantization.quantize_dynamic",
                        args={"weight_type": "QUInt8", "use_external_data_format": external})
        return BuildOutput(artifacts=_with_external_data(artifact), calls=[call])

    def _quantize_static(self, request: BuildRequest, options: OnnxRuntimeOptions, artifact: Path) -> BuildOutput:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process

        samples, calibration = request.calibration_samples()
        request.log(f"calibrating on {calibration.samples} {calibration.source} sample(s), sha256 {calibration.sha256}")
        method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                  "percentile": CalibrationMethod.Percentile}[options.calibration_method]
        quant_format = QuantFormat.QDQ if options.quant_format == "qdq" else QuantFormat.QOperator
        with tempfile.TemporaryDirectory(dir=request.work_dir.parent, prefix=".forge-quant-") as scratch:
            prepared = Path(scratch) / "preprocessed.onnx"
            quant_pre_process(str(request.source), str(prepared), skip_symbolic_shape=True,
                              save_as_external_data=bool(request.model.external_data), all_tensors_to_one_file=True,
                              external_data_location="preprocessed.onnx.data")
            quantize_static(
                str(prepared), str(artifact), _SampleReader(samples),
                quant_format=quant_format, per_channel=options.per_channel,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=method,
                use_external_data_format=bool(request.model.external_data),
            )
        calls = [
            ToolCall(api="onnxruntime.quantization.shape_inference.quant_pre_process",
                     args={"skip_symbolic_shape": True}),
            ToolCall(api="onnxruntime.quantization.quantize_static", args={
                "quant_format": quant_format.name, "per_channel": options.per_channel,
                "activation_type": "QUInt8", "weight_type": "QInt8", "calibrate_method": method.name}),
        ]
        return BuildOutput(artifacts=_with_external_data(artifact), calls=calls, calibration=calibration)

    def load(self, artifact: Path, *, threads: int | None = None) -> OrtRunner:
        return OrtRunner(artifact, threads)
