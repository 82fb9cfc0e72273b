"""RKNN: Rockchip NPU models, converted for real with rknn-toolkit2 in its own environment.

The toolkit runs in an isolated venv (see core/toolchains.py) through
``rknn_worker.py``. int8 is calibrated on a real dataset: the preset's, or
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
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, model_validator

from pytest_inferedgeforge.backends.base import Availability, BuildOutput, BuildRequest
from pytest_inferedgeforge.core.errors import BuildFailed, PresetError, ToolchainUnavailable, describe_validation_error
from pytest_inferedgeforge.core.hashing import sha256_file
from pytest_inferedgeforge.core.inputs import Sample
from pytest_inferedgeforge.core.records import ToolCall
from pytest_inferedgeforge.core.toolchains import (
    WORKER_SCRIPT,
    ask_worker,
    env_python,
    read_marker,
    rknn_env_dir,
    rknn_install_hint,
)

REQUEST_FILE = "rknn_build.json"
TOOLKIT_LOG = "rknn_toolkit.log"
CALIBRATION_DIR = "calibration"


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
    mean_values: list[list[float]] | None = None
    std_values: list[list[float]] | None = None
    timeout_s: PositiveInt = 1800

    @model_validator(mode="after")
    def _quantization_matches_precision(self) -> RknnOptions:
        wanted = self.precision == "int8"
        if self.quantization is not None and self.quantization != wanted:
            raise ValueError(f"quantization: {self.quantization} contradicts precision {self.precision}")
        self.quantization = wanted
        return self


def parse_options(build_options: dict[str, Any], preset_name: str) -> RknnOptions:
    try:
        return RknnOptions.model_validate(build_options)
    except ValidationError as exc:
        raise PresetError(describe_validation_error(exc, f"preset {preset_name} build_options")) from exc


def toolkit_config(options: RknnOptions, target: str) -> dict[str, Any]:
    config: dict[str, Any] = {"target_platform": options.target_platform or target}
    if options.optimization_level is not None:
        config["optimization_level"] = options.optimization_level
    if options.mean_values is not None:
        config["mean_values"] = options.mean_values
    if options.std_values is not None:
        config["std_values"] = options.std_values
    if options.quantization:
        config.update(quantized_dtype=options.quantized_dtype, quantized_algorithm=options.quantized_algorithm,
                      quantized_method=options.quantized_method)
    return config


def _write_dataset(samples: list[Sample], directory: Path) -> Path:
    """Samples as NCHW ``.npy`` files plus the toolkit's ``dataset.txt`` (one line per sample)."""
    directory.mkdir()
    lines = []
    for index, sample in enumerate(samples):
        names = []
        for position, (name, array) in enumerate(sample.items()):
            file_name = f"sample_{index:04d}_{position}.npy"
            np.save(directory / file_name, array)
            names.append(file_name)
            del name
        lines.append(" ".join(names))
    dataset = directory / "dataset.txt"
    dataset.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dataset


class RknnRunner:
    """A worker process holding the converted model (simulator) or the artifact on a device."""

    def __init__(self, artifact: Path, threads: int | None) -> None:
        artifact = artifact.resolve()  # the worker runs in another directory
        request_path = artifact.parent / REQUEST_FILE
        if not request_path.is_file():
            raise ToolchainUnavailable(f"{request_path} is missing; the simulator needs the recorded conversion")
        recorded = json.loads(request_path.read_text(encoding="utf-8"))
        target = os.environ.get("FORGE_RKNN_TARGET")
        dataset = recorded.get("dataset")
        request = {
            "op": "serve", "model": recorded["model"], "config": recorded["config"],
            "do_quantization": recorded["do_quantization"],
            "dataset": str(artifact.parent / dataset) if dataset else None,
            "artifact": str(artifact), "target": target,
        }
        self._scratch = tempfile.TemporaryDirectory(prefix="forge-rknn-")
        python = env_python(rknn_env_dir())
        self._process = subprocess.Popen([str(python), "-P", str(WORKER_SCRIPT)], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                         cwd=str(artifact.parent / CALIBRATION_DIR) if dataset else None)
        hello = self._send(request)
        exported = hello.get("export_sha256")
        artifact_sha = sha256_file(artifact)
        self.identical_to_artifact = exported == artifact_sha if exported else True
        where = f"rknn NPU ({target})" if target else "rknn-toolkit2 simulator (x86)"
        note = "" if self.identical_to_artifact else ", in-memory conversion differs from the artifact bytes"
        self.description = f"{where} via worker process{note}"
        self.settings = {"runtime": where, "threads": threads, "identical_to_artifact": self.identical_to_artifact}
        config = recorded["config"]
        self._mean = np.asarray(config.get("mean_values") or [[0.0]], dtype=np.float32)[0]
        self._std = np.asarray(config.get("std_values") or [[1.0]], dtype=np.float32)[0]

    def _send(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(message) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise BuildFailed(f"rknn worker exited (code {self._process.poll()}) during '{message['op']}'")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise BuildFailed(f"rknn worker failed on '{message['op']}': {reply.get('error')}")
        return reply

    def run(self, feeds: Sample) -> list[np.ndarray]:
        paths = []
        for index, array in enumerate(feeds.values()):
            path = Path(self._scratch.name) / f"input_{index}.npy"
            np.save(path, array)
            paths.append(str(path))
        reply = self._send({"op": "infer", "inputs": paths, "out_dir": self._scratch.name})
        return [np.load(path) for path in reply["outputs"]]

    def prepare_reference(self, sample: Sample) -> Sample:
        """The toolkit applies mean/std itself, so the source model must see the normalised input."""
        prepared = {}
        for name, array in sample.items():
            if array.ndim == 4 and np.issubdtype(array.dtype, np.floating):
                shape = (1, -1, 1, 1)
                prepared[name] = ((array - self._mean.reshape(shape)) / self._std.reshape(shape)).astype(array.dtype)
            else:
                prepared[name] = array
        return prepared

    def __del__(self) -> None:
        process = getattr(self, "_process", None)
        if process is not None and process.poll() is None:
            try:
                assert process.stdin is not None
                process.stdin.write(json.dumps({"op": "stop"}) + "\n")
                process.stdin.flush()
                process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                process.kill()


class RKNNBackend:
    name = "rknn"
    artifact_filename = "model.rknn"

    def available(self) -> Availability:
        env_dir = rknn_env_dir()
        marker = read_marker(env_dir)
        if marker is None:
            return Availability(False, reason=f"RKNN toolkit is unavailable in this environment: rknn-toolkit2 is not "
                                              f"installed in {env_dir}; {rknn_install_hint()}")
        return Availability(True, versions={**marker.get("versions", {}), "env": str(env_dir)})

    def build(self, request: BuildRequest) -> BuildOutput:
        options = parse_options(request.preset.build_options, request.preset.name)
        config = toolkit_config(options, request.preset.target)
        artifact = request.work_dir / self.artifact_filename
        calibration = None
        dataset_rel = None
        details: dict[str, Any] = {"toolkit_log": TOOLKIT_LOG}
        if options.quantization:
            samples, calibration = request.calibration_samples()
            dataset = _write_dataset(samples, request.work_dir / CALIBRATION_DIR)
            dataset_rel = f"{CALIBRATION_DIR}/dataset.txt"
            details["dataset_txt_sha256"] = sha256_file(dataset)
            request.log(f"calibration dataset: {len(samples)} NCHW .npy sample(s) in {dataset_rel}")
        worker_request = {
            "op": "build", "model": str(request.source), "output": str(artifact), "config": config,
            "do_quantization": bool(options.quantization), "dataset": "dataset.txt" if dataset_rel else None,
            "verbose_file": str(request.work_dir / TOOLKIT_LOG),
        }
        request.log(f"rknn-toolkit2 worker: config {config}, do_quantization={options.quantization}")
        reply = ask_worker(env_python(rknn_env_dir()), worker_request, timeout_s=options.timeout_s,
                           cwd=request.work_dir / CALIBRATION_DIR if dataset_rel else None)
        for line in str(reply.pop("_stderr", "")).splitlines()[-200:]:
            request.log(f"[rknn] {line}")
        if not reply.get("ok"):
            raise BuildFailed(f"Failed to build RKNN artifact: {reply.get('error')}")
        if not artifact.is_file():
            raise BuildFailed("Failed to export RKNN artifact: the toolkit wrote no model.rknn")
        sidecar = {"model": str(request.source), "config": config, "do_quantization": bool(options.quantization),
                   "dataset": dataset_rel}
        (request.work_dir / REQUEST_FILE).write_text(json.dumps(sidecar, indent=2), encoding="utf-8")
        details["versions"] = reply.get("versions")
        return BuildOutput(artifacts=[artifact], calls=[ToolCall(**call) for call in reply.get("calls", [])],
                           calibration=calibration, details=details)

    def load(self, artifact: Path, *, threads: int | None = None) -> RknnRunner:
        if not self.available().ok:
            raise ToolchainUnavailable(f"rknn-toolkit2 is not installed; {rknn_install_hint()}")
        return RknnRunner(artifact, threads)
