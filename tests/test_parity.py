"""Parity figures that one dominant range cannot fool."""

import json

import numpy as np
import pytest

from pytest_inferedgeforge.engine.parity import check_parity, compare_outputs, judge
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.spec import OutputCheck, Thresholds, effective_thresholds

RNG = np.random.default_rng(3)
YOLO = OutputCheck(class_axis=1, score_channels=(4, 22))


def _yolo_head(samples: int = 4) -> list[np.ndarray]:
    """[1, 4 + 18, anchors]: boxes in pixels beside sigmoid scores."""
    heads = []
    for _ in range(samples):
        boxes = RNG.uniform(0, 320, (1, 4, 300))
        scores = 1 / (1 + np.exp(-RNG.normal(-4, 2, (1, 18, 300))))
        heads.append(np.concatenate([boxes, scores], axis=1).astype(np.float32))
    return heads


def test_collapsed_scores_fail_although_the_whole_tensor_cosine_passes() -> None:
    reference = _yolo_head()
    collapsed = [head.copy() for head in reference]
    for head in collapsed:
        head[:, 4:] = 0.0
    parity = compare_outputs("output0", reference, collapsed, YOLO)
    assert parity.cosine > 0.999
    assert parity.collapsed_channels_total == 18 and parity.collapsed_channels[:2] == [4, 5]
    failures = judge([parity], Thresholds(min_cosine=0.99))
    assert failures == [f"output 'output0': 18 of 22 channel(s) along axis 1 vary in the source model but are "
                        f"constant in the artifact (collapsed), channels 4-21; whole-tensor cosine "
                        f"{parity.cosine:.6f} hides it"]


def test_check_parity_fails_the_item_on_a_collapse() -> None:
    reference = _yolo_head(2)
    collapsed = [head * np.array([1] * 4 + [0] * 18, np.float32)[None, :, None] for head in reference]
    result = check_parity([[h] for h in reference], [[h] for h in collapsed], ["output0"],
                          thresholds=Thresholds(min_cosine=0.99), input_source="synthetic", inputs_sha256="x",
                          candidate="c", checks={"output0": YOLO})
    assert not result.passed and result.min_cosine > 0.99 and "collapsed" in result.failures[0]


def test_live_scores_with_quantization_noise_pass() -> None:
    reference = _yolo_head()
    noisy = [head + RNG.normal(0, 1e-3, head.shape).astype(np.float32) for head in reference]
    parity = compare_outputs("output0", reference, noisy, YOLO)
    assert parity.collapsed_channels_total == 0 and parity.min_channel_cosine is not None
    assert parity.top1_agreement is not None and parity.top1_agreement > 0.9
    assert judge([parity], Thresholds(min_cosine=0.99)) == []


def test_min_channel_cosine_names_the_worst_channel() -> None:
    reference = _yolo_head(2)
    candidate = [head.copy() for head in reference]
    for head in candidate:
        head[:, 9] = RNG.uniform(0, 1, head[:, 9].shape)
    parity = compare_outputs("output0", reference, candidate, YOLO)
    assert parity.min_channel == 9
    [failure] = judge([parity], Thresholds(min_channel_cosine=0.9))
    assert failure.startswith("output 'output0': channel 9 (axis 1) cosine")


def test_class_agreement_is_per_time_step_for_sequence_outputs() -> None:
    reference = [RNG.random((1, 10, 30)).astype(np.float32)]
    swapped = [reference[0].copy()]
    swapped[0][0, :5] = swapped[0][0, :5, ::-1]  # the first five steps now pick other classes
    parity = compare_outputs("logits", reference, swapped)
    assert parity.class_axis == 2 and parity.top1_agreement == pytest.approx(0.5)


def test_a_channel_below_float16_resolution_is_not_called_collapsed() -> None:
    reference = [np.full((1, 3, 50), 1000.0, np.float32) + RNG.uniform(0, 0.05, (1, 3, 50)).astype(np.float32)]
    rounded = [np.round(reference[0] * 2) / 2]  # float16 spacing at 1000 is 0.5
    parity = compare_outputs("features", reference, rounded)
    assert parity.collapsed_channels_total == 0


def test_rank_two_outputs_are_judged_by_classes_not_channels() -> None:
    reference = [RNG.random((1, 1000)).astype(np.float32) for _ in range(4)]
    flat = [r.copy() for r in reference]
    for r in flat:
        r[0, 7] = 0.5
    parity = compare_outputs("logits", reference, flat)
    assert parity.channel_axis is None and parity.collapsed_channels_total == 0 and parity.class_axis == 1


@pytest.mark.parametrize(("check", "passes"), [
    (OutputCheck(atol=0.02), True),
    (OutputCheck(atol=0.005), False),
    (OutputCheck(atol=0.005, error_stat="median"), True),
    (OutputCheck(rtol=1e-9, error_stat="max"), False),
    (OutputCheck(atol=0.001, error_stat="quantile", error_quantile=0.5), False),
])
def test_polygraphy_style_tolerances(check: OutputCheck, passes: bool) -> None:
    reference = [np.linspace(1, 2, 100, dtype=np.float32).reshape(1, 100)]
    candidate = [reference[0] + np.where(np.arange(100) % 10 == 0, 0.01, 0.002).astype(np.float32)]
    parity = compare_outputs("y", reference, candidate, check)
    assert (judge([parity], Thresholds(), {"y": check}) == []) is passes


def _finite_rows(samples: int = 4) -> list[np.ndarray]:
    return [RNG.uniform(0.5, 1.5, (1, 64)).astype(np.float32) for _ in range(samples)]


def test_non_finite_artifact_outputs_fail_with_the_count_and_the_first_index() -> None:
    reference = _finite_rows(2)
    candidate = [r.copy() for r in reference]
    candidate[1][0, 5:] = -np.inf
    parity = compare_outputs("y", reference, candidate)
    assert parity.non_finite_elements == 59 and parity.non_finite_kinds == {"-inf": 59}
    assert (parity.first_non_finite_inference, parity.first_non_finite_index) == (1, [0, 5])
    assert parity.cosine is None and parity.max_abs_error is None and parity.figures_note
    [failure] = judge([parity], Thresholds(min_cosine=0.99))
    assert failure == ("output 'y': non-finite values in the artifact where the source model is finite: "
                       "59 element(s) (-inf 59), first at inference 1 index [0, 5]")


def test_a_result_with_non_finite_outputs_is_strict_json_and_fails() -> None:
    reference = _finite_rows(1)
    result = check_parity([reference], [[np.full_like(reference[0], np.nan)]], ["y"], thresholds=Thresholds(),
                          input_source="synthetic", inputs_sha256="x", candidate="c")
    assert not result.passed and result.min_cosine is None and result.max_abs_error is None
    json.dumps(result.model_dump(mode="json"), allow_nan=False)


def test_a_non_finite_reference_is_an_input_error_not_a_verdict() -> None:
    reference = _finite_rows(1)
    reference[0][0, 3] = np.nan
    with pytest.raises(ForgeError, match=r"reference itself gives 1 non-finite value\(s\).*inference 0 index \[0, 3\]"):
        compare_outputs("y", reference, _finite_rows(1))


def _one_far_off(offset: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Four inferences, three within 1e-4 of the reference and one ``offset`` off everywhere."""
    reference = _finite_rows(4)
    candidate = [r + np.float32(1e-4) for r in reference]
    candidate[2] = reference[2] + np.float32(offset)
    return reference, candidate


def test_one_bad_inference_is_not_averaged_away_by_the_others() -> None:
    reference, candidate = _one_far_off(0.03)  # mean abs error 0.03 there; pooled over four: ~0.0076
    check = OutputCheck(atol=0.01, error_stat="mean")
    parity = compare_outputs("y", reference, candidate, check)
    assert parity.pooled_abs_error_stat is not None and parity.pooled_abs_error_stat < 0.01
    assert parity.error_stat_inference == 2 and parity.abs_error_stat == pytest.approx(0.03, rel=1e-3)
    [failure] = judge([parity], Thresholds(), {"y": check})
    assert failure.startswith("output 'y': 1 of 4 inference(s) outside the tolerance; worst, inference 2: mean abs")


def test_a_tolerance_every_inference_meets_passes() -> None:
    reference, candidate = _one_far_off(0.005)
    check = OutputCheck(atol=0.01, error_stat="mean")
    parity = compare_outputs("y", reference, candidate, check)
    assert parity.tolerance_failed_inferences == 0 and judge([parity], Thresholds(), {"y": check}) == []


def test_cosine_is_judged_on_every_inference_and_names_the_worst() -> None:
    reference = [RNG.normal(0, 1, (1, 256)).astype(np.float32) for _ in range(4)]
    reference[3] *= 0.01  # a quiet input: its errors hide in the pooled cosine
    candidate = [r.copy() for r in reference]
    candidate[3] = candidate[3] + RNG.normal(0, 0.01, (1, 256)).astype(np.float32)
    parity = compare_outputs("y", reference, candidate)
    assert parity.cosine is not None and parity.cosine > 0.999 and parity.min_cosine_inference == 3
    [failure] = judge([parity], Thresholds(min_cosine=0.99))
    assert failure.startswith("output 'y': cosine 0.") and "< min_cosine 0.99 (inference 3; all inferences pooled" in failure


def test_elemwise_tolerances_count_the_inferences_outside() -> None:
    reference, candidate = _one_far_off(0.03)
    parity = compare_outputs("y", reference, candidate, OutputCheck(atol=0.01))
    assert parity.tolerance_failures == 64 and parity.tolerance_failed_inferences == 1
    assert parity.error_stat_inference == 2


@pytest.mark.parametrize(("source", "enforced"), [("dataset", 0.9), ("synthetic", None)])
def test_default_top1_agreement_is_enforced_on_real_inputs_only(source: str, enforced: float | None) -> None:
    thresholds, warnings = effective_thresholds("int8", None, source)  # type: ignore[arg-type]
    assert thresholds.min_top1_agreement == enforced
    assert bool(warnings) is (enforced is None)


def test_a_spec_threshold_override_is_taken_as_written() -> None:
    override = Thresholds(min_cosine=0.95, min_top1_agreement=0.5)
    assert effective_thresholds("int8", override, "synthetic") == (override, [])


def test_a_classifier_whose_answer_changes_often_fails_the_default_on_a_dataset() -> None:
    reference = [RNG.normal(0, 1, (1, 10)).astype(np.float32) for _ in range(8)]
    candidate = [r.copy() for r in reference]
    for r in candidate[:3]:  # three of eight inferences now answer another class
        r[0, np.argsort(r[0])[-2]] = r[0].max() + 0.01
    thresholds, _ = effective_thresholds("int8", None, "dataset")
    result = check_parity([[r] for r in reference], [[c] for c in candidate], ["logits"], thresholds=thresholds,
                          input_source="dataset", inputs_sha256="x", candidate="c")
    assert result.top1_agreement == pytest.approx(5 / 8)
    assert any("top-1 agreement 0.625 < min_top1_agreement 0.9" in failure for failure in result.failures)


def test_a_zero_reference_keeps_the_relative_error_finite() -> None:
    reference = [np.zeros((1, 64), np.float32)]
    parity = compare_outputs("y", reference, [reference[0] + np.float32(1e-3)], OutputCheck(rtol=0.1, error_stat="mean"))
    assert parity.rel_error_stat is not None and np.isfinite(parity.rel_error_stat)
    json.dumps(parity.model_dump(mode="json"), allow_nan=False)


def _background_flips(reference: list[np.ndarray]) -> list[np.ndarray]:
    """The reference with every anchor below a 0.25 top score given another top class; detections kept."""
    flipped = []
    for head in reference:
        copy = head.copy()
        scores = copy[0, 4:22]
        background = scores.max(axis=0) < 0.25
        scores[:, background] = np.roll(scores[:, background], 1, axis=0)
        flipped.append(copy)
    return flipped


def test_min_score_judges_class_agreement_on_detections_only() -> None:
    reference = _yolo_head()
    check = YOLO.model_copy(update={"min_score": 0.25})
    parity = compare_outputs("output0", reference, _background_flips(reference), check)
    detections = sum(int((head[0, 4:22].max(axis=0) >= 0.25).sum()) for head in reference)
    assert 0 < detections < 4 * 300
    assert parity.top1_agreement == 1.0 and parity.class_positions == detections and parity.min_score == 0.25


def test_without_min_score_background_flips_count_against_the_agreement() -> None:
    reference = _yolo_head()
    parity = compare_outputs("output0", reference, _background_flips(reference), YOLO)
    detections = sum(int((head[0, 4:22].max(axis=0) >= 0.25).sum()) for head in reference)
    assert parity.top1_agreement == round(detections / (4 * 300), 6) and parity.class_positions == 4 * 300


def test_a_min_score_no_position_reaches_leaves_the_agreement_unestablished() -> None:
    reference = _yolo_head()
    check = YOLO.model_copy(update={"min_score": 2.0})
    result = check_parity([[head] for head in reference], [[head] for head in reference], ["output0"],
                          thresholds=Thresholds(min_top1_agreement=0.9), input_source="dataset", inputs_sha256="0" * 64,
                          candidate="c", checks={"output0": check})
    assert result.outputs[0].top1_agreement is None and result.outputs[0].class_positions == 0
    assert result.passed and any("top-1 agreement not established" in line for line in result.warnings)
