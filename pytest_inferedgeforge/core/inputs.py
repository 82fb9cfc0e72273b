"""Input samples for calibration, smoke runs, benchmarks and parity checks.

Samples are either seeded synthetic arrays shaped from the model, or read from
a dataset directory of ``.npy`` files (single-input models) or ``.npz`` files
keyed by input name. Either way the exact bytes are hashed, so a record can say
which data a build or a check saw.

Synthetic data: floats are uniform in [0, 1) (an image already scaled to
[0, 1]); integers are uniform in [0, 100); booleans are fair coin flips.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from pytest_inferedgeforge.core.errors import ForgeError
from pytest_inferedgeforge.core.onnx_model import ModelInfo, numpy_dtype

Sample = dict[str, np.ndarray]


class NamedInput(Protocol):
    name: str
    dtype: str


InputList = Sequence[NamedInput]


def synthetic_samples(model: ModelInfo | InputList, shapes: dict[str, list[int]], *, seed: int, count: int) -> list[Sample]:
    """Seeded samples for every input; ``model`` is a ModelInfo or anything listing named, typed inputs."""
    rng = np.random.default_rng(seed)
    inputs = model.inputs if isinstance(model, ModelInfo) else model
    samples: list[Sample] = []
    for _ in range(count):
        sample: Sample = {}
        for tensor in inputs:
            shape = shapes[tensor.name]
            dtype = numpy_dtype(tensor)
            if dtype == np.bool_:
                sample[tensor.name] = rng.random(shape) < 0.5
            elif np.issubdtype(dtype, np.integer):
                sample[tensor.name] = rng.integers(0, 100, size=shape).astype(dtype)
            else:
                sample[tensor.name] = rng.random(shape, dtype=np.float32).astype(dtype)
        samples.append(sample)
    return samples


def load_dataset(
    directory: Path, model: ModelInfo | InputList, shapes: dict[str, list[int]], *, limit: int | None
) -> list[Sample]:
    """Read ``.npy``/``.npz`` samples in name order; each must match the input shapes exactly."""
    if not directory.is_dir():
        raise ForgeError(f"dataset directory not found: {directory}")
    files = sorted(path for path in directory.iterdir() if path.suffix in (".npy", ".npz"))
    if not files:
        raise ForgeError(f"dataset directory {directory} holds no .npy or .npz files")
    inputs = model.inputs if isinstance(model, ModelInfo) else model
    names = [tensor.name for tensor in inputs]
    samples: list[Sample] = []
    for path in files[:limit]:
        try:
            if path.suffix == ".npy":
                if len(names) != 1:
                    raise ForgeError(f"{path}: a .npy sample only fits a single-input model; use .npz keyed by input name")
                sample = {names[0]: np.load(path, allow_pickle=False)}
            else:
                with np.load(path, allow_pickle=False) as archive:
                    sample = {name: archive[name] for name in names}
        except (ValueError, OSError, KeyError) as exc:
            raise ForgeError(f"{path}: cannot read dataset sample: {exc}") from exc
        for tensor in inputs:
            array = sample[tensor.name]
            if list(array.shape) != shapes[tensor.name]:
                raise ForgeError(
                    f"{path}: input '{tensor.name}' has shape {list(array.shape)}, expected {shapes[tensor.name]}"
                )
            sample[tensor.name] = array.astype(numpy_dtype(tensor), copy=False)
        samples.append(sample)
    return samples


def samples_sha256(samples: list[Sample]) -> str:
    """Hash of the samples' names, dtypes, shapes and bytes, in order."""
    digest = hashlib.sha256()
    for sample in samples:
        for name in sorted(sample):
            array = np.ascontiguousarray(sample[name])
            digest.update(f"{name}|{array.dtype.str}|{array.shape}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()
