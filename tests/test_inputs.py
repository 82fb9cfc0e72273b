"""Inputs with meaning: value rules for synthetic data, shared by calibration, smoke run, parity and rebuild."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from graphs import sample_rate_model

from pytest_inferedgeforge.engine.build import build
from pytest_inferedgeforge.engine.plan import plan_build
from pytest_inferedgeforge.engine.presets import load_preset
from pytest_inferedgeforge.engine.reproduce import rebuild_from_manifest
from pytest_inferedgeforge.engine.smoke import smoke_run
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.inputs import ValueRule, parse_value_rule, synthetic_samples
from pytest_inferedgeforge.model.onnx_model import TensorInfo

REPO = Path(__file__).resolve().parent.parent
INPUTS = [TensorInfo("x", "float32", (2, 3)), TensorInfo("sr", "int64", ()), TensorInfo("ids", "float32", (4,))]


def test_value_rules_draw_constants_choices_ranges_and_integer_valued_floats() -> None:
    rules = {"sr": ValueRule(choice=[8000, 16000]), "x": ValueRule(range=(-1, 1)), "ids": ValueRule(dtype="int")}
    samples = synthetic_samples(INPUTS, {"x": [2, 3], "sr": [], "ids": [4]}, seed=0, count=20, values=rules)
    assert {int(s["sr"]) for s in samples} == {8000, 16000}
    assert all(s["sr"].dtype == np.int64 and s["sr"].shape == () for s in samples)
    assert min(s["x"].min() for s in samples) >= -1 and min(s["x"].min() for s in samples) < 0
    assert all(np.array_equal(s["ids"], np.round(s["ids"])) and s["ids"].dtype == np.float32 for s in samples)


def test_the_first_sample_does_not_depend_on_the_count() -> None:
    shapes = {"x": [2, 3], "sr": [], "ids": [4]}
    one = synthetic_samples(INPUTS, shapes, seed=5, count=1)[0]
    eight = synthetic_samples(INPUTS, shapes, seed=5, count=8)[0]
    assert all(np.array_equal(one[name], eight[name]) for name in one)


@pytest.mark.parametrize(("text", "message"), [
    ("sr", "must look like NAME=16000"), ("sr=fast", "not a number"), ("x=3..1", "low must be below high")])
def test_bad_value_rules_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(ForgeError, match=message):
        parse_value_rule(text)


def test_rules_for_unknown_inputs_are_refused() -> None:
    with pytest.raises(ForgeError, match="unknown input"):
        synthetic_samples(INPUTS, {"x": [2, 3], "sr": [], "ids": [4]}, seed=0, count=1,
                          values={"rate": ValueRule(value=1)})


def test_without_a_rule_a_sample_rate_model_fails_its_smoke_run_in_one_line(workspace: Path) -> None:
    model = sample_rate_model(workspace / "vad.onnx")
    preset = load_preset("onnxruntime/cpu_fp32", workspace / "presets")
    with pytest.raises(ForgeError) as failure:
        build(plan_build(model, preset, workspace / "builds"))
    assert "failed its smoke run" in str(failure.value) and "\n" not in str(failure.value)


def test_the_rule_is_recorded_and_used_by_the_rebuild_check(workspace: Path) -> None:
    model = sample_rate_model(workspace / "vad.onnx")
    preset = load_preset("onnxruntime/cpu_int8", workspace / "presets")
    rules = {"sr": ValueRule(value=16000)}
    record = build(plan_build(model, preset, workspace / "builds", input_values=rules)).record
    assert record.manifest.input_values == {"sr": {"value": 16000.0}}
    assert record.manifest.smoke is not None and record.manifest.smoke.runner and record.manifest.smoke.inputs_sha256
    result = rebuild_from_manifest(record.manifest_path, presets_root=workspace / "presets")
    assert result.report.verdict in ("bitwise", "functional"), result.report.reasons


def test_an_artifact_that_does_not_load_is_a_clean_error(workspace: Path) -> None:

    garbage = workspace / "model.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ForgeError, match="the artifact does not load: .*"):
        smoke_run("onnxruntime", garbage, {"x": np.zeros((1, 64), np.float32)})


def test_a_spec_gives_the_rule_to_build_smoke_run_and_parity(pytester: pytest.Pytester,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(REPO / "presets", pytester.path / "presets")
    monkeypatch.setenv("FORGE_TOOLCHAINS_DIR", str(pytester.path / "no-toolchains"))
    sample_rate_model(pytester.path / "vad.onnx")
    pytester.makefile(".forge.yaml", vad="""\
model: vad.onnx
presets: [onnxruntime/cpu_fp32, onnxruntime/cpu_int8]
inputs: {samples: 3, values: {sr: {choice: [8000, 16000]}, x: {range: [-1, 1]}}}
benchmark: {warmup: 0, runs: 2}
""")
    result = pytester.runpytest("vad.forge.yaml", "--forge-report", "report.json")
    result.assert_outcomes(passed=2)
    items = json.loads((pytester.path / "report.json").read_text())["items"]
    assert all(item["properties"]["parity_passed"] for item in items)
