"""How a dataset's images become a model's input tensor: resize, scale, mean/std, channel order, layout.

A model sees its inputs after a preprocessing pipeline that lives outside the
ONNX graph (ImageNet mean/std, BGR order, YOLO letterboxing). Calibrating or
checking parity on differently prepared images measures a model nobody runs, so
a spec declares the pipeline per input (``inputs.preprocess.<input>``) and the
same one prepares calibration and evaluation images. It is recorded in the
manifest and is part of the build key (engine/build_key.py).

Without a declaration an image is stretched (bilinear) to the input's height x
width and scaled to [0, 1], RGB: the behaviour older records were built with.
Layout (NCHW or NHWC) and the target size come from the input's shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, ValidationError, model_validator

from pytest_inferedgeforge.model.errors import ForgeError, RecordError, describe_validation_error
from pytest_inferedgeforge.model.extras import require

LETTERBOX_PAD = 114.0
"""Letterbox padding in pixel units (0-255) when none is given: the grey YOLO exporters pad with."""


class Preprocess(BaseModel):
    """One image input's preprocessing, in the order applied: resize, channel order, scale, mean, std."""

    model_config = ConfigDict(extra="forbid")

    resize: Literal["stretch", "letterbox", "center_crop"] = Field("stretch", description=(
        "stretch: bilinear to height x width, aspect ratio lost; letterbox: fit inside, keep the aspect ratio, "
        "pad the rest with pad_value (centred); center_crop: cover, keep the aspect ratio, crop the centre."))
    pad_value: float | None = Field(None, ge=0, le=255, description=(
        f"letterbox only: padding in pixel units 0-255, before scaling (default {LETTERBOX_PAD:g})."))
    scale: PositiveFloat = Field(1 / 255, description="Pixels (0-255) are multiplied by this (default 1/255).")
    mean: list[float] | None = Field(None, min_length=1, max_length=3, description=(
        "Subtracted after scaling, per channel in the input's channel order (one value: every channel)."))
    std: list[float] | None = Field(None, min_length=1, max_length=3, description=(
        "Divided by after subtracting the mean, per channel in the input's channel order."))
    channel_order: Literal["rgb", "bgr"] = Field("rgb", description="Order of a 3-channel input's channels.")

    @model_validator(mode="after")
    def _consistent(self) -> Preprocess:
        if self.pad_value is not None and self.resize != "letterbox":
            raise ValueError(f"pad_value applies to resize: letterbox, not resize: {self.resize}")
        if self.resize == "letterbox" and self.pad_value is None:
            self.pad_value = LETTERBOX_PAD  # recorded resolved, so the build key states the padding
        if self.std is not None and any(value == 0 for value in self.std):
            raise ValueError("std holds a zero: every channel's std must be non-zero")
        return self

    def normalise(self, array: np.ndarray, channel_axis: int) -> np.ndarray:
        """Scaled values (float64) minus the mean, over the std, broadcast along ``channel_axis``."""
        channels = array.shape[channel_axis]
        for name, values in (("mean", self.mean), ("std", self.std)):
            if values is not None and len(values) not in (1, channels):
                raise ForgeError(f"preprocess {name} has {len(values)} values; the input has {channels} channel(s)")
        shape = [1] * array.ndim
        shape[channel_axis] = -1
        if self.mean is not None:
            array = array - np.asarray(self.mean, dtype=np.float64).reshape(shape)
        if self.std is not None:
            array = array / np.asarray(self.std, dtype=np.float64).reshape(shape)
        return array


Pipelines = dict[str, Preprocess]


def preprocess_snapshot(pipelines: Pipelines | None) -> dict[str, dict[str, Any]] | None:
    """The pipelines as recorded in the manifest and hashed into the build key: every resolved field."""
    if not pipelines:
        return None
    return {name: pipeline.model_dump(mode="json", exclude_none=True) for name, pipeline in sorted(pipelines.items())}


PerInput = TypeVar("PerInput", bound=BaseModel)


def per_input_from_record(recorded: object, model: type[PerInput], field: str) -> dict[str, PerInput] | None:
    """A build record's per-input settings (``field``: ``preprocess``, ``input_values``) as ``model``s, or None."""
    if not isinstance(recorded, dict) or not recorded:
        return None
    try:
        return {name: model.model_validate(value) for name, value in recorded.items()}
    except ValidationError as exc:  # a record written by hand or damaged: the user's to fix, not a crash
        raise RecordError(describe_validation_error(exc, f"the record's {field}")) from exc


def preprocess_from_record(recorded: object) -> Pipelines | None:
    """The pipelines a build recorded as ``preprocess`` (see :func:`preprocess_snapshot`), or None."""
    return per_input_from_record(recorded, Preprocess, "preprocess")


def check_pipelines(pipelines: Pipelines | None, inputs: list[str]) -> None:
    """Refuse a pipeline for an input the model does not have, naming the ones it has."""
    unknown = sorted(set(pipelines or {}) - set(inputs))
    if unknown:
        raise ForgeError(f"inputs.preprocess names unknown input(s) {', '.join(unknown)}; the model's inputs are "
                         + ", ".join(inputs))


def image_layout(name: str, shape: list[int]) -> tuple[bool, int, int, int]:
    """(channels first, channels, height, width) of a 4-D image input: NCHW when dim 1 is 1 or 3, else NHWC."""
    if len(shape) != 4:
        raise ForgeError(f"input '{name}' {shape} is not a 4-D image input; use .npz for others")
    channels_first = shape[1] in (1, 3)
    channels, height, width = shape[1:] if channels_first else (shape[3], shape[1], shape[2])
    if channels not in (1, 3):
        raise ForgeError(f"input '{name}' {shape} has no 1- or 3-channel axis for images")
    return channels_first, channels, height, width


def _resized(image: Any, width: int, height: int, pipeline: Preprocess) -> np.ndarray:
    """HWC float64 pixels (0-255) of ``height`` x ``width`` from a decoded PIL image."""
    from PIL import Image

    bilinear = Image.Resampling.BILINEAR
    if pipeline.resize == "stretch":
        return np.asarray(image.resize((width, height), bilinear), dtype=np.float64)
    w, h = image.size
    if pipeline.resize == "letterbox":
        ratio = min(width / w, height / h)
        inner = (max(1, min(width, round(w * ratio))), max(1, min(height, round(h * ratio))))
        pixels = np.asarray(image.resize(inner, bilinear), dtype=np.float64)
        canvas = np.full((height, width, *pixels.shape[2:]), pipeline.pad_value, dtype=np.float64)
        top, left = (height - inner[1]) // 2, (width - inner[0]) // 2
        canvas[top:top + inner[1], left:left + inner[0]] = pixels
        return canvas
    ratio = max(width / w, height / h)
    outer = (max(width, round(w * ratio)), max(height, round(h * ratio)))
    top, left = (outer[1] - height) // 2, (outer[0] - width) // 2
    return np.asarray(image.resize(outer, bilinear).crop((left, top, left + width, top + height)), dtype=np.float64)


def prepare_image(path: Path, shape: list[int], name: str, pipeline: Preprocess | None) -> np.ndarray:
    """One image file as one batch entry of input ``name`` (CHW or HWC, float64), prepared by ``pipeline``."""
    require("PIL", "an image dataset")
    from PIL import Image, UnidentifiedImageError

    channels_first, channels, height, width = image_layout(name, shape)
    pipeline = pipeline or Preprocess()
    if pipeline.channel_order == "bgr" and channels != 3:
        raise ForgeError(f"preprocess channel_order bgr needs 3 channels; input '{name}' {shape} has {channels}")
    try:
        with Image.open(path) as image:
            pixels = _resized(image.convert("RGB" if channels == 3 else "L"), width, height, pipeline)
    except (UnidentifiedImageError, OSError) as exc:
        raise ForgeError(f"{path}: cannot decode image: {exc}") from exc
    pixels = pixels.reshape(height, width, channels)
    if pipeline.channel_order == "bgr":
        pixels = pixels[..., ::-1]
    array = pipeline.normalise(pixels * pipeline.scale, channel_axis=2)
    return array.transpose(2, 0, 1) if channels_first else array


def prepare_synthetic(draw: np.ndarray, shape: list[int], name: str, pipeline: Preprocess) -> np.ndarray:
    """A synthetic image (uniform in [0, 1), standing for pixels / 255) put through ``pipeline``'s scale,
    mean and std, so seeded inputs land in the range the model expects."""
    channels_first, _, _, _ = image_layout(name, shape)
    array = pipeline.normalise(draw.astype(np.float64) * 255.0 * pipeline.scale, channel_axis=1 if channels_first else 3)
    return array.astype(draw.dtype)
