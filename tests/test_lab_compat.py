"""Two Forge results go through the real InferEdgeLab unchanged. Skips where Lab is not importable
(it is not on the package registries; see README for installing it into a throwaway venv)."""

import subprocess
import sys
from pathlib import Path

import pytest

from pytest_inferedgeforge.engine.build import build
from pytest_inferedgeforge.engine.plan import plan_build
from pytest_inferedgeforge.engine.presets import load_preset
from pytest_inferedgeforge.engine.runs import RunSettings, run_native


def test_real_lab_compare_accepts_two_forge_results(workspace: Path) -> None:
    loader = pytest.importorskip("inferedgelab.result.loader")
    results = []
    for preset_id in ("onnxruntime/cpu_fp32", "onnxruntime/cpu_int8"):
        preset = load_preset(preset_id, workspace / "presets")
        record = build(plan_build(Path("models/tiny_cnn.onnx"), preset, workspace / "builds")).record
        run = run_native(record.build_dir, RunSettings(runs=5, warmup=1, samples=2))
        results.append(str(run.structured_result_path))
    for path in results:
        assert loader.load_result(path)["legacy_result"] is False
    completed = subprocess.run([sys.executable, "-m", "inferedgelab.cli", "compare", *results],
                               capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr
    assert "Overall judgement" in completed.stdout


def test_real_lab_worker_contract_accepts_the_worker_summary(workspace: Path, cli) -> None:
    contract = pytest.importorskip("inferedgelab.services.worker_contract")
    import json

    cli("build", "--model", "models/tiny_cnn.onnx", "--output", "builds", "--preset", "onnxruntime/cpu_int8")
    code, out, _ = cli("show-worker-summary", "builds/tiny_cnn__cpu__onnxruntime__cpu_int8")
    assert code == 0
    request = contract.forge_summary_to_input_summary(json.loads(out))
    assert request["options"]["precision"] == "int8" and request["options"]["height"] == 224
