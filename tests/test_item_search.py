"""Spec items and int8, through pytester on real ONNX Runtime builds of tests/test_tune.py's loud CNN (its last conv
has one output channel 1000x the others, which static int8 collapses): a failed parity check names the layer in
the item's failure, and ``quantization.search`` runs the int8 search in place of the plain build."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_tune import LOUD_NODE, loud_channel_cnn

from pytest_inferedgeforge.model.records.diagnosis import Diagnosis
from pytest_inferedgeforge.model.records.tuning import TuningTrial

SPEC = """\
name: loud
model: loud.onnx
presets: [onnxruntime/cpu_int8]
benchmark: {{warmup: 1, runs: 3}}
inputs: {{samples: 4}}
{extra}
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    loud_channel_cnn(pytester.path / "loud.onnx")
    monkeypatch.setenv("FORGE_TOOLCHAINS_DIR", str(pytester.path / "no-toolchains"))
    return pytester


def _run(project: pytest.Pytester, extra: str = "") -> tuple[pytest.RunResult, dict]:
    project.makefile(".forge.yaml", loud=SPEC.format(extra=extra))
    result = project.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", "--forge-report=r.json")
    report = json.loads((project.path / "r.json").read_text(encoding="utf-8"))
    (item,) = report["items"]
    return result, item["properties"]


def test_a_failed_int8_item_names_the_loud_conv_in_its_failure(project: pytest.Pytester) -> None:
    result, properties = _run(project)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["accuracy parity vs the source model failed: *",
                                 f"diagnosis: first below 14 dB: {LOUD_NODE} [[]Conv[]] -> y: SQNR *",
                                 "diagnosis: recorded in */diagnoses/*/diagnosis.json"])
    assert "Traceback" not in result.stdout.str()
    diagnosis = Diagnosis.model_validate_json(Path(properties["diagnosis_path"]).read_text(encoding="utf-8"))
    assert diagnosis.first_divergent is not None and diagnosis.first_divergent.node == LOUD_NODE
    assert diagnosis.inputs_sha256 == json.loads(Path(properties["run_summary_path"]).read_text())["inputs_sha256"]
    report = json.loads((project.path / "r.json").read_text(encoding="utf-8"))
    assert report["items"][0]["message"].startswith("accuracy parity vs the source model failed")  # not a diagnosis
    result.stdout.fnmatch_lines([f"    diagnosis: first below 14 dB: {LOUD_NODE} *"])  # the table's note


def test_diagnose_false_leaves_the_failure_undiagnosed(project: pytest.Pytester) -> None:
    result, properties = _run(project, "accuracy: {diagnose: false}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["accuracy parity vs the source model failed: *"])
    assert not any(line.startswith("diagnosis") for line in result.outlines)
    assert "diagnosis_path" not in properties
    assert not (Path(properties["build_dir"]) / "diagnoses").exists()


def test_a_diagnosis_that_fails_does_not_mask_the_parity_failure(project: pytest.Pytester) -> None:
    project.makeconftest("""
        import pytest_inferedgeforge.plugin.quantization as quantization
        from pytest_inferedgeforge.model.errors import ForgeError

        def refuse(*args, **kwargs):
            raise ForgeError("diagnose is not available for this backend")

        quantization.diagnose_build = refuse
    """)
    result, properties = _run(project)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["accuracy parity vs the source model failed: *",
                                 "diagnosis not made: diagnose is not available for this backend"])
    assert "diagnosis_path" not in properties


def test_the_spec_search_keeps_the_loud_conv_in_float_and_the_item_passes(project: pytest.Pytester) -> None:
    result, properties = _run(project, "quantization: {search: {max_trials: 12}}")
    result.assert_outcomes(passed=1)
    assert properties["tune_summary"].startswith("passed with 1 float node(s) (50.0 % of compute quantized)")
    assert properties["tune_float_nodes"] == LOUD_NODE
    assert properties["parity_passed"] is True and properties["run_status"] == "completed"
    ledger = Path(properties["tune_ledger"])
    assert ledger.parent.parent == Path(properties["build_dir"])
    trials = [TuningTrial.model_validate_json(line) for line in ledger.read_text(encoding="utf-8").splitlines()]
    assert len(trials) == properties["tune_trials"] <= 12
    assert [trial.float_nodes for trial in trials if trial.selected] == [[LOUD_NODE]]
    result.stdout.fnmatch_lines(["*int8 search: passed with 1 float node(s)*"])


def test_a_search_with_no_passing_trial_fails_with_its_best_trial_and_the_diagnosis(project: pytest.Pytester) -> None:
    result, properties = _run(project, "quantization: {search: {max_trials: 1}}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["no passing configuration within budget; best trial 1 (*",
                                 f"diagnosis: first below 14 dB: {LOUD_NODE} *"])
    assert properties["tune_trials"] == 1 and properties["tune_float_nodes"] == ""
    assert Path(properties["diagnosis_path"]).is_file() and "run_summary_path" not in properties


def test_the_search_judges_by_the_specs_output_checks(project: pytest.Pytester) -> None:
    """With the per-channel check off for ``y`` (the item's own judgement), the preset as is already passes: no node
    is kept in float, as the item itself would have passed the plain build."""
    result, properties = _run(project, "accuracy: {outputs: {y: {per_channel: false}}}\n"
                                       "quantization: {search: {max_trials: 12}}")
    result.assert_outcomes(passed=1)
    assert properties["tune_summary"].startswith("passed with 0 float node(s)")
    assert properties["tune_float_nodes"] == "" and properties["tune_stopped"] == "passed"


def test_tune_calibrates_on_the_calibration_dataset(tmp_path: Path, cli) -> None:
    model = loud_channel_cnn(tmp_path / "loud.onnx")
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    rng = np.random.default_rng(5)
    for index in range(3):
        np.save(calibration / f"c{index}.npy", rng.random((1, 3, 16, 16), dtype=np.float32))
    code, out, err = cli("tune", "--model", str(model), "--preset", "onnxruntime/cpu_int8", "--output",
                         str(tmp_path / "builds"), "--max-trials", "1", "--calibration-dataset", str(calibration),
                         "--json")
    assert code == 1, err  # one trial cannot pass on this model; the trial is still built on the dataset
    manifest = json.loads((Path(json.loads(out)["build_dir"]) / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["calibration"]["source"] == "dataset" and manifest["calibration"]["samples"] == 3


def test_tune_refuses_a_missing_calibration_dataset(tmp_path: Path, cli) -> None:
    code, _, err = cli("tune", "--model", str(loud_channel_cnn(tmp_path / "loud.onnx")), "--preset",
                       "onnxruntime/cpu_int8", "--calibration-dataset", str(tmp_path / "missing"))
    assert code != 0
    assert err.strip().splitlines() == [f"Error: --calibration-dataset {tmp_path / 'missing'}: directory not found"]
