"""RKNN: Rockchip NPU models, converted for real with rknn-toolkit2 in its own environment.

The toolkit runs in an isolated venv (see toolchain.py) through
``worker.py``. int8 is calibrated on a real dataset: the preset's, or
seeded synthetic NCHW samples written as ``.npy`` plus ``dataset.txt``, kept in
the build directory and hashed into the record.

Inference here uses the toolkit's simulator (``init_runtime()`` with no
target), which only runs a model converted in the same session: the worker
converts again from the recorded request and reports whether its export is
byte-identical to the artifact. With ``$FORGE_RKNN_TARGET`` (e.g. ``rk3588``)
the artifact itself is loaded and run on the connected NPU.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from pytest_inferedgeforge.backends.api import (
    Availability,
    BuildFailed,
    BuildOutput,
    BuildRequest,
    LayerAnalysis,
    PresetError,
    RunnerError,
    ToolCall,
    ToolchainComponent,
    ToolchainUnavailable,
    file_digest,
    first_line,
    locate_source,
    parse_options,
    source_reference,
)
from pytest_inferedgeforge.backends.rknn.analysis import layer_analysis, write_dataset, write_samples
from pytest_inferedgeforge.backends.rknn.toolchain import (
    WORKER_SCRIPT,
    ask_worker,
    env_python,
    install_rknn,
    read_marker,
    rknn_env_dir,
    rknn_install_hint,
)

if TYPE_CHECKING:  # numpy is imported where arrays are handled: reading this backend's traits loads none
    import numpy as np

    from pytest_inferedgeforge.backends.api import Sample

REQUEST_FILE = "rknn_build.json"
TOOLKIT_LOG = "rknn_toolkit.log"
CALIBRATION_DIR = "calibration"
ANALYSIS_TIMEOUT_S = 1800


class RknnOptions(BaseModel):
    """``build_options`` understood by the rknn backend; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")

    precision: Literal["fp16", "int8"]
    target_platform: str | None = None
    optimization_level: int | None = Field(None, ge=0, le=3)
    quantization: bool | None = None
    quantized_dtype: Literal["w8a8", "w8a16", "w16a16i", "w16a16i_dfp", "w4a16"] = "w8a8"
    quantized_algorithm: Literal["normal", "mmse", "kl_divergence"] = "normal"
    quantized_method: Literal["channel", "layer"] = "channel"
    mean_values: list[list[float]] | None = Field(None, description=(
        "One list per model input, one value per channel; default: identity (0) for every input's channels."))
    std_values: list[list[float]] | None = Field(None, description="Like mean_values; default: identity (1).")
    float_layers: list[str] = Field(default_factory=list, description=(
        "int8 only: toolkit layers (as diagnose names them) kept in float16 through hybrid_quantization_step1/2; "
        "what `tune` settles on."))
    timeout_s: PositiveInt = 1800

    @model_validator(mode="after")
    def _quantization_matches_precision(self) -> RknnOptions:
        wanted = self.precision == "int8"
        if self.quantization is not None and self.quantization != wanted:
            raise ValueError(f"quantization: {self.quantization} contradicts precision {self.precision}")
        self.quantization = wanted
        if self.float_layers and not wanted:
            raise ValueError("float_layers keeps layers of an int8 model in float16; it needs precision int8")
        return self




def _channels(shape: list[int]) -> int:
    """The length rknn-toolkit2 2.5.0 demands of an input's mean/std list: dim 1 (C of NCHW, and what it
    checks for any input of rank 2 or more), else 1."""
    return shape[1] if len(shape) >= 2 else 1


def normalisation(options: RknnOptions, shapes: dict[str, list[int]]) -> tuple[list[list[float]], list[list[float]]]:
    """Per-input mean and std values: the preset's, checked against the model, or identity per channel."""
    channels = [_channels(shape) for shape in shapes.values()]
    resolved = []
    for key, given, identity in (("mean_values", options.mean_values, 0.0), ("std_values", options.std_values, 1.0)):
        if given is None:
            resolved.append([[identity] * count for count in channels])
            continue
        if len(given) != len(channels) or any(len(v) != c for v, c in zip(given, channels, strict=False)):
            raise PresetError(
                f"build_options.{key} {given} does not fit the model: it needs one list per input "
                f"({', '.join(shapes)}) with one value per channel ({channels}); remove it for identity")
        resolved.append(given)
    return resolved[0], resolved[1]


def toolkit_config(options: RknnOptions, target: str, shapes: dict[str, list[int]] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"target_platform": options.target_platform or target}
    if options.optimization_level is not None:
        config["optimization_level"] = options.optimization_level
    if shapes is not None:
        config["mean_values"], config["std_values"] = normalisation(options, shapes)
    else:
        if options.mean_values is not None:
            config["mean_values"] = options.mean_values
        if options.std_values is not None:
            config["std_values"] = options.std_values
    if options.quantization:
        config.update(quantized_dtype=options.quantized_dtype, quantized_algorithm=options.quantized_algorithm,
                      quantized_method=options.quantized_method)
    return config


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def toolkit_error(stderr: str) -> str | None:
    """The toolkit's own error line (``E <stage>: ...``), without colour codes or its version banner."""
    lines = [_ANSI.sub("", line).strip() for line in stderr.splitlines()]
    errors = [line[2:].strip() for line in lines if line.startswith("E ")]
    errors = [error for error in errors if not error.startswith("rknn-toolkit2 version")
              and not error.endswith("Traceback (most recent call last):")]
    if not errors:
        return None
    first = errors[0]  # the toolkit logs the cause first, then the traceback around it
    return first if len(first) <= 400 else f"{first[:250]} ... {first[-140:]}"


def _absolute_dataset(work_dir: Path, dataset_rel: str, scratch: Path) -> Path:
    """A copy of ``dataset.txt`` naming the samples by absolute path, so the toolkit can run in a scratch
    directory while the build directory keeps its relative, relocatable ``dataset.txt``."""
    published = work_dir / dataset_rel
    lines = [" ".join(str(published.parent / name) for name in line.split())
             for line in published.read_text(encoding="utf-8").splitlines() if line.strip()]
    copy = scratch / "dataset.txt"
    copy.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return copy


def replay_request(artifact: Path, scratch: Path) -> dict[str, Any]:
    """The recorded conversion (``rknn_build.json`` beside the artifact) as a worker request run in ``scratch``:
    the simulator only runs or analyses a model converted in its own session."""
    request_path = artifact.parent / REQUEST_FILE
    if not request_path.is_file():
        raise ToolchainUnavailable(f"{request_path} is missing; the simulator needs the recorded conversion")
    recorded = json.loads(request_path.read_text(encoding="utf-8"))
    dataset = recorded.get("dataset")
    return {"model": str(RknnRunner.source(recorded, artifact.parent)), "config": recorded["config"],
            "do_quantization": recorded["do_quantization"],
            "dataset": str(_absolute_dataset(artifact.parent, dataset, scratch)) if dataset else None,
            "inputs": recorded.get("inputs"), "input_size_list": recorded.get("input_size_list"),
            "float_layers": recorded.get("float_layers")}


RECIPE_LEVEL = "recipe-level (simulator re-conversion)"
"""The label of figures measured on a re-conversion the simulator holds, not on the artifact's bytes."""


class RknnRunner:
    """A worker process holding the artifact on a device, or a re-conversion in the simulator.

    The simulator only runs a model converted in the same session, so on x86 the worker converts
    again from the recorded request. rknn-toolkit2 2.5.0 output is not byte-deterministic (two
    conversions differ in ~1,350 bytes: 8-byte values in the NPU command stream that look like host
    addresses), so unless this re-conversion happens to equal the artifact byte for byte, every
    figure it gives is labelled :data:`RECIPE_LEVEL` rather than attributed to the artifact.
    """

    @staticmethod
    def source(recorded: dict[str, Any], build_dir: Path) -> Path:
        """The source model the conversion is replayed from, found as every record's source is (relative to the
        output root's parent, else at its absolute path), so a moved build directory still simulates."""
        found = locate_source({"path": recorded.get("model"), "path_abs": recorded.get("model_abs")}, build_dir)
        if found is None:
            raise ToolchainUnavailable(f"the source model {recorded.get('model')} is not on this machine; the simulator "
                                       "replays the conversion from it")
        return found

    def __init__(self, artifact: Path, threads: int | None) -> None:
        import numpy as np

        artifact = artifact.resolve()  # the worker runs in another directory
        target = os.environ.get("FORGE_RKNN_TARGET")
        self._scratch = tempfile.TemporaryDirectory(prefix="forge-rknn-")
        scratch = Path(self._scratch.name)
        request = {"op": "serve", **replay_request(artifact, scratch), "artifact": str(artifact), "target": target}
        python = env_python(rknn_env_dir())
        self._stderr = (scratch / "worker.stderr").open("w+", encoding="utf-8")
        self._process = subprocess.Popen([str(python), "-P", str(WORKER_SCRIPT)], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self._stderr, text=True, cwd=scratch)
        hello = self._send(request)
        exported = hello.get("export_sha256")
        self.identical_to_artifact = bool(target) or exported == file_digest(artifact)
        self.evidence = "artifact" if self.identical_to_artifact else RECIPE_LEVEL
        where = f"rknn NPU ({target})" if target else "rknn-toolkit2 simulator (x86)"
        self.description = f"{where} via worker process" + (
            "" if self.identical_to_artifact else f", {RECIPE_LEVEL}: not the artifact's bytes")
        self.settings = {"runtime": where, "threads": threads, "identical_to_artifact": self.identical_to_artifact,
                         "evidence": self.evidence}
        config = request["config"]
        names = request.get("inputs") or []
        self._normalisation = {name: (np.asarray(mean, np.float32), np.asarray(std, np.float32))
                               for name, mean, std in zip(names, config.get("mean_values") or [],
                                                          config.get("std_values") or [], strict=False)}

    def _send(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(message) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            self._stderr.seek(0)
            cause = toolkit_error(self._stderr.read()) or "no error line"
            raise RunnerError(f"rknn worker exited (code {self._process.poll()}) during '{message['op']}': {cause}")
        reply = json.loads(line)
        if not reply.get("ok"):
            self._stderr.seek(0)
            cause = toolkit_error(self._stderr.read()) or reply.get("error")
            raise RunnerError(f"rknn worker failed on '{message['op']}': {cause}")
        return reply

    def run(self, feeds: Sample) -> list[np.ndarray]:
        import numpy as np

        paths = []
        for index, array in enumerate(feeds.values()):
            path = Path(self._scratch.name) / f"input_{index}.npy"
            np.save(path, array)
            paths.append(str(path))
        reply = self._send({"op": "infer", "inputs": paths, "out_dir": self._scratch.name})
        return [np.load(path) for path in reply["outputs"]]

    def prepare_reference(self, sample: Sample) -> Sample:
        """The toolkit applies mean/std itself, so the source model must see the normalised input."""
        import numpy as np

        prepared = {}
        for name, array in sample.items():
            mean, std = self._normalisation.get(name, (None, None))
            if mean is None or std is None or not np.issubdtype(array.dtype, np.floating) or (
                    not mean.any() and (std == 1).all()):
                prepared[name] = array
                continue
            shape = (1, -1, 1, 1) if array.ndim == 4 else (-1,)
            prepared[name] = ((array - mean.reshape(shape)) / std.reshape(shape)).astype(array.dtype)
        return prepared

    def close(self) -> None:
        """Stop the worker and remove its scratch directory."""
        process = getattr(self, "_process", None)
        if process is not None and process.poll() is None:
            try:
                assert process.stdin is not None
                process.stdin.write(json.dumps({"op": "stop"}) + "\n")
                process.stdin.flush()
                process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                process.kill()
        if getattr(self, "_stderr", None) is not None:
            self._stderr.close()
        if getattr(self, "_scratch", None) is not None:
            self._scratch.cleanup()

    def __del__(self) -> None:
        self.close()


class RKNNBackend:
    name = "rknn"
    artifact_filename = "model.rknn"
    artifact_format = "rknn"
    precisions = ("fp16", "int8")
    """RKNN NPUs have no fp32 path, so it is refused, not faked."""
    options_model = RknnOptions
    marker_help = "RKNN items (rknn-toolkit2; simulator on x86, NPU on a device runner)"

    def available(self) -> Availability:
        env_dir = rknn_env_dir()
        marker = read_marker(env_dir)
        if marker is None:
            return Availability(False, location=str(env_dir), reason=(
                f"RKNN toolkit is unavailable in this environment: rknn-toolkit2 is not installed in {env_dir}; "
                f"{rknn_install_hint()}"))
        from pytest_inferedgeforge.backends.api import python_component

        versions = marker.get("versions", {})
        site = [str(path) for pattern in ("lib/python*/site-packages", "Lib/site-packages") for path in env_dir.glob(pattern)]
        components = {name: python_component(name, site) for name in versions if site}  # the toolkit venv's metadata
        return Availability(True, versions={**versions, "env": str(env_dir)}, location=str(env_dir),
                            components={**components, "env": ToolchainComponent(kind="location")})

    def install(self, progress: Callable[[str], None]) -> Availability:
        """Create the toolkit's own venv (it pins old numpy/onnx/torch) and record what was installed."""
        install_rknn(progress)
        return self.available()

    def build(self, request: BuildRequest) -> BuildOutput:
        options = parse_options(RknnOptions, request.preset)
        config = toolkit_config(options, request.preset.target, request.input_shapes)
        artifact = request.work_dir / self.artifact_filename
        calibration = None
        dataset_rel = None
        details: dict[str, Any] = {"toolkit_log": TOOLKIT_LOG}
        scratch = request.work_dir / ".rknn-scratch"
        scratch.mkdir()
        if options.quantization:
            samples, calibration = request.calibration_samples()
            dataset = write_dataset(samples, request.work_dir / CALIBRATION_DIR)
            dataset_rel = f"{CALIBRATION_DIR}/dataset.txt"
            details["dataset_txt_sha256"] = file_digest(dataset)
            request.log(f"calibration dataset: {len(samples)} .npy sample(s) in {dataset_rel}")
        worker_request = {
            "op": "build", "model": str(request.source), "output": str(artifact), "config": config,
            "do_quantization": bool(options.quantization),
            "dataset": str(_absolute_dataset(request.work_dir, dataset_rel, scratch)) if dataset_rel else None,
            "inputs": list(request.input_shapes), "input_size_list": list(request.input_shapes.values()),
            "verbose_file": str(request.work_dir / TOOLKIT_LOG),
            **({"float_layers": options.float_layers} if options.float_layers else {}),
        }
        request.log(f"rknn-toolkit2 worker: config {config}, inputs {request.input_shapes}, "
                    f"do_quantization={options.quantization}")
        try:
            reply = ask_worker(env_python(rknn_env_dir()), worker_request, timeout_s=options.timeout_s, cwd=scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)  # toolkit debug dumps (check*.onnx) never ship
        stderr = str(reply.pop("_stderr", ""))
        for line in stderr.splitlines()[-200:]:
            request.log(f"[rknn] {line}")
        if not reply.get("ok"):
            cause = toolkit_error(stderr) or first_line(str(reply.get("error")))
            raise BuildFailed(f"rknn-toolkit2 could not convert the model: {cause} (full toolkit output in the "
                              "build log of the failure record)")
        if not artifact.is_file():
            raise BuildFailed("Failed to export RKNN artifact: the toolkit wrote no model.rknn")
        sidecar = {"model": source_reference(request.source, request.work_dir.parent),
                   "model_abs": str(request.source.resolve()), "config": config, "do_quantization": bool(options.quantization),
                   "dataset": dataset_rel, "inputs": worker_request["inputs"],
                   "input_size_list": worker_request["input_size_list"],
                   **({"float_layers": options.float_layers} if options.float_layers else {})}
        (request.work_dir / REQUEST_FILE).write_text(json.dumps(sidecar, indent=2), encoding="utf-8")
        details["versions"] = reply.get("versions")
        calls = [ToolCall(**call) for call in reply.get("calls", [])]
        for call in calls:  # record the dataset as the build directory holds it, not the scratch copy
            if call.args and call.args.get("dataset"):
                call.args["dataset"] = dataset_rel
        return BuildOutput(artifacts=[artifact], calls=calls, calibration=calibration, details=details)

    def load(self, artifact: Path, *, threads: int | None = None) -> RknnRunner:
        if not self.available().ok:
            raise ToolchainUnavailable(f"rknn-toolkit2 is not installed; {rknn_install_hint()}")
        return RknnRunner(artifact, threads)

    def layer_analysis(self, source: Path, artifact: Path, samples: Sequence[Sample]) -> LayerAnalysis:
        """rknn-toolkit2's own ``accuracy_analysis`` of the recorded conversion, replayed on the simulator from the
        verified ``source`` (analysis.py); the toolkit's dumps stay in a temporary directory, never the cwd."""
        if not self.available().ok:
            raise ToolchainUnavailable(f"rknn-toolkit2 is not installed; {rknn_install_hint()}")
        artifact = artifact.resolve()
        with tempfile.TemporaryDirectory(prefix="forge-rknn-analysis-") as name:
            scratch = Path(name)
            request = {"op": "analyse", **replay_request(artifact, scratch), "model": str(source.resolve()),
                       "samples": write_samples(samples, scratch), "scratch": name}
            reply = ask_worker(env_python(rknn_env_dir()), request, timeout_s=ANALYSIS_TIMEOUT_S, cwd=scratch)
        if not reply.get("ok"):
            cause = toolkit_error(str(reply.get("_stderr", ""))) or first_line(str(reply.get("error")))
            raise RunnerError(f"rknn-toolkit2 accuracy_analysis failed: {cause}")
        return layer_analysis(reply, file_digest(artifact))
