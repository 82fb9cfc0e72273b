"""The backend registry: one module per toolchain, looked up by preset ``backend``."""

from __future__ import annotations

from pytest_inferedgeforge.backends.api import Availability, Backend, BuildOutput, BuildRequest, Runner
from pytest_inferedgeforge.model.errors import ForgeError


def get_backend(name: str) -> Backend:
    if name == "onnxruntime":
        from pytest_inferedgeforge.backends.onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend()
    if name == "tensorrt":
        from pytest_inferedgeforge.backends.tensorrt import TensorRTBackend

        return TensorRTBackend()
    if name == "rknn":
        from pytest_inferedgeforge.backends.rknn.backend import RKNNBackend

        return RKNNBackend()
    raise ForgeError(f"Unsupported backend '{name}'. Supported backends: onnxruntime, rknn, tensorrt.")


BACKEND_NAMES = ("onnxruntime", "rknn", "tensorrt")

__all__ = ["BACKEND_NAMES", "Availability", "Backend", "BuildOutput", "BuildRequest", "Runner", "get_backend"]
