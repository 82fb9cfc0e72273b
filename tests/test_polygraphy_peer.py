"""Polygraphy as a peer of Forge's parity verdicts (issue 22): on the same arrays both must say the same.

The reference is a small real graph (tests/graphs.py) run by ONNX Runtime; the candidate is a modified copy
of it (ORT's float16 conversion, weights scaled by 1 %, an output turned -inf or partly NaN), run by ONNX
Runtime on the same inputs. Polygraphy judges them as ``polygraphy run --validate`` does: the outputs are
checked for NaN/inf (``Comparator.validate``), then ``Comparator.compare_accuracy`` compares each inference
(iteration) on its own with ``SimpleCompareFunc`` (atol/rtol on an error statistic) or
``CosineSimilarityCompareFunc``. The candidate is Polygraphy's first runner and the reference its second, so
its relative difference divides by the reference, as Forge's does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from graphs import constant_weights_cnn
from onnx import helper, numpy_helper
from onnxruntime.transformers.float16 import convert_float_to_float16

from pytest_inferedgeforge.engine.parity import check_parity
from pytest_inferedgeforge.model.records.evidence import ParityResult
from pytest_inferedgeforge.model.spec import OutputCheck, Thresholds

comparator = pytest.importorskip("polygraphy.comparator", reason="polygraphy is not installed (it is in the dev extra)")
G_LOGGER = pytest.importorskip("polygraphy.logger").G_LOGGER

Outputs = list[list[np.ndarray]]
"""Per inference, per output, as check_parity takes them."""

RNG = np.random.default_rng(0)
INPUTS = [RNG.normal(0, 1, (1, 3, 16, 16)).astype(np.float32) for _ in range(4)]
ONE_FAR = [*INPUTS[:3], INPUTS[3] * 30]
"""The fourth input 30x larger. With weights off by 1 % (over 40 draws of constant_weights_cnn's random weights) its
mean abs error is 0.92-1.57 and the others' ~0.04, all four pooled 0.25-0.43; its median 0.76-1.35, pooled below
0.06; the relative error is ~2 % on every input. So atol 0.5 fails it alone, and 2.0 passes every input."""


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copied = onnx.ModelProto()
    copied.CopyFrom(model)
    return copied


def _fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    return convert_float_to_float16(_copy(model), keep_io_types=True)


def _weights_off_by_one_percent(model: onnx.ModelProto) -> onnx.ModelProto:
    scaled = _copy(model)
    for node in scaled.graph.node:
        if node.op_type == "Constant":
            tensor = node.attribute[0].t
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor) * np.float32(1.01), tensor.name))
    return scaled


def _rewire_output(model: onnx.ModelProto, nodes: Callable[[str, str], list[onnx.NodeProto]]) -> onnx.ModelProto:
    """The graph with its output ``y`` renamed ``y_raw`` and ``nodes(y_raw, y)`` appended to compute ``y``."""
    rewired = _copy(model)
    for node in rewired.graph.node:
        node.output[:] = ["y_raw" if name == "y" else name for name in node.output]
    rewired.graph.node.extend(nodes("y_raw", "y"))
    return rewired


def _all_minus_inf(model: onnx.ModelProto) -> onnx.ModelProto:
    """log(0 * y): -inf everywhere."""
    zero = numpy_helper.from_array(np.array(0, np.float32), "zero")
    return _rewire_output(model, lambda raw, out: [
        helper.make_node("Constant", [], ["zero"], value=zero),
        helper.make_node("Mul", [raw, "zero"], ["zeroed"]), helper.make_node("Log", ["zeroed"], [out])])


def _nan_where_positive(model: onnx.ModelProto) -> onnx.ModelProto:
    """y + sqrt(-relu(y)): NaN where y > 0, exactly y elsewhere."""
    return _rewire_output(model, lambda raw, out: [
        helper.make_node("Relu", [raw], ["positive"]), helper.make_node("Neg", ["positive"], ["negated"]),
        helper.make_node("Sqrt", ["negated"], ["nan_or_zero"]), helper.make_node("Add", [raw, "nan_or_zero"], [out])])


def _run(model: onnx.ModelProto, inputs: list[np.ndarray]) -> Outputs:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [session.run(None, {"x": x}) for x in inputs]


@dataclass(frozen=True)
class PolygraphyVerdict:
    finite: bool
    """``Comparator.validate(check_inf=True, check_nan=True)``: no NaN or inf in any output."""
    failed_inferences: list[int]
    """The iterations ``Comparator.compare_accuracy`` failed."""

    @property
    def passed(self) -> bool:
        return self.finite and not self.failed_inferences


def polygraphy_verdict(reference: Outputs, candidate: Outputs, names: list[str], check: OutputCheck | None,
                       min_cosine: float | None) -> PolygraphyVerdict:
    def iterations(runner: str, outputs: Outputs) -> tuple[str, list[object]]:
        return runner, [comparator.IterationResult(dict(zip(names, sample, strict=True)), runner_name=runner)
                        for sample in outputs]

    run = comparator.RunResults([iterations("candidate", candidate), iterations("reference", reference)])
    funcs: list[object] = []
    if check is not None:
        funcs.append(comparator.SimpleCompareFunc(atol=check.atol, rtol=check.rtol, check_error_stat=check.error_stat,
                                                  error_quantile=check.error_quantile))
    if min_cosine is not None:
        funcs.append(comparator.CosineSimilarityCompareFunc(min_cosine))
    with G_LOGGER.verbosity(G_LOGGER.CRITICAL), np.errstate(invalid="ignore"):  # its statistics of inf are NaN
        finite = bool(comparator.Comparator.validate(run, check_inf=True, check_nan=True))
        accuracy = comparator.Comparator.compare_accuracy(run, compare_func=funcs)
    failed = {index for result in accuracy for per_iteration in result.values()
              for index, matches in enumerate(per_iteration) if not all(bool(match) for match in matches.values())}
    return PolygraphyVerdict(finite, sorted(failed))


def forge_parity(reference: Outputs, candidate: Outputs, names: list[str], check: OutputCheck | None,
                 min_cosine: float | None) -> ParityResult:
    return check_parity(reference, candidate, names, thresholds=Thresholds(min_cosine=min_cosine),
                        input_source="synthetic", inputs_sha256="peer", candidate="onnxruntime",
                        checks={name: check for name in names} if check is not None else None)


@dataclass(frozen=True)
class Case:
    candidate: Callable[[onnx.ModelProto], onnx.ModelProto]
    inputs: list[np.ndarray]
    check: OutputCheck | None
    passes: bool
    min_cosine: float | None = None


def _tolerance(error_stat: Literal["elemwise", "mean", "median"], atol: float, rtol: float) -> OutputCheck:
    """Tolerances alone: the collapsed-channel check, which Polygraphy has no peer for, is off."""
    return OutputCheck(atol=atol, rtol=rtol, error_stat=error_stat, per_channel=False)


CASES = [
    pytest.param(Case(_fp16, INPUTS, _tolerance("elemwise", 1e-2, 1e-2), passes=True), id="elemwise-fp16-within"),
    pytest.param(Case(_fp16, INPUTS, _tolerance("elemwise", 1e-4, 1e-4), passes=False), id="elemwise-fp16-outside"),
    pytest.param(Case(_weights_off_by_one_percent, ONE_FAR, _tolerance("mean", 0.5, 1e-3), passes=False),
                 id="mean-one-input-far-off"),
    pytest.param(Case(_weights_off_by_one_percent, ONE_FAR, _tolerance("median", 0.5, 1e-3), passes=False),
                 id="median-one-input-far-off"),
    pytest.param(Case(_weights_off_by_one_percent, ONE_FAR, _tolerance("mean", 2.0, 1e-3), passes=True),
                 id="mean-every-input-within"),
    pytest.param(Case(_all_minus_inf, INPUTS, _tolerance("elemwise", 1e-2, 1e-2), passes=False),
                 id="minus-inf-elemwise"),
    pytest.param(Case(_all_minus_inf, INPUTS, None, passes=False, min_cosine=0.999), id="minus-inf-cosine-only"),
    pytest.param(Case(_nan_where_positive, INPUTS, _tolerance("elemwise", 1e-2, 1e-2), passes=False),
                 id="nan-elemwise"),
]


@pytest.fixture(scope="module")
def reference_model(tmp_path_factory: pytest.TempPathFactory) -> onnx.ModelProto:
    return onnx.load(constant_weights_cnn(Path(tmp_path_factory.mktemp("peer")) / "cnn.onnx"))


@pytest.mark.parametrize("case", CASES)
def test_forge_and_polygraphy_agree(case: Case, reference_model: onnx.ModelProto) -> None:
    reference = _run(reference_model, case.inputs)
    candidate = _run(case.candidate(reference_model), case.inputs)
    names = [output.name for output in reference_model.graph.output]
    verdicts = {"polygraphy": polygraphy_verdict(reference, candidate, names, case.check, case.min_cosine).passed,
                "forge": forge_parity(reference, candidate, names, case.check, case.min_cosine).passed}
    assert verdicts == {"polygraphy": case.passes, "forge": case.passes}
