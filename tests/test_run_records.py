"""Atomic, locked run records: concurrent runs, failed runs, and attach-accuracy's single place to write."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from pytest_inferedgeforge.engine.record import load_build_record
from pytest_inferedgeforge.verify.build_dir import verify_build_dir

FP32_DIR = Path("builds/tiny_cnn__cpu__onnxruntime__cpu_fp32")
BUILD = ("build", "--model", "models/tiny_cnn.onnx", "--output", "builds", "--preset", "onnxruntime/cpu_fp32")


def test_two_concurrent_runs_leave_two_complete_consistent_runs(workspace: Path, cli) -> None:
    cli(*BUILD)
    argv = [sys.executable, "-m", "pytest_inferedgeforge", "run-benchmark", str(FP32_DIR), "--runs", "20",
            "--warmup", "1"]
    processes = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    runs = sorted(p for p in (FP32_DIR / "runs").iterdir() if p.is_dir())
    assert len(runs) == 2 and all(sorted(f.name for f in run.iterdir()) == [
        "accuracy_evidence.json", "run_summary.json", "structured_result.json"] for run in runs)
    report = verify_build_dir(FP32_DIR)
    assert report.valid, report.errors
    latest = json.loads((FP32_DIR / "runs/latest.json").read_text())
    assert json.loads((FP32_DIR / "run_summary.json").read_text())["run_id"] == latest["run_id"]
    assert load_build_record(FP32_DIR).readiness.ready


def test_a_failed_run_never_replaces_the_last_good_one(workspace: Path, cli) -> None:
    cli(*BUILD)
    code, _, err = cli("run-benchmark", str(FP32_DIR), "--runs", "2", "--warmup", "0")
    assert code == 0, err
    good = (FP32_DIR / "run_summary.json").read_text()
    wrong = workspace / "wrong_shape"
    wrong.mkdir()
    np.save(wrong / "0.npy", np.zeros((1, 3, 8, 8), np.float32))
    code, _, err = cli("run-benchmark", str(FP32_DIR), "--dataset", str(wrong), "--runs", "2")
    assert code == 1 and "recorded in" in err
    assert (FP32_DIR / "run_summary.json").read_text() == good
    latest = json.loads((FP32_DIR / "runs/latest.json").read_text())
    assert latest["status"] == "failed" and "expected [1, 3, 224, 224]" in latest["error"]
    record = load_build_record(FP32_DIR)
    assert record.readiness.state == "ready"  # a failed run is recorded beside the good one and never demotes it
    assert record.last_failed_run is not None and record.last_failed_run.run_id == latest["run_id"]
    assert verify_build_dir(FP32_DIR).valid


def test_attach_accuracy_writes_only_the_runs_own_result(workspace: Path, cli) -> None:
    cli(*BUILD)
    cli("run-benchmark", str(FP32_DIR), "--runs", "2", "--warmup", "0")
    outside = workspace / "outside.json"
    outside.write_text("{}")
    for path in (FP32_DIR / "run_summary.json", *FP32_DIR.glob("runs/*/run_summary.json")):
        summary = json.loads(path.read_text())
        summary["structured_result_path"] = str(outside)
        path.write_text(json.dumps(summary))
    Path("acc.json").write_text(json.dumps({"task": "classification", "metrics": {"top1": 0.7}}))
    code, _, err = cli("attach-accuracy", "--build-dir", str(FP32_DIR), "--accuracy-json", "acc.json")
    assert code == 1 and "structured_result_path" in err
    assert outside.read_text() == "{}"


def test_attach_accuracy_rebinds_the_result_so_the_build_still_verifies(workspace: Path, cli) -> None:
    cli(*BUILD)
    cli("run-benchmark", str(FP32_DIR), "--runs", "2", "--warmup", "0")
    Path("acc.json").write_text(json.dumps({"task": "classification", "metrics": {"top1": 0.7}}))
    code, out, err = cli("attach-accuracy", "--build-dir", str(FP32_DIR), "--accuracy-json", "acc.json")
    assert code == 0, err
    result = Path(out.split(": ", 1)[1].strip())
    assert result.parent.parent == (FP32_DIR / "runs").resolve()
    assert verify_build_dir(FP32_DIR).valid and load_build_record(FP32_DIR).readiness.ready


def test_a_run_without_parity_does_not_make_the_build_ready(workspace: Path, cli) -> None:
    cli(*BUILD)
    code, _, err = cli("run-benchmark", str(FP32_DIR), "--runs", "2", "--no-accuracy")
    assert code == 0, err
    readiness = load_build_record(FP32_DIR).readiness
    assert readiness.state == "pending" and "did not check parity" in readiness.reason


def test_a_run_whose_parity_failed_leaves_the_build_failed(workspace: Path, cli) -> None:
    from pytest_inferedgeforge.engine.runs import RunSettings, run_native
    from pytest_inferedgeforge.model.spec import Thresholds

    cli("build", "--model", "models/tiny_cnn.onnx", "--output", "builds", "--preset", "onnxruntime/cpu_int8")
    build_dir = Path("builds/tiny_cnn__cpu__onnxruntime__cpu_int8")
    run = run_native(build_dir, RunSettings(warmup=0, runs=2, samples=2, thresholds=Thresholds(max_abs_error=0.0)))
    assert run.completed and run.parity is not None and not run.parity.passed
    readiness = load_build_record(build_dir).readiness
    assert readiness.state == "failed" and "parity failed" in readiness.reason


def test_a_run_killed_midway_leaves_nothing_a_reader_sees_and_the_next_run_clears_it(workspace: Path, cli) -> None:
    cli(*BUILD)
    killed = FP32_DIR / "runs/.tmp-20260101T000000000000Z-0badf00d"
    killed.mkdir(parents=True)
    (killed / "structured_result.json").write_text("{}")
    assert verify_build_dir(FP32_DIR).valid  # a half-written run is invisible to verify and readiness
    code, _, err = cli("run-benchmark", str(FP32_DIR), "--runs", "2", "--warmup", "0")
    assert code == 0, err
    assert not killed.exists()
