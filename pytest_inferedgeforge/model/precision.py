"""The precisions Forge builds: one definition for presets, specs, backends and markers."""

from __future__ import annotations

from typing import Literal, get_args

Precision = Literal["fp32", "fp16", "int8"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
