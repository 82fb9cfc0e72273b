"""Per-tensor figures of an artifact's tensor against its source's, accumulated one sample at a time.

SQNR is taken per channel (axis 1 of tensors of rank 3 and more, NCHW's channels) and the median over the channels
that carry signal is the tensor's figure: a pooled figure would hide channels swamped by a large neighbour under one
shared scale, which is exactly how range mixing breaks a model, while the worst channel alone would flag every
feature map with a nearly dead channel. Tensors of rank 0 to 2 are pooled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pytest_inferedgeforge.engine.quantization.pairing import Pair, Quantizer

MAX_DB = 200.0
"""The SQNR of an exact match (records are strict JSON: no infinity)."""
RANGE_MIXING_RATIO = 2.0 ** 7
"""Channels sharing one scale whose ranges differ by more than this lose all but one or two of 256 levels."""
SATURATION_FRACTION = 0.001
FLOAT16_MAX = 65504.0
SENSITIVE_OPS = frozenset({"Sigmoid", "Softmax", "LogSoftmax", "LayerNormalization", "GroupNormalization",
                           "InstanceNormalization", "Pow", "Sqrt", "Reciprocal", "Div", "Exp", "Log", "Erf", "Tanh",
                           "HardSigmoid", "Gelu", "FastGelu", "SkipLayerNormalization", "ReduceMean",
                           "ReduceSumSquare", "ReduceL2"})


def _rows(values: np.ndarray, channels: int) -> np.ndarray:
    """``values`` as one row per (sample, channel) for rank 3 and more, else as one row; a view, never a copy of an
    output ONNX Runtime hands back (those are contiguous)."""
    count = values.shape[0] * channels if values.ndim >= 3 else 1
    return values.reshape(count, values.size // count if count else 0)


def _dots(a: np.ndarray, b: np.ndarray, channels: int) -> np.ndarray:
    """Per-channel sums of ``a * b`` over rows from ``_rows``: one BLAS dot product per row, which sums float32 rows
    about as accurately as numpy's pairwise sum and allocates nothing; samples are then added up in float64."""
    dots = np.matmul(a[:, None, :], b[:, :, None]).reshape(-1 if channels else 0, channels)
    return dots[0].astype(np.float64) if len(dots) == 1 else dots.sum(axis=0, dtype=np.float64)


def dequantize(values: np.ndarray, quantizer: Quantizer) -> np.ndarray:
    return ((values.astype(np.float32) - quantizer.zero_point.astype(np.float32)) * quantizer.scale).astype(np.float32)


def _db(signal: np.ndarray, noise: np.ndarray) -> float | None:
    """The median SQNR of the channels that carry signal; None when none does or noise is not finite."""
    carrying = signal > 0
    if not carrying.any() or not np.isfinite(noise[carrying]).all():
        return None
    ratio = float(np.median(noise[carrying] / signal[carrying]))
    return MAX_DB if ratio <= 0 else min(MAX_DB, -10.0 * math.log10(ratio))


@dataclass
class TensorStats:
    """Running sums over samples for one pair; ``finish`` turns them into figures."""

    pair: Pair
    signal: np.ndarray | None = None
    noise: np.ndarray | None = None
    local_noise: np.ndarray | None = None
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    dot: float = 0.0
    source_power: float = 0.0
    artifact_power: float = 0.0
    max_abs_error: float = 0.0
    elements: int = 0
    clipped: int = 0
    non_finite: int = 0
    source_max_abs: float = 0.0
    half: bool = False
    problems: list[str] = field(default_factory=list)

    def add(self, source: np.ndarray, artifact: np.ndarray) -> None:
        if self.pair.dequantize and self.pair.quantizer is not None:
            artifact = dequantize(artifact, self.pair.quantizer)
        self.half = self.half or artifact.dtype == np.float16
        if source.shape != artifact.shape:
            self.problems.append(f"shape {list(artifact.shape)} in the artifact, {list(source.shape)} in the source")
            return
        work = np.result_type(source.dtype, artifact.dtype, np.float32)
        if not self._accumulate(source, artifact, work):  # a non-finite value or a float32 overflow: exactly, again
            self._accumulate(source, artifact, np.dtype(np.float64))

    def _accumulate(self, source: np.ndarray, artifact: np.ndarray, work: np.dtype) -> bool:
        """Add one sample's sums, computed in ``work`` (float32 for float32 and float16 tensors: the difference and
        the quantization error are taken elementwise, each per-channel sum is one BLAS dot product, and channels and
        samples are added up in float64). Below float64, returns False having changed nothing when a sum is not
        finite, so non-finite values are counted, and large values summed, in float64 only when there are some."""
        x, y = source.astype(work, copy=False), artifact.astype(work, copy=False)
        channels = x.shape[1] if x.ndim >= 3 else 1
        exact, finite = work == np.float64, True
        rows_x = _rows(x, channels)
        extremes = (rows_x.min(axis=1), rows_x.max(axis=1)) if x.size else None
        with np.errstate(all="ignore"):
            difference = x - y
            if exact:
                artifact_finite = np.isfinite(y)
                self.non_finite += int((~artifact_finite & np.isfinite(x)).sum())
                finite = bool(artifact_finite.all())
                if not finite:
                    difference = np.where(artifact_finite, difference, np.inf)
            error = self._local_error(x)
            rows_y, rows_d = _rows(y, channels), _rows(difference, channels)
            sums = [_dots(rows_x, rows_x, channels), _dots(rows_d, rows_d, channels)]
            if error is not None:
                rows_e = _rows(error, channels)
                sums.append(_dots(rows_e, rows_e, channels))
            if finite:
                sums += [_dots(rows_x, rows_y, channels), _dots(rows_y, rows_y, channels)]
            totals = [float(values.sum()) for values in sums]  # finite only when every channel's sum is
            if not exact and not all(map(math.isfinite, totals)):
                return False
        self._sum("signal", sums[0])
        self._sum("noise", sums[1])
        if error is not None:
            self._sum("local_noise", sums[2])
        if extremes is not None:
            self._range(x.ndim, *extremes, channels)
            self._clip(x, *extremes)
        self.elements += x.size
        self.source_power += totals[0]
        if finite:
            self.dot += totals[-2]
            self.artifact_power += totals[-1]
            self.max_abs_error = max(self.max_abs_error, float(difference.max(initial=0.0)),
                                     -float(difference.min(initial=0.0)))
        return True

    def _local_error(self, x: np.ndarray) -> np.ndarray | None:
        """The error this tensor's own quantizer alone adds to the source tensor ``x`` (int8), or its half-precision
        cast adds."""
        quantizer = self.pair.quantizer
        if quantizer is not None and quantizer.bounds is not None:
            scale, zero_point = quantizer.scale, quantizer.zero_point.astype(np.float32)
            if quantizer.axis is not None:
                shape = [1] * x.ndim
                shape[quantizer.axis] = -1
                scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
            low, high = quantizer.bounds
            error = np.divide(x, scale)  # ONNX QuantizeLinear then DequantizeLinear: round half to even, saturate
            np.rint(error, out=error)
            np.clip(error, low - zero_point, high - zero_point, out=error)
            np.multiply(error, scale, out=error)
            np.subtract(error, x, out=error)
            return error
        if self.half:
            return x.astype(np.float16).astype(x.dtype) - x
        return None

    def _clip(self, x: np.ndarray, low: np.ndarray, high: np.ndarray) -> None:
        """Count the source values a per-tensor quantizer clips; counted only when some row reaches past its edges."""
        quantizer = self.pair.quantizer
        if quantizer is None or quantizer.axis is not None or quantizer.bounds is None:
            return
        scale, zero_point = quantizer.scale.reshape(-1)[0], np.float32(quantizer.zero_point.reshape(-1)[0])
        bottom, top = ((np.float32(bound) - zero_point) * scale for bound in quantizer.bounds)
        if low.min() < bottom or high.max() > top:
            self.clipped += int(np.count_nonzero(x < bottom) + np.count_nonzero(x > top))

    def _sum(self, name: str, total: np.ndarray) -> None:
        current = getattr(self, name)
        setattr(self, name, total if current is None else current + total)

    def _range(self, rank: int, low: np.ndarray, high: np.ndarray, channels: int) -> None:
        """Per-row minima and maxima of the source: its largest magnitude, and the channels' ranges (rank >= 3)."""
        self.source_max_abs = max(self.source_max_abs, float(high.max()), -float(low.min()))
        if rank < 3:
            return
        low, high = low.reshape(-1, channels).min(axis=0), high.reshape(-1, channels).max(axis=0)
        self.low = low if self.low is None else np.minimum(self.low, low)
        self.high = high if self.high is None else np.maximum(self.high, high)

    @property
    def quantized(self) -> bool:
        return self.pair.quantizer is not None or self.half

    def sqnr_db(self) -> float | None:
        return None if self.signal is None or self.noise is None else _db(self.signal, self.noise)

    def local_sqnr_db(self) -> float | None:
        return None if self.signal is None or self.local_noise is None else _db(self.signal, self.local_noise)

    def cosine(self) -> float | None:
        if self.non_finite or self.elements == 0:
            return None
        if self.source_power == 0 or self.artifact_power == 0:
            return 1.0 if self.source_power == self.artifact_power else 0.0
        return max(-1.0, min(1.0, self.dot / math.sqrt(self.source_power * self.artifact_power)))

    def causes(self, op_type: str, threshold_db: float) -> list[str]:
        causes = []
        quantizer = self.pair.quantizer
        if quantizer is not None and quantizer.axis is None and self.low is not None and self.high is not None:
            ranges = (self.high - self.low)[self.high > self.low]
            if ranges.size > 1 and ranges.max() > RANGE_MIXING_RATIO * ranges.min():
                causes.append("range_mixing")
        if self.elements and self.clipped > SATURATION_FRACTION * self.elements:
            causes.append("saturation")
        if op_type in SENSITIVE_OPS:
            causes.append("sensitive_op")
        if self.half:
            if self.non_finite or self.source_max_abs > FLOAT16_MAX:
                causes.append("overflow")
            elif (sqnr := self.sqnr_db()) is not None and sqnr < threshold_db:
                causes.append("precision_loss")
        return causes
