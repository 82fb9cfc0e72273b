"""ONNX Runtime on CPU as a runner: the onnxruntime backend's runner, and the reference every parity check runs the
source model on (``api.reference_runner``).

It lives apart from backends/onnxruntime.py so the public API (backends/api.py) can hand out the reference runner
without importing a concrete backend, and the backend can import the API without a circle.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_inferedgeforge.model.errors import RunnerError, first_line

if TYPE_CHECKING:  # annotations only: loading the onnxruntime backend for its traits imports no numpy
    import numpy as np

    from pytest_inferedgeforge.model.inputs import Sample


def runtime_errors() -> tuple[type[Exception], ...]:
    """The exceptions onnxruntime documents for a model that does not load or run."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoSuchFile", "NoModel", "NotFound",
             "NotImplemented", "RuntimeException", "EPFail", "EngineError")
    return tuple(getattr(state, name) for name in names if hasattr(state, name))


class OrtRunner:
    def __init__(self, artifact: Path, threads: int | None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 4  # errors reach the caller as exceptions, not as stderr noise
        try:
            self.session: Any = ort.InferenceSession(str(artifact), options, providers=["CPUExecutionProvider"])
        except runtime_errors() as exc:
            raise RunnerError(f"onnxruntime cannot load {artifact.name}: {type(exc).__name__}: {first_line(exc)}") from exc
        self.description = "onnxruntime CPUExecutionProvider"
        self.evidence = "artifact"
        self.settings = {"provider": "CPUExecutionProvider", "intra_op_threads": threads or 0,
                         "onnxruntime": ort.__version__}

    def run(self, feeds: Sample) -> list[np.ndarray]:
        try:
            return self.session.run(None, feeds)
        except runtime_errors() as exc:
            raise RunnerError(f"onnxruntime run failed: {type(exc).__name__}: {first_line(exc)}") from exc

    def output_names(self) -> list[str]:
        """The model's output names in the order ``run`` returns them."""
        if self.session is None:
            raise RunnerError("onnxruntime runner used after close()")
        return [output.name for output in self.session.get_outputs()]

    def close(self) -> None:
        self.session = None
