"""Accuracy parity: does the artifact compute what the source model computes?

The reference is the source ONNX run in fp32 by ONNX Runtime on CPU. Both see
the same inputs. One figure over a whole tensor can be fooled: a detector head
``[N, 4+classes, anchors]`` holds box coordinates in pixels beside scores in
[0, 1], so an artifact whose scores all collapsed to 0 still has a whole-tensor
cosine of 0.9999. So per output Forge reports, besides cosine and max/mean
absolute error over the whole tensor:

* per-channel cosine along ``channel_axis`` (axis 1 by default), with the
  worst channel named; a channel that varies in the reference but is constant
  in the artifact (collapsed) fails the check whatever the other figures say;
* class agreement along a class axis for any output of rank >= 2 (per sample
  for ``[N, C]``, per time step for ``[N, T, C]``, per anchor for a detection
  head with ``score_channels``): top-1 (same argmax) and top-5 (the
  reference's top-1 is among the artifact's top 5);
* Polygraphy-style ``atol``/``rtol`` on an error statistic, when set.

Thresholds decide pass or fail; every figure is kept.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from pytest_inferedgeforge.backends.api import Runner
from pytest_inferedgeforge.model.errors import RunnerError
from pytest_inferedgeforge.model.inputs import Sample
from pytest_inferedgeforge.model.records.evidence import OutputParity, ParityResult
from pytest_inferedgeforge.model.spec import OutputCheck, Thresholds

LISTED_CHANNELS = 20








def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    norm = np.linalg.norm(a64) * np.linalg.norm(b64)
    if norm == 0:
        return 1.0 if np.array_equal(a64, b64) else 0.0
    return float(np.dot(a64, b64) / norm)


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    """Samples joined along the batch axis (scalars become one row each), in float64."""
    return np.concatenate([np.asarray(a, dtype=np.float64).reshape(1, -1) if np.ndim(a) == 0
                           else np.asarray(a, dtype=np.float64) for a in arrays])


def _axis(axis: int | None, ndim: int) -> int | None:
    if axis is None or not -ndim <= axis < ndim:
        return None
    return axis % ndim


def _default_channel_axis(ndim: int) -> int | None:
    return 1 if ndim >= 3 else None


def _per_channel(parity: OutputParity, ref: np.ndarray, got: np.ndarray, check: OutputCheck) -> None:
    axis = _axis(check.channel_axis if check.channel_axis is not None else _default_channel_axis(ref.ndim), ref.ndim)
    if not check.per_channel or axis is None or ref.ndim < 2 or ref.shape[axis] < 2:
        return
    ref_c = np.moveaxis(ref, axis, 0).reshape(ref.shape[axis], -1)
    got_c = np.moveaxis(got, axis, 0).reshape(got.shape[axis], -1)
    cosines = np.array([_cosine(r, g) for r, g in zip(ref_c, got_c, strict=True)])
    # "Varies" means more than float16 can resolve around the channel's own values (so an fp16
    # artifact of a channel with a large offset is not called collapsed) and more than a
    # negligible share of the whole output's range.
    ref_span = np.ptp(ref_c, axis=1)
    varies = (ref_span > 1e-3 * np.abs(ref_c).max(axis=1)) & (ref_span > max(1e-7 * float(np.abs(ref).max()), 1e-12))
    collapsed = np.flatnonzero(varies & (np.ptp(got_c, axis=1) == 0))
    parity.channel_axis, parity.channels = axis, int(ref.shape[axis])
    parity.min_channel = int(np.argmin(cosines))
    parity.min_channel_cosine = round(float(cosines[parity.min_channel]), 8)
    parity.collapsed_channels = [int(c) for c in collapsed[:LISTED_CHANNELS]]
    parity.collapsed_channels_total = int(collapsed.size)


def _default_class_axis(ndim: int) -> int | None:
    return {1: None, 2: 1, 3: 2}.get(ndim, 1)


def _classes(parity: OutputParity, ref: np.ndarray, got: np.ndarray, check: OutputCheck) -> None:
    axis = _axis(check.class_axis if check.class_axis is not None else _default_class_axis(ref.ndim), ref.ndim)
    if not check.classes or axis is None or ref.ndim < 2:
        return
    start, stop = check.score_channels or (0, ref.shape[axis])
    ref_s = np.moveaxis(np.take(ref, range(start, min(stop, ref.shape[axis])), axis=axis), axis, -1)
    got_s = np.moveaxis(np.take(got, range(start, min(stop, got.shape[axis])), axis=axis), axis, -1)
    classes = ref_s.shape[-1]
    if classes < 2:
        return
    ref_s, got_s = ref_s.reshape(-1, classes), got_s.reshape(-1, classes)
    ref_top1 = ref_s.argmax(axis=1)
    k = min(5, classes)
    top_k = np.argpartition(-got_s, k - 1, axis=1)[:, :k]
    parity.class_axis, parity.score_channels = axis, [start, start + classes]
    parity.top1_agreement = round(float(np.mean(ref_top1 == got_s.argmax(axis=1))), 6)
    parity.top5_agreement = round(float(np.mean((top_k == ref_top1[:, None]).any(axis=1))), 6)


def _tolerances(parity: OutputParity, ref: np.ndarray, diff: np.ndarray, check: OutputCheck) -> None:
    if check.atol is None and check.rtol is None:
        return
    relative = diff / np.maximum(np.abs(ref), np.finfo(np.float64).tiny)
    parity.error_stat = check.error_stat
    if check.error_stat == "elemwise":
        atol = check.atol if check.atol is not None else -1.0
        rtol = check.rtol if check.rtol is not None else -1.0
        parity.tolerance_failures = int(np.count_nonzero((diff > atol) & (relative > rtol)))
        return
    quantile = {"max": 1.0, "median": 0.5, "quantile": check.error_quantile}.get(check.error_stat)

    def statistic(values: np.ndarray) -> float:
        if not values.size:
            return 0.0
        return float(np.mean(values)) if quantile is None else float(np.quantile(values, quantile))

    parity.abs_error_stat = statistic(diff)
    parity.rel_error_stat = statistic(relative)


def compare_outputs(name: str, reference: list[np.ndarray], candidate: list[np.ndarray],
                    check: OutputCheck | None = None) -> OutputParity:
    check = check or OutputCheck()
    ref, got = _stack(reference), _stack(candidate)
    if ref.shape != got.shape:
        raise RunnerError(f"output '{name}' has shape {list(got.shape)} but the source model gives {list(ref.shape)}")
    diff = np.abs(ref - got)
    parity = OutputParity(
        name=name, shape=list(np.shape(reference[0])), cosine=round(_cosine(ref, got), 8),
        max_abs_error=float(diff.max()) if diff.size else 0.0, mean_abs_error=float(diff.mean()) if diff.size else 0.0,
    )
    _per_channel(parity, ref, got, check)
    _classes(parity, ref, got, check)
    _tolerances(parity, ref, diff, check)
    return parity


def _tolerance_failure(output: OutputParity, check: OutputCheck) -> str | None:
    if output.tolerance_failures:
        return (f"output '{output.name}': {output.tolerance_failures} element(s) outside atol {check.atol} "
                f"and rtol {check.rtol}")
    if output.abs_error_stat is None or output.rel_error_stat is None:
        return None
    within_atol = check.atol is not None and output.abs_error_stat <= check.atol
    within_rtol = check.rtol is not None and output.rel_error_stat <= check.rtol
    if within_atol or within_rtol:
        return None
    return (f"output '{output.name}': {output.error_stat} abs error {output.abs_error_stat:.6g} > atol {check.atol} "
            f"and {output.error_stat} rel error {output.rel_error_stat:.6g} > rtol {check.rtol}")


def judge(outputs: list[OutputParity], thresholds: Thresholds, checks: dict[str, OutputCheck] | None = None) -> list[str]:
    failures = []
    for output in outputs:
        if output.collapsed_channels_total:
            failures.append(
                f"output '{output.name}': {output.collapsed_channels_total} of {output.channels} channel(s) along "
                f"axis {output.channel_axis} vary in the source model but are constant in the artifact (collapsed), "
                f"channels {_ranges(output.collapsed_channels)}"
                + ("..." if output.collapsed_channels_total > len(output.collapsed_channels) else "")
                + f"; whole-tensor cosine {output.cosine:.6f} hides it")
        if thresholds.min_cosine is not None and output.cosine < thresholds.min_cosine:
            failures.append(f"output '{output.name}': cosine {output.cosine:.6f} < min_cosine {thresholds.min_cosine}")
        if (thresholds.min_channel_cosine is not None and output.min_channel_cosine is not None
                and output.min_channel_cosine < thresholds.min_channel_cosine):
            failures.append(f"output '{output.name}': channel {output.min_channel} (axis {output.channel_axis}) cosine "
                            f"{output.min_channel_cosine:.6f} < min_channel_cosine {thresholds.min_channel_cosine}")
        if thresholds.max_abs_error is not None and output.max_abs_error > thresholds.max_abs_error:
            failures.append(f"output '{output.name}': max_abs_error {output.max_abs_error:.6g} > "
                            f"max_abs_error {thresholds.max_abs_error}")
        if (thresholds.min_top1_agreement is not None and output.top1_agreement is not None
                and output.top1_agreement < thresholds.min_top1_agreement):
            failures.append(f"output '{output.name}': top-1 agreement {output.top1_agreement:.3f} < "
                            f"min_top1_agreement {thresholds.min_top1_agreement}")
        tolerance = _tolerance_failure(output, (checks or {}).get(output.name, OutputCheck()))
        if tolerance:
            failures.append(tolerance)
    return failures


def _ranges(indices: list[int]) -> str:
    """``[4, 5, 6, 9]`` -> ``4-6, 9``."""
    groups: list[list[int]] = []
    for index in indices:
        if groups and groups[-1][-1] == index - 1:
            groups[-1].append(index)
        else:
            groups.append([index])
    return ", ".join(f"{g[0]}-{g[-1]}" if len(g) > 1 else str(g[0]) for g in groups)


def check_parity(
    reference_outputs: list[list[np.ndarray]],
    candidate_outputs: list[list[np.ndarray]],
    output_names: list[str],
    *,
    thresholds: Thresholds,
    input_source: Literal["synthetic", "dataset"],
    inputs_sha256: str,
    candidate: str,
    checks: dict[str, OutputCheck] | None = None,
    evidence: str = "artifact",
) -> ParityResult:
    """Compare per-sample outputs of the reference and the candidate, output by output."""
    checks = checks or {}
    outputs = [
        compare_outputs(name, [sample[index] for sample in reference_outputs],
                        [sample[index] for sample in candidate_outputs], checks.get(name))
        for index, name in enumerate(output_names)
    ]
    failures = judge(outputs, thresholds, checks)
    top1 = [o.top1_agreement for o in outputs if o.top1_agreement is not None]
    return ParityResult(
        samples=len(reference_outputs), input_source=input_source, inputs_sha256=inputs_sha256, candidate=candidate,
        evidence=evidence,
        outputs=outputs, min_cosine=min(o.cosine for o in outputs),
        max_abs_error=max(o.max_abs_error for o in outputs), top1_agreement=min(top1) if top1 else None,
        min_channel_cosine=min(channel) if (channel := [o.min_channel_cosine for o in outputs
                                                         if o.min_channel_cosine is not None]) else None,
        thresholds=thresholds, passed=not failures, failures=failures,
    )


def run_all(runner: Runner, samples: list[Sample]) -> list[list[np.ndarray]]:
    return [runner.run(sample) for sample in samples]
