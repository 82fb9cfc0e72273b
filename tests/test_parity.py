"""Parity figures that one dominant range cannot fool."""

import numpy as np
import pytest

from pytest_inferedgeforge.engine.parity import check_parity, compare_outputs, judge
from pytest_inferedgeforge.model.spec import OutputCheck, Thresholds

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
