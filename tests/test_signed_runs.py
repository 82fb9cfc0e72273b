"""Signed runs: figures that a trusted key stands behind, and forged ones that no longer verify (issue 23)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_inferedgeforge.engine.run_signing import seal_run
from pytest_inferedgeforge.engine.runs import RunSettings, run_native
from pytest_inferedgeforge.engine.signing import load_signing_key
from pytest_inferedgeforge.model.hashing import file_digest
from pytest_inferedgeforge.model.keys import generate_key, load_public_keys
from pytest_inferedgeforge.model.records.run import RunSummary
from pytest_inferedgeforge.model.stats import summarize
from pytest_inferedgeforge.verify.build_dir import verify_build_dir

FP32_DIR = "builds/tiny_cnn__cpu__onnxruntime__cpu_fp32"


@pytest.fixture
def signed(workspace: Path, cli: Any) -> dict[str, Path]:
    """A build signed at build time and one run sealed with the same key."""
    key = workspace / "signing"
    generate_key(key)
    code, _, err = cli("build", "--model", "models/tiny_cnn.onnx", "--output", "builds", "--preset",
                       "onnxruntime/cpu_fp32", "--sign-key", str(key))
    assert code == 0, err
    code, _, err = cli("run-benchmark", FP32_DIR, "--runs", "5", "--warmup", "0", "--sign-key", str(key))
    assert code == 0, err
    return {"key": key, "pub": key.with_name("signing.pub"), "build": workspace / FP32_DIR}


def _trusted(signed: dict[str, Path]) -> list[Any]:
    return load_public_keys([signed["pub"]])


def _run_dir(build_dir: Path) -> Path:
    [run] = [p for p in (build_dir / "runs").iterdir() if p.is_dir()]
    return run


def _forge_faster(build_dir: Path) -> None:
    """The campaign's forgery: latencies scaled by 0.2, every figure recomputed with Forge's own statistics, the
    build's copy of the summary kept identical, so the run records stay consistent with each other."""
    run = _run_dir(build_dir)
    summary = json.loads((run / "run_summary.json").read_text())
    summary["latencies_ms"] = [round(value * 0.2, 6) for value in summary["latencies_ms"]]
    stats = summarize(summary["latencies_ms"], summary["max_cv"])
    summary["latency"] = stats.model_dump(mode="json")
    summary["mean_ms"], summary["p99_ms"] = stats.mean_ms, stats.p99_ms
    result = json.loads((run / "structured_result.json").read_text())
    result["mean_ms"], result["p99_ms"] = stats.mean_ms, stats.p99_ms
    result["extra"]["latency_ms"] = summary["latency"]
    (run / "structured_result.json").write_text(json.dumps(result, indent=2))
    summary["structured_result_sha256"] = file_digest(run / "structured_result.json")
    path = run / "run_summary.json"
    text = json.dumps(summary, indent=2)
    path.write_text(text)
    (build_dir / "run_summary.json").write_text(text)


def test_a_sealed_run_verifies_with_the_trusted_key(signed: dict[str, Path]) -> None:
    assert (_run_dir(signed["build"]) / "run.dsse.json").is_file()
    report = verify_build_dir(signed["build"], _trusted(signed))
    assert report.valid, report.errors


def test_consistently_forged_figures_break_the_seal(signed: dict[str, Path]) -> None:
    _forge_faster(signed["build"])
    report = verify_build_dir(signed["build"], _trusted(signed))
    assert any("run_summary.json changed after the run was signed" in issue.message for issue in report.errors)


def test_forged_figures_with_the_seal_removed_fail_only_under_a_key(signed: dict[str, Path]) -> None:
    _forge_faster(signed["build"])
    (_run_dir(signed["build"]) / "run.dsse.json").unlink()
    assert verify_build_dir(signed["build"]).valid  # consistent with each other: only a key can tell
    report = verify_build_dir(signed["build"], _trusted(signed))
    assert any("the run is unsigned" in issue.message for issue in report.errors)


def test_forged_figures_resealed_with_another_key_are_not_trusted(signed: dict[str, Path], tmp_path: Path) -> None:
    other = tmp_path / "attacker"
    generate_key(other)
    _forge_faster(signed["build"])
    run = _run_dir(signed["build"])
    seal_run(run, RunSummary.model_validate_json((run / "run_summary.json").read_text()),
             load_signing_key(other).signer)
    report = verify_build_dir(signed["build"], _trusted(signed))
    assert [issue.message for issue in report.errors] == ["no signature on the run verifies with a trusted key"]


def test_an_unsigned_run_fails_verify_with_a_key(signed: dict[str, Path]) -> None:
    run_native(signed["build"], RunSettings(runs=2, warmup=0))
    report = verify_build_dir(signed["build"], _trusted(signed))
    assert any("the run is unsigned" in issue.message for issue in report.errors)


def test_an_unsigned_run_is_only_untrusted_with_allow_unsigned_runs(signed: dict[str, Path], cli: Any) -> None:
    run_native(signed["build"], RunSettings(runs=2, warmup=0))
    code, out, _ = cli("verify", str(signed["build"]), "--key", str(signed["pub"]), "--allow-unsigned-runs")
    assert code == 0 and "WARNING" in out and "figures are untrusted" in out


def test_the_trusted_gate_fails_forged_run_figures(signed: dict[str, Path], pytester: pytest.Pytester) -> None:
    _forge_faster(signed["build"])
    result = pytester.runpytest(str(signed["build"]), "-p", "no:cacheprovider", "--forge-trust", str(signed["pub"]))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*run_summary.json changed after the run was signed*"])


def test_a_build_with_an_unsigned_run_is_not_ready_under_trust(signed: dict[str, Path], cli: Any) -> None:
    run_native(signed["build"], RunSettings(runs=2, warmup=0))
    _, out, _ = cli("list-builds", "--dir", "builds", "--json")
    assert [entry["state"] for entry in json.loads(out)] == ["ready"]
    _, out, _ = cli("list-builds", "--dir", "builds", "--key", str(signed["pub"]), "--json")
    [entry] = json.loads(out)
    assert entry["state"] == "broken" and "the run is unsigned" in entry["reason"]


def test_a_moved_sealed_run_still_verifies(signed: dict[str, Path], tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / signed["build"].name
    shutil.copytree(signed["build"], moved)
    assert file_digest(_run_dir(moved) / "run.dsse.json") == file_digest(_run_dir(signed["build"]) / "run.dsse.json")
    assert verify_build_dir(moved, _trusted(signed)).valid


def test_a_forged_ledger_line_is_told_from_its_real_run(signed: dict[str, Path]) -> None:
    from pytest_inferedgeforge.engine.history import read_history

    [ledger] = (signed["build"].parent / ".history").glob("*.jsonl")
    line = json.loads(ledger.read_text().splitlines()[0])
    honest = line["mean_ms"]
    line["mean_ms"] = honest * 0.2
    ledger.write_text(json.dumps(line) + "\n")
    entries, problems = read_history(signed["build"].parent)
    assert [entry.summary.mean_ms for entry in entries] == [honest]
    assert any("does not match that run's own record" in problem for problem in problems)
