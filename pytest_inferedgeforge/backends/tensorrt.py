"""TensorRT: engines for Jetson and other NVIDIA GPUs, built with trtexec or the tensorrt Python API.

TensorRT needs an NVIDIA GPU, so this backend first detects, precisely, what is
missing: the toolchain, a CUDA device, or a GPU TensorRT supports. It never
pretends: without them, builds fail and plugin items skip with that reason.

Precision is enforced, not hinted: fp16 sets ``--fp16``; fp32 sets ``--noTF32``
so fp32 means fp32; int8 needs either an explicitly quantized (QDQ) model or a
calibration cache (``build_options.calibration_cache``), because int8 without
calibration data would give an engine with meaningless scales.

What the build ran on is recorded for what it is (docs/provenance.md): trtexec's
TensorRT is a system toolchain, the tensorrt Python package a distribution read
from its installed metadata, and the GPU, compute capability, driver and CUDA
version are facts about the host, never package dependencies.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt

from pytest_inferedgeforge.backends.api import (
    PRECISIONS,
    Availability,
    BuildFailed,
    BuildOutput,
    BuildRequest,
    Precision,
    PresetError,
    ToolCall,
    ToolchainComponent,
    ToolchainUnavailable,
    file_digest,
    parse_options,
)

TRTEXEC_DIRS = (Path("/usr/src/tensorrt/bin"),)
MIN_COMPUTE_CAPABILITY = 5.3
RUN_HINT = "Run this preset on a Jetson/TensorRT environment with trtexec installed."


class TensorRTOptions(BaseModel):
    """``build_options`` understood by the tensorrt backend; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")

    precision: Precision
    workspace_mb: PositiveInt | None = Field(None, description="--memPoolSize=workspace:<MiB>")
    timing_cache: str | None = Field(None, description="Timing cache file, reused and updated; hashed in the record.")
    calibration_cache: str | None = Field(None, description="int8 calibration cache (--calib).")
    dla_core: NonNegativeInt | None = Field(None, description="--useDLACore=N with GPU fallback.")
    min_shapes: dict[str, list[PositiveInt]] | None = None
    max_shapes: dict[str, list[PositiveInt]] | None = None
    builder_optimization_level: int | None = Field(None, ge=0, le=5)
    timeout_s: PositiveInt = 3600


def find_trtexec() -> Path | None:
    """``$FORGE_TRTEXEC``, then PATH, then the TensorRT install directories."""
    override = os.environ.get("FORGE_TRTEXEC")
    if override:
        return Path(override) if Path(override).is_file() else None
    found = shutil.which("trtexec")
    if found:
        return Path(found)
    return next((d / "trtexec" for d in TRTEXEC_DIRS if (d / "trtexec").is_file()), None)


def detect_gpu() -> tuple[dict[str, str] | None, str | None]:
    """(GPU facts, None) or (None, why there is no usable CUDA device)."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            result = subprocess.run(
                [smi, "--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=20, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            return None, f"no CUDA device: nvidia-smi failed to run ({exc})"
        line = result.stdout.strip().splitlines()[0] if result.stdout.strip() else ""
        if result.returncode != 0 or not line:
            return None, f"no CUDA device: nvidia-smi reports no GPU ({(result.stderr or result.stdout).strip()[:200]})"
        name, capability, driver = (part.strip() for part in ([*line.split(","), "", ""])[:3])
        facts = {"gpu": name, "compute_capability": capability, "driver": driver}
        try:
            if float(capability) < MIN_COMPUTE_CAPABILITY:
                return None, (f"incompatible GPU: {name} has compute capability {capability}, below TensorRT's "
                              f"minimum {MIN_COMPUTE_CAPABILITY}")
        except ValueError:
            pass
        return facts, None
    model_file = Path("/proc/device-tree/model")
    if model_file.is_file() and "jetson" in model_file.read_text(errors="ignore").lower():
        facts = {"gpu": model_file.read_text(errors="ignore").strip("\x00 \n"), "compute_capability": "jetson"}
        release = Path("/etc/nv_tegra_release")
        if release.is_file():
            facts["l4t"] = release.read_text(errors="ignore").splitlines()[0].strip()
        return facts, None
    return None, "no CUDA device: nvidia-smi is not on PATH and this is not a Jetson (/proc/device-tree/model)"


def cuda_version() -> str | None:
    """The CUDA version: the driver's (nvidia-smi banner), else the toolkit's (version.json, nvcc)."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            banner = subprocess.run([smi], capture_output=True, text=True, timeout=20, check=False).stdout
        except (OSError, subprocess.SubprocessError):
            banner = ""
        match = re.search(r"CUDA Version:\s*([\d.]+)", banner)
        if match:
            return match.group(1)
    version_file = Path("/usr/local/cuda/version.json")
    if version_file.is_file():
        try:
            return str(json.loads(version_file.read_text())["cuda"]["version"])
        except (ValueError, KeyError, TypeError):
            pass
    nvcc = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if Path("/usr/local/cuda/bin/nvcc").is_file() else None)
    if nvcc:
        try:
            output = subprocess.run([nvcc, "--version"], capture_output=True, text=True, timeout=20, check=False).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        match = re.search(r"release ([\d.]+)", output)
        return match.group(1) if match else None
    return None


def trtexec_version(trtexec: Path) -> str:
    try:
        result = subprocess.run([str(trtexec), "--help"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    match = re.search(r"TensorRT v(\d+)", result.stdout + result.stderr)
    if not match:
        return "unknown"
    digits = match.group(1)  # e.g. 100300 -> 10.3.0, 8601 -> 8.6.1
    if len(digits) >= 6:
        return f"{int(digits[:-4])}.{int(digits[-4:-2])}.{int(digits[-2:])}"
    return f"{digits[0]}.{digits[1]}.{digits[2:]}"


def _shape_arg(shapes: dict[str, list[int]]) -> str:
    return ",".join(f"{name}:{'x'.join(str(d) for d in dims)}" for name, dims in shapes.items())


def _is_explicitly_quantized(source: Path) -> bool:
    import onnx  # here, not at load: reading presets never loads onnx

    model = onnx.load(str(source), load_external_data=False)
    return any(node.op_type in ("QuantizeLinear", "DequantizeLinear") for node in model.graph.node)


def trtexec_argv(trtexec: Path, request: BuildRequest, options: TensorRTOptions, engine: Path) -> list[str]:
    """The exact trtexec command line for a request; every preset setting maps to a flag."""
    argv = [str(trtexec), f"--onnx={request.source}", f"--saveEngine={engine}"]
    if options.precision == "fp16":
        argv.append("--fp16")
    elif options.precision == "fp32":
        argv.append("--noTF32")
    else:
        argv.append("--int8")
        if options.calibration_cache:
            argv.append(f"--calib={options.calibration_cache}")
        elif not _is_explicitly_quantized(request.source):
            raise PresetError(
                f"preset {request.preset.name}: int8 via trtexec needs build_options.calibration_cache (a TensorRT "
                "calibration cache) or an explicitly quantized (QDQ) model; without calibration TensorRT would use "
                "placeholder scales")
    dynamic = [t.name for t in request.model.inputs if not t.is_static]
    if dynamic or options.min_shapes or options.max_shapes:
        opt = {name: request.input_shapes[name] for name in request.input_shapes}
        argv.append(f"--minShapes={_shape_arg({**opt, **(options.min_shapes or {})})}")
        argv.append(f"--optShapes={_shape_arg(opt)}")
        argv.append(f"--maxShapes={_shape_arg({**opt, **(options.max_shapes or {})})}")
    if options.workspace_mb:
        argv.append(f"--memPoolSize=workspace:{options.workspace_mb}")
    if options.timing_cache:
        argv.append(f"--timingCacheFile={options.timing_cache}")
    if options.dla_core is not None:
        argv += [f"--useDLACore={options.dla_core}", "--allowGPUFallback"]
    if options.builder_optimization_level is not None:
        argv.append(f"--builderOptimizationLevel={options.builder_optimization_level}")
    argv.append("--skipInference")
    return argv


class TensorRTBackend:
    name = "tensorrt"
    artifact_filename = "model.engine"
    artifact_format = "engine"
    precisions = PRECISIONS
    options_model = TensorRTOptions
    marker_help = "TensorRT items (needs an NVIDIA GPU and TensorRT)"
    prequantized_precisions = ("int8",)
    """An explicitly quantized (QDQ) source is how TensorRT builds int8 without a calibration cache."""

    def available(self) -> Availability:
        trtexec = find_trtexec()
        has_python_api = importlib.util.find_spec("tensorrt") is not None
        if trtexec is None and not has_python_api:
            return Availability(False, reason=(
                "TensorRT not found: no trtexec on PATH, in /usr/src/tensorrt/bin or at $FORGE_TRTEXEC, and the "
                f"tensorrt Python package is not importable. {RUN_HINT}"))
        gpu, why = detect_gpu()
        if gpu is None:
            return Availability(False, reason=f"{why}. TensorRT builds need an NVIDIA GPU. {RUN_HINT}")
        versions = {key: value for key, value in gpu.items() if value}
        cuda = cuda_version()
        if cuda:
            versions["cuda"] = cuda
        components = {key: ToolchainComponent(kind="host") for key in versions}
        if trtexec is not None:
            versions["trtexec"] = str(trtexec)
            versions["tensorrt"] = trtexec_version(trtexec)
            components.update(trtexec=ToolchainComponent(kind="location"), tensorrt=ToolchainComponent(kind="system"))
        else:
            import tensorrt

            from pytest_inferedgeforge.backends.api import python_component

            versions["tensorrt"] = tensorrt.__version__
            components["tensorrt"] = python_component("tensorrt")
        return Availability(True, versions=versions, components=components,
                            location=str(trtexec) if trtexec else "tensorrt Python API")

    def build(self, request: BuildRequest) -> BuildOutput:
        options = parse_options(TensorRTOptions, request.preset)
        trtexec = find_trtexec()
        if trtexec is None:
            return self._build_with_python_api(request, options)
        engine = request.work_dir / self.artifact_filename
        argv = trtexec_argv(trtexec, request, options, engine)
        request.log("running: " + " ".join(argv))
        try:
            result = subprocess.run(argv, text=True, capture_output=True, timeout=options.timeout_s, check=False)
        except FileNotFoundError as exc:
            raise BuildFailed(f"trtexec is required for TensorRT builds but was not found in PATH. {RUN_HINT}") from exc
        except subprocess.TimeoutExpired as exc:
            raise BuildFailed(f"TensorRT engine build failed via trtexec: timed out after {options.timeout_s}s") from exc
        for line in (result.stdout + result.stderr).splitlines():
            request.log(f"[trtexec] {line}")
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
            raise BuildFailed(f"TensorRT engine build failed via trtexec. {RUN_HINT} " + " | ".join(detail))
        if not engine.is_file():
            raise BuildFailed(f"trtexec completed without producing model.engine. {RUN_HINT}")
        details: dict[str, Any] = {"mode": "trtexec"}
        if options.timing_cache and Path(options.timing_cache).is_file():
            details["timing_cache_sha256"] = file_digest(Path(options.timing_cache))
        if options.calibration_cache and Path(options.calibration_cache).is_file():
            details["calibration_cache_sha256"] = file_digest(Path(options.calibration_cache))
        return BuildOutput(artifacts=[engine], calls=[ToolCall(argv=argv)], details=details)

    def _build_with_python_api(self, request: BuildRequest, options: TensorRTOptions) -> BuildOutput:
        """Build through the tensorrt Python API (when there is no trtexec)."""
        import tensorrt as trt

        logger = trt.Logger(trt.Logger.INFO)
        builder = trt.Builder(logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(request.source)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BuildFailed(f"TensorRT could not parse {request.source}: {errors}")
        config = builder.create_builder_config()
        args: dict[str, Any] = {"precision": options.precision}
        if options.precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        elif options.precision == "fp32":
            config.clear_flag(trt.BuilderFlag.TF32)
        else:
            if not _is_explicitly_quantized(request.source):
                raise PresetError(f"preset {request.preset.name}: int8 through the tensorrt Python API needs an "
                                  "explicitly quantized (QDQ) model; build one with onnxruntime/cpu_int8")
            config.set_flag(trt.BuilderFlag.INT8)
        if options.workspace_mb:
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
            args["workspace_mb"] = options.workspace_mb
        if options.dla_core is not None:
            config.default_device_type = trt.DeviceType.DLA
            config.DLA_core = options.dla_core
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
            args["dla_core"] = options.dla_core
        if any(not t.is_static for t in request.model.inputs):
            profile = builder.create_optimization_profile()
            for name, shape in request.input_shapes.items():
                low = (options.min_shapes or {}).get(name, shape)
                high = (options.max_shapes or {}).get(name, shape)
                profile.set_shape(name, low, shape, high)
            config.add_optimization_profile(profile)
            args["profile"] = request.input_shapes
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise BuildFailed("TensorRT engine build failed via the tensorrt Python API (see build.log)")
        engine = request.work_dir / self.artifact_filename
        engine.write_bytes(bytes(serialized))
        return BuildOutput(artifacts=[engine], calls=[ToolCall(api="tensorrt.Builder.build_serialized_network",
                                                              args=args)], details={"mode": "python-api"})

    def load(self, artifact: Path, *, threads: int | None = None) -> Any:
        raise ToolchainUnavailable(
            "running TensorRT engines for benchmark and parity is done by InferEdgeLab/Runtime on the device "
            "(run-benchmark --via lab); Forge's native runner does not load engines")
