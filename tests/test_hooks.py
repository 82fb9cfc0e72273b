"""Forge's own hooks (plugin/hookspec.py, docs/hooks.md) through pytester: a lab's conftest implementing them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_inferedgeforge.model.keys import generate_key, load_public_keys
from pytest_inferedgeforge.verify.build_dir import verify_build_dir

REPO = Path(__file__).resolve().parent.parent
SPEC = """\
name: tiny
model: models/tiny_cnn.onnx
presets: [onnxruntime/cpu_fp32, onnxruntime/cpu_fp16, onnxruntime/cpu_int8_dynamic]
benchmark: {warmup: 1, runs: 3}
inputs: {samples: 2}
"""
# The site's conftest: a rack id in the host state, fp16 builds refused by a site rule, a report key, int8 not
# collected on this runner, and every build/run hook call written to hook_calls.jsonl for the tests to read.
CONFTEST = """
import json
from pathlib import Path

from pytest_inferedgeforge.engine.build import VerifiedBuild
from pytest_inferedgeforge.engine.runs import RunOutcome

CALLS = Path(__file__).parent / "hook_calls.jsonl"


def _log(**entry):
    with CALLS.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\\n")


def pytest_forge_update_host_state(config, host_state):
    host_state["rack_id"] = "B7"


def pytest_forge_select_presets(config, experiment, presets):
    return [preset for preset in presets if preset.precision != "int8"]


def pytest_forge_build_finished(item, build):
    _log(hook="build_finished", nodeid=item.nodeid, verified=isinstance(build, VerifiedBuild),
         build_dir=str(build.record.build_dir), source=build.source)


def pytest_forge_run_finished(item, run):
    _log(hook="run_finished", nodeid=item.nodeid, outcome=isinstance(run, RunOutcome),
         summary_path=str(run.summary_path), status=run.summary.status)


def pytest_forge_invariants(item, build):
    if build.record.manifest.runtime.precision == "fp16":
        return ["site rule: fp16 builds need the B7 rack's sign-off"]
    return []


def pytest_forge_update_report(config, report):
    report["site"] = {"rack_id": "B7", "items": len(report["items"])}
"""


@pytest.fixture
def site(forge_project: pytest.Pytester) -> pytest.Pytester:
    """A project with the spec over tiny_cnn and the site's conftest."""
    forge_project.makefile(".forge.yaml", tiny=SPEC)
    forge_project.makeconftest(CONFTEST)
    return forge_project


def _items(pytester: pytest.Pytester, *args: str) -> dict[str, dict[str, Any]]:
    """Run the session with a JSON report; its items by preset."""
    result = pytester.runpytest("-p", "no:cacheprovider", "--forge-report", "report.json", *args)
    result.assert_outcomes(passed=1, failed=1)
    report = json.loads((pytester.path / "report.json").read_text())
    return {item["preset"]: item for item in report["items"]}


def _calls(pytester: pytest.Pytester, hook: str) -> list[dict[str, Any]]:
    lines = (pytester.path / "hook_calls.jsonl").read_text().splitlines()
    return [entry for entry in map(json.loads, lines) if entry["hook"] == hook]


def test_select_presets_drops_a_preset_from_collection(site: pytest.Pytester) -> None:
    result = site.runpytest("--collect-only", "-q")
    names = {line.split("::")[-1] for line in result.outlines if "::" in line}
    assert names == {"tiny[onnxruntime/cpu_fp32]", "tiny[onnxruntime/cpu_fp16]"}


def test_the_host_fact_reaches_the_signed_run_record(site: pytest.Pytester) -> None:
    key = site.path / "signing"
    generate_key(key)
    items = _items(site, "--forge-sign-key", str(key))
    build_dir = Path(items["onnxruntime/cpu_fp32"]["properties"]["build_dir"])
    summary = json.loads(Path(items["onnxruntime/cpu_fp32"]["properties"]["run_summary_path"]).read_text())
    assert summary["host_state"]["rack_id"] == "B7"
    assert len(summary["host_state"]["speed_probe_ms"]) == 2  # Forge's own facts are still there
    report = verify_build_dir(build_dir, load_public_keys([key.with_name("signing.pub")]), require_signature=True)
    assert report.valid, report.first_error()


def test_the_site_invariant_fails_one_item_with_its_message(site: pytest.Pytester) -> None:
    items = _items(site)
    assert items["onnxruntime/cpu_fp32"]["outcome"] == "passed"
    failed = items["onnxruntime/cpu_fp16"]
    assert failed["outcome"] == "failed"
    assert failed["message"] == "site rule: fp16 builds need the B7 rack's sign-off"


def test_the_report_key_reaches_the_json_report(site: pytest.Pytester) -> None:
    _items(site)
    report = json.loads((site.path / "report.json").read_text())
    assert report["site"] == {"rack_id": "B7", "items": 2}


def test_build_finished_is_called_once_per_item_with_its_verified_build(site: pytest.Pytester) -> None:
    items = _items(site)
    calls = {call["nodeid"]: call for call in _calls(site, "build_finished")}
    assert len(calls) == len(_calls(site, "build_finished")) == 2
    assert all(call["verified"] and call["source"] == "built" for call in calls.values())
    fp32 = items["onnxruntime/cpu_fp32"]
    assert calls[fp32["nodeid"]]["build_dir"] == fp32["properties"]["build_dir"]


def test_run_finished_is_called_once_per_recorded_run(site: pytest.Pytester) -> None:
    items = _items(site)
    [call] = _calls(site, "run_finished")  # the fp16 item failed its site rule before its run
    fp32 = items["onnxruntime/cpu_fp32"]
    assert call["nodeid"] == fp32["nodeid"] and call["outcome"] and call["status"] == "completed"
    assert call["summary_path"] == fp32["properties"]["run_summary_path"]


def test_a_host_fact_that_is_not_json_fails_the_item_naming_it(site: pytest.Pytester) -> None:
    site.makeconftest(CONFTEST.replace('host_state["rack_id"] = "B7"', 'host_state["rack"] = object()'))
    result = site.runpytest("-p", "no:cacheprovider", "-m", "fp32")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*pytest_forge_update_host_state: host fact 'rack' is not JSON*"])
    assert "Traceback" not in result.stdout.str()


def test_a_report_the_hook_breaks_is_not_written(site: pytest.Pytester) -> None:
    site.makeconftest(CONFTEST.replace('report["site"] = ', 'report["summary"] = '))
    result = site.runpytest("-p", "no:cacheprovider", "-m", "fp32", "--forge-report", "report.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pytest_forge_update_report: the report no longer validates: field 'summary.*"])
    assert not (site.path / "report.json").exists()


def test_the_docs_example_conftest_does_what_the_page_says(site: pytest.Pytester,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    page = (REPO / "docs/hooks.md").read_text()
    site.makeconftest(page.split("```python\n", 1)[1].split("```", 1)[0])
    monkeypatch.setenv("ACME_RACK_ID", "B7")
    monkeypatch.setenv("ACME_NO_INT8", "1")
    monkeypatch.delenv("ACME_TICKET", raising=False)
    items = _items(site)
    assert items["onnxruntime/cpu_fp16"]["message"] == "site rule: fp16 is released only for jetson, rk3588, not cpu"
    summary = json.loads(Path(items["onnxruntime/cpu_fp32"]["properties"]["run_summary_path"]).read_text())
    assert summary["host_state"]["rack_id"] == "B7"
    assert json.loads((site.path / "report.json").read_text())["acme"] == {"rack_id": "B7", "ticket": None}
