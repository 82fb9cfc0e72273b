"""Input samples for calibration, smoke runs, benchmarks and parity checks.

Samples are either seeded synthetic arrays shaped from the model, or read from
a dataset directory of ``.npy`` files (single-input models), ``.npz`` files
keyed by input name, or images (single image input). Either way the exact bytes are hashed, so a record can say
which data a build or a check saw.

Synthetic data: floats are uniform in [0, 1) (an image already scaled to
[0, 1]); integers are uniform in [0, 100); booleans are fair coin flips. A
per-input :class:`ValueRule` overrides that where the values mean something (a
sample rate that must be 16000, token ids below the vocabulary size).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pytest_inferedgeforge.model.containment import data_files
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.extras import require
from pytest_inferedgeforge.model.onnx_model import InputRecordLike, ModelInfo, numpy_dtype

Sample = dict[str, np.ndarray]


InputList = Sequence[InputRecordLike]
InputSource = Literal["synthetic", "dataset"]


class ValueRule(BaseModel):
    """How to fill one input with synthetic values: a constant, a choice, or a range; ``dtype: int``
    makes a float input integer-valued (token ids fed as floats)."""

    model_config = ConfigDict(extra="forbid")

    value: float | None = Field(None, description="Every element is this constant (e.g. a sample rate of 16000).")
    choice: list[float] | None = Field(None, min_length=1, description="Each element is drawn from these values.")
    range: tuple[float, float] | None = Field(None, description="Uniform in [low, high); integers for integer inputs.")
    dtype: Literal["int", "float", "bool"] | None = Field(None, description="Kind of values to draw.")

    @model_validator(mode="after")
    def _one_kind(self) -> ValueRule:
        given = [name for name in ("value", "choice", "range") if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of value, choice or range, not {' and '.join(given)}")
        if self.range is not None and not self.range[0] < self.range[1]:
            raise ValueError(f"range [{self.range[0]}, {self.range[1]}) is empty: low must be below high")
        if not given and self.dtype is None:
            raise ValueError("give value, choice, range or dtype")
        return self


def _draw(rng: np.random.Generator, shape: list[int], dtype: np.dtype, rule: ValueRule | None) -> np.ndarray:
    kind = rule.dtype if rule and rule.dtype else (
        "bool" if dtype == np.bool_ else "int" if np.issubdtype(dtype, np.integer) else "float")
    if rule is not None and rule.value is not None:
        return np.full(shape, rule.value).astype(dtype)
    if rule is not None and rule.choice is not None:
        return rng.choice(np.asarray(rule.choice), size=shape).astype(dtype)
    if kind == "bool":
        return rng.random(shape) < 0.5 if dtype == np.bool_ else (rng.random(shape) < 0.5).astype(dtype)
    low, high = rule.range if rule is not None and rule.range is not None else ((0, 100) if kind == "int" else (0, 1))
    if kind == "int":
        return rng.integers(int(np.ceil(low)), int(np.ceil(high)), size=shape).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)


def synthetic_samples(model: ModelInfo | InputList, shapes: dict[str, list[int]], *, seed: int, count: int,
                      values: dict[str, ValueRule] | None = None) -> list[Sample]:
    """Seeded samples for every input; ``model`` is a ModelInfo or anything listing named, typed inputs.

    Samples are drawn one after another from one generator, so the first of ``count`` samples is
    the same for every count: the smoke run's input is parity's first input.
    """
    rng = np.random.default_rng(seed)
    inputs: InputList = model.inputs if isinstance(model, ModelInfo) else model
    rules = values or {}
    unknown = sorted(set(rules) - {tensor.name for tensor in inputs})
    if unknown:
        raise ForgeError(f"input value rules name unknown input(s) {', '.join(unknown)}; the model's inputs are "
                         + ", ".join(tensor.name for tensor in inputs))
    samples: list[Sample] = []
    for _ in range(count):
        samples.append({  # asarray: a rank-0 draw is a numpy scalar, which runtimes do not take as a tensor
            tensor.name: np.asarray(_draw(rng, shapes[tensor.name], numpy_dtype(tensor), rules.get(tensor.name)),
                                    dtype=numpy_dtype(tensor))
            for tensor in inputs})
    return samples


MAX_SAMPLE_BYTES = 2 * 1024**3
"""The most one input sample (all inputs together) may take; checked before anything is allocated."""
MAX_SAMPLES_BYTES = 4 * 1024**3
"""The most the samples of one check (calibration, parity) may take together."""


def check_sample_size(inputs: ModelInfo | InputList, shapes: dict[str, list[int]], count: int = 1) -> int:
    """Bytes of one sample under ``shapes``; a :class:`ForgeError` when it (or ``count`` of them) is over the limit."""
    tensors: InputList = inputs.inputs if isinstance(inputs, ModelInfo) else inputs
    size = sum(math.prod(shapes[t.name]) * numpy_dtype(t).itemsize for t in tensors if t.name in shapes)
    if size > MAX_SAMPLE_BYTES or size * count > MAX_SAMPLES_BYTES:
        described = ", ".join(f"{name}:{'x'.join(map(str, shape))}" for name, shape in shapes.items())
        raise ForgeError(f"input shapes {described} need {size:,} bytes per sample ({count} sample(s)), over the "
                         f"limit of {MAX_SAMPLE_BYTES:,} per sample and {MAX_SAMPLES_BYTES:,} in all; "
                         "choose smaller --input-shape values")
    return size


def input_samples(inputs: ModelInfo | InputList, shapes: dict[str, list[int]], *, count: int, seed: int,
                  dataset: Path | None = None,
                  values: dict[str, ValueRule] | None = None) -> tuple[list[Sample], InputSource]:
    """The inputs every check feeds (smoke run, parity, rebuild check): the dataset's first ``count``
    samples when one is given, else seeded synthetic ones under the value rules; and which it was."""
    check_sample_size(inputs, shapes, count)
    if dataset is not None:
        return load_dataset(dataset, inputs, shapes, limit=count), "dataset"
    return synthetic_samples(inputs, shapes, seed=seed, count=count, values=values), "synthetic"


def rules_from_record(recorded: object) -> dict[str, ValueRule] | None:
    """The value rules a build recorded as ``input_values`` (see :func:`rules_snapshot`), or None."""
    if not isinstance(recorded, dict) or not recorded:
        return None
    return {name: ValueRule.model_validate(rule) for name, rule in recorded.items()}


def rules_snapshot(values: dict[str, ValueRule] | None) -> dict[str, dict[str, object]] | None:
    """The rules as recorded (and hashed into the build key): only what was given."""
    if not values:
        return None
    return {name: rule.model_dump(mode="json", exclude_none=True) for name, rule in sorted(values.items())}


def parse_value_rule(text: str) -> tuple[str, ValueRule]:
    """``NAME=16000`` (constant), ``NAME=8000|16000`` (choice) or ``NAME=-1..1`` (range), as on the command line."""
    name, sep, spec = text.partition("=")
    if not sep or not name or not spec:
        raise ForgeError(f"--input-value '{text}' must look like NAME=16000, NAME=8000|16000 or NAME=-1..1")
    try:
        if "|" in spec:
            return name, ValueRule(choice=[float(part) for part in spec.split("|")])
        if ".." in spec:
            low, high = spec.split("..", 1)
            return name, ValueRule(range=(float(low), float(high)))
        return name, ValueRule(value=float(spec))
    except ValidationError as exc:
        raise ForgeError(f"--input-value '{text}': {exc.errors()[0]['msg']}") from exc
    except ValueError as exc:
        raise ForgeError(f"--input-value '{text}': not a number ({exc})") from exc


ARRAY_SUFFIXES = (".npy", ".npz")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
DATASET_SUFFIXES = ARRAY_SUFFIXES + IMAGE_SUFFIXES
"""The only files a dataset directory is read for (model/containment.py sets the size limits)."""


def load_dataset(
    directory: Path, model: ModelInfo | InputList, shapes: dict[str, list[int]], *, limit: int | None
) -> list[Sample]:
    """Read samples in name order: ``.npy``/``.npz`` arrays, or images for a single image input.

    Arrays must match the input shapes exactly. Images are preprocessed as documented in
    docs/experiments.md: RGB (or grey for one channel), bilinear resize to the input's
    height x width, scaled to [0, 1], NCHW or NHWC as the input's channel dim says; a batch
    of N takes N consecutive images.
    """
    entries = data_files(directory, DATASET_SUFFIXES, "dataset")
    arrays = [path for path in entries if path.suffix.lower() in ARRAY_SUFFIXES]
    images = [path for path in entries if path.suffix.lower() in IMAGE_SUFFIXES]
    if arrays and images:
        raise ForgeError(f"dataset directory {directory} mixes arrays and images; keep one kind")
    if not entries:
        raise ForgeError(f"dataset directory {directory} holds no .npy, .npz or image files")
    inputs: list[InputRecordLike] = list(model.inputs if isinstance(model, ModelInfo) else model)
    if images:
        return _image_samples(images, inputs, shapes, limit)
    samples = [_array_sample(path, inputs) for path in arrays[:limit]]
    for path, sample in zip(arrays, samples, strict=False):
        for tensor in inputs:
            array = sample[tensor.name]
            if list(array.shape) != shapes[tensor.name]:
                raise ForgeError(
                    f"{path}: input '{tensor.name}' has shape {list(array.shape)}, expected {shapes[tensor.name]}"
                )
            sample[tensor.name] = array.astype(numpy_dtype(tensor), copy=False)
    return samples


def _array_sample(path: Path, inputs: list[InputRecordLike]) -> Sample:
    names = [tensor.name for tensor in inputs]
    try:
        if path.suffix.lower() == ".npy":
            if len(names) != 1:
                raise ForgeError(f"{path}: a .npy sample only fits a single-input model; use .npz keyed by input name")
            return {names[0]: np.load(path, allow_pickle=False)}
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in names}
    except (ValueError, OSError, KeyError) as exc:
        raise ForgeError(f"{path}: cannot read dataset sample: {exc}") from exc


def _image_samples(paths: list[Path], inputs: list[InputRecordLike], shapes: dict[str, list[int]],
                   limit: int | None) -> list[Sample]:
    require("PIL", "an image dataset")
    from PIL import Image, UnidentifiedImageError

    if len(inputs) != 1 or len(shapes[inputs[0].name]) != 4:
        raise ForgeError("image datasets need a model with a single 4-D image input; use .npz for others")
    tensor = inputs[0]
    batch, *rest = shapes[tensor.name]
    channels_first = rest[0] in (1, 3)
    channels, height, width = rest if channels_first else (rest[2], rest[0], rest[1])
    if channels not in (1, 3):
        raise ForgeError(f"input '{tensor.name}' {shapes[tensor.name]} has no 1- or 3-channel axis for images")
    groups = [paths[i:i + batch] for i in range(0, len(paths) - batch + 1, batch)][:limit]
    if not groups:
        raise ForgeError(f"{len(paths)} image(s) cannot fill one batch of {batch}")
    samples = []
    for group in groups:
        pixels = []
        for path in group:
            try:
                with Image.open(path) as image:
                    converted = image.convert("RGB" if channels == 3 else "L").resize((width, height),
                                                                                      Image.Resampling.BILINEAR)
            except (UnidentifiedImageError, OSError) as exc:
                raise ForgeError(f"{path}: cannot decode image: {exc}") from exc
            array = np.asarray(converted, dtype=np.float32).reshape(height, width, channels) / 255.0
            pixels.append(array.transpose(2, 0, 1) if channels_first else array)
        samples.append({tensor.name: np.stack(pixels).astype(numpy_dtype(tensor))})
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
