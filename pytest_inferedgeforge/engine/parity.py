"""Accuracy parity: does the artifact compute what the source model computes?

The reference is the source ONNX run in fp32 by ONNX Runtime on CPU. Both see
the same inputs. One figure over a whole tensor can be fooled: a detector head
``[N, 4+classes, anchors]`` holds box coordinates in pixels beside scores in
[0, 1], so an artifact whose scores all collapsed to 0 still has a whole-tensor
cosine of 0.9999. So per output Forge reports, besides cosine and max/mean
absolute error over the whole tensor:

* non-finite values (NaN, ±inf) in the artifact where the reference is finite:
  they fail the output whatever else it shows, and the figures they would poison
  are recorded as null with the count and the first index beside them;
* the worst single inference (input sample) beside the pooled figures: one bad
  input must not be averaged away by good ones, so cosine and the
  Polygraphy-style tolerances are judged on every inference, as Polygraphy does;
* per-channel cosine along ``channel_axis`` (axis 1 by default), with the
  worst channel named; a channel that varies in the reference but is constant
  in the artifact (collapsed) fails the check whatever the other figures say;
* class agreement along a class axis for any output of rank >= 2 (per sample
  for ``[N, C]``, per time step for ``[N, T, C]``, per anchor for a detection
  head with ``score_channels``): top-1 (same argmax) and top-5 (the
  reference's top-1 is among the artifact's top 5);
* Polygraphy-style ``atol``/``rtol`` on an error statistic, when set.

Thresholds decide pass or fail; every figure is kept. Each helper returns the
fields it computed; :func:`compare_outputs` assembles them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from pytest_inferedgeforge.backends.api import Runner
from pytest_inferedgeforge.model.errors import ForgeError, RunnerError
from pytest_inferedgeforge.model.inputs import Sample
from pytest_inferedgeforge.model.records.evidence import OutputParity, ParityResult
from pytest_inferedgeforge.model.spec import OutputCheck, Thresholds

LISTED_CHANNELS = 20
ZERO_REFERENCE = float(np.finfo(np.float64).eps)
"""What a reference value of exactly 0 counts as under rtol (Polygraphy's epsilon): the relative error stays a
finite, very large number instead of overflowing the statistic to inf."""
Fields = dict[str, Any]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    norm = np.linalg.norm(a64) * np.linalg.norm(b64)
    if norm == 0:
        return 1.0 if np.array_equal(a64, b64) else 0.0
    return float(np.dot(a64, b64) / norm)


def _as_rows(array: np.ndarray) -> np.ndarray:
    """One sample in float64, a scalar as one row, so samples join along the batch axis."""
    return np.asarray(array, dtype=np.float64).reshape(1, -1) if np.ndim(array) == 0 else np.asarray(array, np.float64)


def _axis(axis: int | None, ndim: int) -> int | None:
    if axis is None or not -ndim <= axis < ndim:
        return None
    return axis % ndim


def _default_channel_axis(ndim: int) -> int | None:
    return 1 if ndim >= 3 else None


def _first_non_finite(samples: list[np.ndarray]) -> tuple[int, list[int]]:
    """(inference, element index) of the first non-finite value, in input order."""
    for inference, sample in enumerate(samples):
        flat = np.flatnonzero(~np.isfinite(sample))
        if flat.size:
            return inference, [int(i) for i in np.unravel_index(int(flat[0]), sample.shape)]
    raise AssertionError("called without a non-finite value")


def _refuse_non_finite_reference(name: str, reference: list[np.ndarray]) -> None:
    """A reference that is not finite makes every figure meaningless: that is the inputs' fault, not the artifact's."""
    count = sum(int(np.count_nonzero(~np.isfinite(sample))) for sample in reference)
    if count:
        inference, index = _first_non_finite(reference)
        raise ForgeError(
            f"the reference itself gives {count} non-finite value(s) (NaN or inf) for output '{name}' on these "
            f"inputs, first at inference {inference} index {index}; parity needs finite reference outputs: give "
            "inputs the model is meant for (inputs.dataset, or value rules in inputs.values)")


def _non_finite(candidate: list[np.ndarray]) -> Fields:
    """Count and locate the artifact's NaN/±inf values (the reference is known to be finite here)."""
    stacked = np.concatenate([sample.ravel() for sample in candidate])
    bad = ~np.isfinite(stacked)
    count = int(np.count_nonzero(bad))
    if not count:
        return {}
    inference, index = _first_non_finite(candidate)
    kinds = {"nan": int(np.count_nonzero(np.isnan(stacked))), "+inf": int(np.count_nonzero(stacked == np.inf)),
             "-inf": int(np.count_nonzero(stacked == -np.inf))}
    return {"non_finite_elements": count, "non_finite_kinds": {k: v for k, v in kinds.items() if v},
            "first_non_finite_inference": inference, "first_non_finite_index": index,
            "figures_note": (f"cosine and errors not computed: the artifact gives {count} non-finite value(s) where "
                             "the source model is finite")}


def _per_inference(reference: list[np.ndarray], candidate: list[np.ndarray]) -> Fields:
    """The worst inference's cosine and max abs error (indices into the inputs)."""
    cosines = [_cosine(r, g) for r, g in zip(reference, candidate, strict=True)]
    maxima = [float(np.abs(r - g).max()) if r.size else 0.0 for r, g in zip(reference, candidate, strict=True)]
    worst = int(np.argmin(cosines))
    return {"min_inference_cosine": round(cosines[worst], 8), "min_cosine_inference": worst,
            "max_abs_error_inference": int(np.argmax(maxima))}


def _per_channel(ref: np.ndarray, got: np.ndarray, check: OutputCheck) -> Fields:
    """Per-channel cosine over all inferences pooled: a channel flat on one input is no evidence of a collapse."""
    axis = _axis(check.channel_axis if check.channel_axis is not None else _default_channel_axis(ref.ndim), ref.ndim)
    if not check.per_channel or axis is None or ref.ndim < 2 or ref.shape[axis] < 2:
        return {}
    ref_c = np.moveaxis(ref, axis, 0).reshape(ref.shape[axis], -1)
    got_c = np.moveaxis(got, axis, 0).reshape(got.shape[axis], -1)
    cosines = np.array([_cosine(r, g) for r, g in zip(ref_c, got_c, strict=True)])
    # "Varies" means more than float16 can resolve around the channel's own values (so an fp16
    # artifact of a channel with a large offset is not called collapsed) and more than a
    # negligible share of the whole output's range.
    ref_span = np.ptp(ref_c, axis=1)
    varies = (ref_span > 1e-3 * np.abs(ref_c).max(axis=1)) & (ref_span > max(1e-7 * float(np.abs(ref).max()), 1e-12))
    collapsed = np.flatnonzero(varies & (np.ptp(got_c, axis=1) == 0))
    worst = int(np.argmin(cosines))
    return {"channel_axis": axis, "channels": int(ref.shape[axis]), "min_channel": worst,
            "min_channel_cosine": round(float(cosines[worst]), 8),
            "collapsed_channels": [int(c) for c in collapsed[:LISTED_CHANNELS]],
            "collapsed_channels_total": int(collapsed.size)}


def _default_class_axis(ndim: int) -> int | None:
    return {1: None, 2: 1, 3: 2}.get(ndim, 1)


def _classes(ref: np.ndarray, got: np.ndarray, check: OutputCheck) -> Fields:
    axis = _axis(check.class_axis if check.class_axis is not None else _default_class_axis(ref.ndim), ref.ndim)
    if not check.classes or axis is None or ref.ndim < 2:
        return {}
    start, stop = check.score_channels or (0, ref.shape[axis])
    ref_s = np.moveaxis(np.take(ref, range(start, min(stop, ref.shape[axis])), axis=axis), axis, -1)
    got_s = np.moveaxis(np.take(got, range(start, min(stop, got.shape[axis])), axis=axis), axis, -1)
    classes = ref_s.shape[-1]
    if classes < 2:
        return {}
    ref_s, got_s = ref_s.reshape(-1, classes), got_s.reshape(-1, classes)
    fields: Fields = {"class_axis": axis, "score_channels": [start, start + classes]}
    if check.min_score is not None:
        confident = ref_s.max(axis=1) >= check.min_score
        ref_s, got_s = ref_s[confident], got_s[confident]
        fields["min_score"] = check.min_score
    fields["class_positions"] = int(ref_s.shape[0])
    if ref_s.shape[0] == 0:
        return fields
    ref_top1 = ref_s.argmax(axis=1)
    k = min(5, classes)
    top_k = np.argpartition(-got_s, k - 1, axis=1)[:, :k]
    return {**fields, "top1_agreement": round(float(np.mean(ref_top1 == got_s.argmax(axis=1))), 6),
            "top5_agreement": round(float(np.mean((top_k == ref_top1[:, None]).any(axis=1))), 6)}


def _statistic(values: np.ndarray, check: OutputCheck) -> float:
    if not values.size:
        return 0.0
    quantile = {"max": 1.0, "median": 0.5, "quantile": check.error_quantile}.get(check.error_stat)
    return float(np.mean(values)) if quantile is None else float(np.quantile(values, quantile))


def _within(abs_error: np.ndarray | float, rel_error: np.ndarray | float, check: OutputCheck) -> Any:
    """Polygraphy's rule: a value fails only when it is outside atol *and* outside rtol (an unset one: outside)."""
    outside_atol = abs_error > check.atol if check.atol is not None else True
    outside_rtol = rel_error > check.rtol if check.rtol is not None else True
    return ~(np.asarray(outside_atol) & np.asarray(outside_rtol))


def _tolerances(reference: list[np.ndarray], candidate: list[np.ndarray], check: OutputCheck) -> Fields:
    """atol/rtol judged on each inference on its own (Polygraphy compares iteration by iteration); the worst
    inference's statistic is the judged figure, the statistic over all inferences pooled is kept beside it."""
    if check.atol is None and check.rtol is None:
        return {}
    diffs = [np.abs(r - g) for r, g in zip(reference, candidate, strict=True)]
    relatives = [d / np.where(r == 0, ZERO_REFERENCE, np.abs(r)) for d, r in zip(diffs, reference, strict=True)]
    if check.error_stat == "elemwise":
        outside = [int(np.count_nonzero(~_within(d, rel, check))) for d, rel in zip(diffs, relatives, strict=True)]
        worst = int(np.argmax(outside))
        return {"error_stat": "elemwise", "tolerance_failures": sum(outside),
                "tolerance_failed_inferences": sum(1 for count in outside if count), "error_stat_inference": worst}
    abs_stats = [_statistic(d.ravel(), check) for d in diffs]
    rel_stats = [_statistic(rel.ravel(), check) for rel in relatives]
    passed = [bool(_within(a, r, check)) for a, r in zip(abs_stats, rel_stats, strict=True)]
    failing = [i for i, ok in enumerate(passed) if not ok]
    worst = max(failing or range(len(abs_stats)), key=lambda i: abs_stats[i])
    pooled_abs = np.concatenate([d.ravel() for d in diffs])
    pooled_rel = np.concatenate([rel.ravel() for rel in relatives])
    return {"error_stat": check.error_stat, "abs_error_stat": abs_stats[worst], "rel_error_stat": rel_stats[worst],
            "error_stat_inference": worst, "tolerance_failed_inferences": len(failing),
            "pooled_abs_error_stat": _statistic(pooled_abs, check), "pooled_rel_error_stat": _statistic(pooled_rel, check)}


def compare_outputs(name: str, reference: list[np.ndarray], candidate: list[np.ndarray],
                    check: OutputCheck | None = None) -> OutputParity:
    """One output's figures over every inference (``reference[i]`` and ``candidate[i]``: inference ``i``)."""
    check = check or OutputCheck()
    refs, gots = [_as_rows(a) for a in reference], [_as_rows(a) for a in candidate]
    ref, got = np.concatenate(refs), np.concatenate(gots)
    if ref.shape != got.shape or any(r.shape != g.shape for r, g in zip(refs, gots, strict=True)):
        raise RunnerError(f"output '{name}' has shape {list(got.shape)} but the source model gives {list(ref.shape)}")
    _refuse_non_finite_reference(name, refs)
    base: Fields = {"name": name, "shape": list(np.shape(reference[0])), "inferences": len(refs)}
    non_finite = _non_finite(gots)
    if non_finite:
        return OutputParity(**base, **non_finite, cosine=None, max_abs_error=None, mean_abs_error=None)
    diff = np.abs(ref - got)
    return OutputParity(
        **base, cosine=round(_cosine(ref, got), 8),
        max_abs_error=float(diff.max()) if diff.size else 0.0, mean_abs_error=float(diff.mean()) if diff.size else 0.0,
        **_per_inference(refs, gots), **_per_channel(ref, got, check), **_classes(ref, got, check),
        **_tolerances(refs, gots, check),
    )


def _tolerance_failure(output: OutputParity, check: OutputCheck) -> str | None:
    inferences = f"{output.tolerance_failed_inferences} of {output.inferences} inference(s)"
    if output.tolerance_failures:
        return (f"output '{output.name}': {output.tolerance_failures} element(s) outside atol {check.atol} "
                f"and rtol {check.rtol} on {inferences}")
    if not output.tolerance_failed_inferences or output.abs_error_stat is None or output.rel_error_stat is None:
        return None
    return (f"output '{output.name}': {inferences} outside the tolerance; worst, inference "
            f"{output.error_stat_inference}: {output.error_stat} abs error {output.abs_error_stat:.6g} > atol "
            f"{check.atol} and {output.error_stat} rel error {output.rel_error_stat:.6g} > rtol {check.rtol} "
            f"(all inferences pooled: {output.pooled_abs_error_stat:.6g})")


def lowest_cosine(output: OutputParity) -> float | None:
    """The output's judged cosine: the lower of the pooled one and its worst inference's."""
    values = [value for value in (output.cosine, output.min_inference_cosine) if value is not None]
    return min(values) if values else None


def _non_finite_failure(output: OutputParity) -> str:
    kinds = ", ".join(f"{kind} {count}" for kind, count in (output.non_finite_kinds or {}).items())
    return (f"output '{output.name}': non-finite values in the artifact where the source model is finite: "
            f"{output.non_finite_elements} element(s) ({kinds}), first at inference {output.first_non_finite_inference} "
            f"index {output.first_non_finite_index}")


def _cosine_failure(output: OutputParity, limit: float) -> str | None:
    judged = lowest_cosine(output)
    if judged is None or judged >= limit:
        return None
    where = (f" (inference {output.min_cosine_inference}; all inferences pooled: {output.cosine:.6f})"
             if output.min_inference_cosine is not None and judged < (output.cosine or 0) else "")
    shown = f"{judged:.6f}" if float(f"{judged:.6f}") < limit else f"{judged:.10g}"  # never "1.000000 < 1.0"
    return f"output '{output.name}': cosine {shown} < min_cosine {limit}{where}"


def _threshold_failures(output: OutputParity, thresholds: Thresholds) -> list[str]:
    failures = []
    if thresholds.min_cosine is not None and (failure := _cosine_failure(output, thresholds.min_cosine)):
        failures.append(failure)
    if (thresholds.min_channel_cosine is not None and output.min_channel_cosine is not None
            and output.min_channel_cosine < thresholds.min_channel_cosine):
        failures.append(f"output '{output.name}': channel {output.min_channel} (axis {output.channel_axis}) cosine "
                        f"{output.min_channel_cosine:.6f} < min_channel_cosine {thresholds.min_channel_cosine}")
    if (thresholds.max_abs_error is not None and output.max_abs_error is not None
            and output.max_abs_error > thresholds.max_abs_error):
        failures.append(f"output '{output.name}': max_abs_error {output.max_abs_error:.6g} > "
                        f"max_abs_error {thresholds.max_abs_error} (inference {output.max_abs_error_inference})")
    if (thresholds.min_top1_agreement is not None and output.top1_agreement is not None
            and output.top1_agreement < thresholds.min_top1_agreement):
        judged_on = (f" (on the {output.class_positions} position(s) whose reference score reaches "
                     f"{output.min_score})" if output.min_score is not None else "")
        failures.append(f"output '{output.name}': top-1 agreement {output.top1_agreement:.3f} < "
                        f"min_top1_agreement {thresholds.min_top1_agreement}{judged_on}")
    return failures


def _unjudged_classes(outputs: list[OutputParity]) -> list[str]:
    """A min_score no reference position reaches leaves class agreement unmeasured: said, never a silent pass."""
    return [f"output '{o.name}': top-1 agreement not established: no position's reference score reaches "
            f"min_score {o.min_score}" for o in outputs if o.min_score is not None and o.class_positions == 0]


def judge(outputs: list[OutputParity], thresholds: Thresholds, checks: dict[str, OutputCheck] | None = None) -> list[str]:
    failures = []
    for output in outputs:
        if output.non_finite_elements:
            failures.append(_non_finite_failure(output))
            continue
        if output.collapsed_channels_total:
            failures.append(
                f"output '{output.name}': {output.collapsed_channels_total} of {output.channels} channel(s) along "
                f"axis {output.channel_axis} vary in the source model but are constant in the artifact (collapsed), "
                f"channels {_ranges(output.collapsed_channels)}"
                + ("..." if output.collapsed_channels_total > len(output.collapsed_channels) else "")
                + f"; whole-tensor cosine {output.cosine:.6f} hides it")
        failures += _threshold_failures(output, thresholds)
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


def _extreme(values: list[float | None], pick: Callable[[list[float]], float]) -> float | None:
    """``pick`` of the outputs' figures; None when any output could not be measured, so a missing figure never
    lets another output's stand for it."""
    known = [value for value in values if value is not None]
    return pick(known) if known and len(known) == len(values) else None


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
    warnings: list[str] | None = None,
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
    channel = [o.min_channel_cosine for o in outputs if o.min_channel_cosine is not None]
    return ParityResult(
        samples=len(reference_outputs), input_source=input_source, inputs_sha256=inputs_sha256, candidate=candidate,
        evidence=evidence, outputs=outputs, min_cosine=_extreme([lowest_cosine(o) for o in outputs], min),
        max_abs_error=_extreme([o.max_abs_error for o in outputs], max),
        top1_agreement=min(top1) if top1 else None, min_channel_cosine=min(channel) if channel else None,
        thresholds=thresholds, passed=not failures, failures=failures,
        warnings=[*(warnings or []), *_unjudged_classes(outputs)],
    )


def run_all(runner: Runner, samples: list[Sample]) -> list[list[np.ndarray]]:
    return [runner.run(sample) for sample in samples]
