"""Input samples for calibration, smoke runs, benchmarks and parity checks.

Samples are either seeded synthetic arrays shaped from the model, or read from
a dataset directory of ``.npy`` files (single-input models), ``.npz`` files
keyed by input name, images (single image input, prepared by model/preprocess.py) or 16-bit PCM ``.wav``
files (one waveform input, model/audio.py). Either way the exact bytes are hashed, so a record can say
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

from pytest_inferedgeforge.model.audio import WAV_SUFFIXES, waveform_batches
from pytest_inferedgeforge.model.containment import data_files
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.onnx_model import InputRecordLike, ModelInfo, numpy_dtype
from pytest_inferedgeforge.model.preprocess import (
    Pipelines,
    check_pipelines,
    image_layout,
    per_input_from_record,
    prepare_image,
    prepare_synthetic,
)

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
                  dataset: Path | None = None, values: dict[str, ValueRule] | None = None,
                  preprocess: Pipelines | None = None) -> tuple[list[Sample], InputSource]:
    """The inputs every check feeds (calibration, smoke run, parity, rebuild check): the dataset's first
    ``count`` samples when one is given, else seeded synthetic ones under the value rules; and which it was.

    ``preprocess`` prepares a dataset's images; synthetic images of an input it names (and no value rule
    covers) go through its scale, mean and std, so they land in the range the model expects.
    """
    check_sample_size(inputs, shapes, count)
    pipelines = preprocess or {}
    check_pipelines(pipelines, [tensor.name for tensor in (inputs.inputs if isinstance(inputs, ModelInfo) else inputs)])
    if dataset is not None:
        return load_dataset(dataset, inputs, shapes, limit=count, values=values, seed=seed,
                            preprocess=pipelines), "dataset"
    samples = synthetic_samples(inputs, shapes, seed=seed, count=count, values=values)
    for name, pipeline in pipelines.items():
        if name not in (values or {}):
            for sample in samples:
                sample[name] = prepare_synthetic(sample[name], shapes[name], name, pipeline)
    return samples, "synthetic"


def rules_from_record(recorded: object) -> dict[str, ValueRule] | None:
    """The value rules a build recorded as ``input_values`` (see :func:`rules_snapshot`), or None."""
    return per_input_from_record(recorded, ValueRule, "input_values")


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
DATASET_SUFFIXES = ARRAY_SUFFIXES + IMAGE_SUFFIXES + WAV_SUFFIXES
"""The only files a dataset directory is read for (model/containment.py sets the size limits)."""


def load_dataset(
    directory: Path, model: ModelInfo | InputList, shapes: dict[str, list[int]], *, limit: int | None,
    values: dict[str, ValueRule] | None = None, seed: int = 0, preprocess: Pipelines | None = None,
) -> list[Sample]:
    """Read samples in name order: ``.npy``/``.npz`` arrays, images for a single image input, or ``.wav``.

    Arrays must match the input shapes exactly and are taken as already prepared. Images are
    prepared by ``preprocess`` (model/preprocess.py; by default RGB or grey, bilinear stretch to the
    input's height x width, scaled to [0, 1]), NCHW or NHWC as the input's channel dim says; a batch
    of N takes N consecutive images. ``.wav`` files fill the one float input without a value rule
    (model/audio.py); the other inputs follow their value rules, seeded by ``seed``.
    """
    entries = data_files(directory, DATASET_SUFFIXES, "dataset")
    kinds = {kind: [path for path in entries if path.suffix.lower() in suffixes] for kind, suffixes in
             (("arrays", ARRAY_SUFFIXES), ("images", IMAGE_SUFFIXES), (".wav files", WAV_SUFFIXES))}
    present = [kind for kind, paths in kinds.items() if paths]
    if len(present) > 1:
        raise ForgeError(f"dataset directory {directory} mixes {' and '.join(present)}; keep one kind")
    if not entries:
        raise ForgeError(f"dataset directory {directory} holds no .npy, .npz or image files, nor .wav")
    inputs: list[InputRecordLike] = list(model.inputs if isinstance(model, ModelInfo) else model)
    if kinds["images"]:
        return _image_samples(kinds["images"], inputs, shapes, limit, preprocess or {})
    if preprocess:
        raise ForgeError(f"inputs.preprocess prepares images; dataset directory {directory} holds "
                         f"{present[0]}, which are fed as they are: drop inputs.preprocess or use images")
    if kinds[".wav files"]:
        return _wav_samples(kinds[".wav files"], inputs, shapes, limit, values, seed)
    arrays = kinds["arrays"]
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
                   limit: int | None, preprocess: Pipelines) -> list[Sample]:
    if len(inputs) != 1 or len(shapes[inputs[0].name]) != 4:
        raise ForgeError("image datasets need a model with a single 4-D image input; use .npz for others")
    tensor = inputs[0]
    shape = shapes[tensor.name]
    image_layout(tensor.name, shape)
    groups = [paths[i:i + shape[0]] for i in range(0, len(paths) - shape[0] + 1, shape[0])][:limit]
    if not groups:
        raise ForgeError(f"{len(paths)} image(s) cannot fill one batch of {shape[0]}")
    pipeline = preprocess.get(tensor.name)
    return [{tensor.name: np.stack([prepare_image(path, shape, tensor.name, pipeline) for path in group])
             .astype(numpy_dtype(tensor))} for group in groups]


def _wav_samples(paths: list[Path], inputs: list[InputRecordLike], shapes: dict[str, list[int]], limit: int | None,
                 values: dict[str, ValueRule] | None, seed: int) -> list[Sample]:
    """The waveform fills the one float input without a value rule; the others come from their rules."""
    rules = values or {}
    free = [t for t in inputs if t.name not in rules and np.issubdtype(numpy_dtype(t), np.floating)]
    if len(free) != 1:
        raise ForgeError(f"a .wav dataset fills one float input; give value rules (inputs.values) for all other "
                         f"inputs: {', '.join(t.name for t in free) or 'none'} left without one")
    audio = free[0]
    batches = waveform_batches(paths, audio.name, shapes[audio.name], limit)
    others = [t for t in inputs if t is not audio]
    drawn = synthetic_samples(others, shapes, seed=seed, count=len(batches), values=rules) if others else \
        [{} for _ in batches]
    # in the model's input order, as every other sample: a runner that feeds inputs by position (RKNN) needs it
    return [{t.name: batch.astype(numpy_dtype(audio)) if t is audio else sample[t.name] for t in inputs}
            for sample, batch in zip(drawn, batches, strict=True)]


def samples_sha256(samples: list[Sample]) -> str:
    """Hash of the samples' names, dtypes, shapes and bytes, in order."""
    digest = hashlib.sha256()
    for sample in samples:
        for name in sorted(sample):
            array = np.ascontiguousarray(sample[name])
            digest.update(f"{name}|{array.dtype.str}|{array.shape}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()
