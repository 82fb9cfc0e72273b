"""``merge-reports``: two runners' JSON reports -> one compare handoff that the real InferEdgeLab accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def reports(two_preset_project: pytest.Pytester) -> pytest.Pytester:
    """Two CI shards: one ran the fp32 preset, the other the int8 one, each into its own output root."""
    for shard, selection in (("a", "fp32"), ("b", "int8")):
        two_preset_project.runpytest("tiny.forge.yaml", "-p", "no:cacheprovider", "-k", selection, "--forge-output",
                                     f"root_{shard}", "--forge-report", f"{shard}.json").assert_outcomes(passed=1)
    return two_preset_project


def _merge(cli: Any, root: Path, *names: str) -> tuple[int, str, str]:
    return cli("merge-reports", *(str(root / name) for name in names), "-o", str(root / "merged.json"))


def test_merged_report_keeps_each_items_host_and_measurement(reports: pytest.Pytester, cli: Any,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code, _, err = _merge(cli, reports.path, "a.json", "b.json")
    assert code == 0, err
    merged = json.loads((reports.path / "merged.json").read_text())
    assert len(merged["items"]) == 2
    assert all(item["host"] and item["measured_on"] == "device" for item in merged["items"])
    assert [runner["report"] for runner in merged["environment"]["merged_from"]] == \
        [str(reports.path / "a.json"), str(reports.path / "b.json")]
    assert merged["summary"]["passed"] == 2


def test_merged_report_pairs_results_across_runners(reports: pytest.Pytester, cli: Any) -> None:
    _merge(cli, reports.path, "a.json", "b.json")
    (handoff,) = json.loads((reports.path / "merged.json").read_text())["compare"]
    assert handoff["ready"] == ["onnxruntime/cpu_fp32", "onnxruntime/cpu_int8_dynamic"]
    (pair,) = handoff["pairs"]
    assert "root_a" in pair["left_result"] and "root_b" in pair["right_result"]


def test_conflicting_builds_of_one_key_are_an_error(reports: pytest.Pytester, cli: Any) -> None:
    a, b = (json.loads((reports.path / name).read_text()) for name in ("a.json", "b.json"))
    b["items"][0]["properties"]["build_key"] = a["items"][0]["properties"]["build_key"]
    (reports.path / "b.json").write_text(json.dumps(b))
    code, _, err = _merge(cli, reports.path, "a.json", "b.json")
    assert code == 1
    assert err.startswith("Error: conflicting builds of build key")


def test_a_file_that_is_not_a_report_is_one_clear_error(reports: pytest.Pytester, cli: Any) -> None:
    (reports.path / "junk.json").write_text('{"items": 3}')
    code, _, err = _merge(cli, reports.path, "a.json", "junk.json")
    assert code == 1
    assert err.count("\n") == 1 and "not a Forge report" in err


def test_real_lab_compare_accepts_the_merged_handoff(reports: pytest.Pytester, cli: Any) -> None:
    pytest.importorskip("inferedgelab.result.loader")
    _merge(cli, reports.path, "a.json", "b.json")
    (pair,) = json.loads((reports.path / "merged.json").read_text())["compare"][0]["pairs"]
    completed = subprocess.run([sys.executable, "-m", "inferedgelab.cli", "compare", pair["left_result"],
                                pair["right_result"]], capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr
    assert "Overall judgement" in completed.stdout
