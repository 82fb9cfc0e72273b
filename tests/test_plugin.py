"""Plugin behaviour through pytester: collection, markers, skip/require, reports, the manifest gate, xdist."""

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

REPO = Path(__file__).resolve().parent.parent
SPEC = """\
name: tiny
model: models/tiny_cnn.onnx
presets: [{presets}]
benchmark: {{warmup: 1, runs: 3}}
inputs: {{samples: 2}}
"""
ALL_ORT = "onnxruntime/cpu_fp32, onnxruntime/cpu_fp16, onnxruntime/cpu_int8, onnxruntime/cpu_int8_dynamic"
EDGE = "rknn/rk3588_fp16, rknn/rk3588_int8, tensorrt/jetson_fp16"


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    shutil.copytree(REPO / "presets", pytester.path / "presets")
    shutil.copytree(REPO / "models", pytester.path / "models")
    monkeypatch.setenv("FORGE_TOOLCHAINS_DIR", str(pytester.path / "no-toolchains"))
    pytester.makefile(".forge.yaml", ort=SPEC.format(presets=ALL_ORT), edge=SPEC.format(presets=EDGE).replace(
        "name: tiny", "name: edge"))
    return pytester


def test_items_build_check_and_report_then_hit_the_cache(project: pytest.Pytester) -> None:
    result = project.runpytest("-p", "no:cacheprovider", "--strict-markers", "-rs")
    result.assert_outcomes(passed=4, skipped=3)
    result.stdout.fnmatch_lines(["*InferEdgeForge summary*", "tiny[[]onnxruntime/cpu_int8[]]*", "*passed*miss*",
                                 "*rknn unavailable*toolchain install rknn*", "*tensorrt unavailable*trtexec*"])
    again = project.runpytest("ort.forge.yaml", "edge.forge.yaml", "-p", "no:cacheprovider")
    again.assert_outcomes(passed=4, skipped=3)
    assert sum(" passed  hit " in line for line in again.outlines) == 4


@pytest.mark.parametrize(("expression", "expected"), [
    ("onnxruntime", {"tiny[onnxruntime/cpu_fp32]", "tiny[onnxruntime/cpu_fp16]", "tiny[onnxruntime/cpu_int8]",
                     "tiny[onnxruntime/cpu_int8_dynamic]"}),
    ("rknn and rk3588", {"edge[rknn/rk3588_fp16]", "edge[rknn/rk3588_int8]"}),
    ("int8", {"tiny[onnxruntime/cpu_int8]", "tiny[onnxruntime/cpu_int8_dynamic]", "edge[rknn/rk3588_int8]"}),
    ("tensorrt and jetson and fp16", {"edge[tensorrt/jetson_fp16]"}),
])
def test_markers_select_exactly_the_right_items(project: pytest.Pytester, expression: str, expected: set) -> None:
    result = project.runpytest("--collect-only", "-q", "--strict-markers", "-m", expression)
    names = {line.split("::")[-1] for line in result.outlines if "::" in line}
    assert names == expected


def test_forge_require_turns_the_skip_into_a_failure(project: pytest.Pytester) -> None:
    result = project.runpytest("-m", "tensorrt", "--forge-require", "tensorrt")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*--forge-require tensorrt: tensorrt unavailable: TensorRT not found*"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize("debug", [None, "option", "ini"])
def test_forge_debug_adds_forges_traceback_under_the_message(project: pytest.Pytester, debug: str | None) -> None:
    """A failed item shows its message alone; --forge-debug (ini forge_debug) adds Forge's traceback, as tavern."""
    (project.path / "builds").mkdir()
    (project.path / "builds" / "tiny__onnxruntime__cpu_fp32.failed.json").write_text('{"status": "failed", "error": ')
    if debug == "ini":
        project.makeini("[pytest]\nforge_debug = true\n")
    result = project.runpytest("builds", "--forge-validate", "builds", "-p", "no:cacheprovider",
                               *(["--forge-debug"] * (debug == "option")))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*unreadable failure record (Failure record file is not valid JSON*"])
    out = result.stdout.str()
    assert ("Forge's traceback (--forge-debug):" in out) == (debug is not None)
    assert ("model/jsonio.py:" in out and "plugin/gate.py:" in out) == (debug is not None)  # the chain, Forge's frames
    assert "_pytest/runner.py" not in out  # not pytest's own


@pytest.mark.parametrize(("content", "message"), [
    ("name: x\nmodel: models/tiny_cnn.onnx\npresets: [onnxruntime/cpu_fp32\n",
     "invalid YAML (line 4, column 1)*began at line 3, column 10"),
    ("model: models/tiny_cnn.onnx\npresets: [onnxruntime/cpu_fp32]\nbenchmrk: {runs: 1}\n",
     "field 'benchmrk': unknown key"),
    ("model: models/missing.onnx\npresets: [onnxruntime/cpu_fp32]\n", "field 'model': model file not found"),
    ("model: models/tiny_cnn.onnx\npresets: []\n", "field 'presets'"),
])
def test_a_broken_spec_is_a_clean_collection_error_and_the_others_still_run(project: pytest.Pytester, content: str,
                                                                          message: str) -> None:
    project.makefile(".forge.yaml", broken=content)
    result = project.runpytest("-m", "onnxruntime and fp32", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"*broken.forge.yaml: {message}*"])
    assert "Traceback" not in result.stdout.str() and "pydantic" not in result.stdout.str()


def test_json_report_and_junit_xml(project: pytest.Pytester) -> None:
    result = project.runpytest("--forge-report", "report.json", "--junitxml", "junit.xml")
    result.assert_outcomes(passed=4, skipped=3)
    report = json.loads((project.path / "report.json").read_text())
    schema = json.loads((REPO / "docs/schemas/report.schema.json").read_text())
    jsonschema.validate(report, schema)
    assert report["summary"]["passed"] == 4 and report["summary"]["skipped"] == 3
    by_preset = {item["preset"]: item for item in report["items"]}
    fp32, int8 = by_preset["onnxruntime/cpu_fp32"]["properties"], by_preset["onnxruntime/cpu_int8"]["properties"]
    assert int8["min_cosine"] < fp32["min_cosine"]
    assert "toolchain install rknn" in by_preset["rknn/rk3588_int8"]["message"]
    compare = {entry["experiment"]: entry for entry in report["compare"]}
    assert len(compare["tiny"]["pairs"]) == 6
    assert compare["tiny"]["pairs"][0]["lab_command"].startswith("python -m inferedgelab.cli compare ")
    assert compare["edge"]["ready"] == []
    xmlschema = pytest.importorskip("xmlschema")
    xmlschema.XMLSchema(str(REPO / "docs/schemas/junit.xsd")).validate(str(project.path / "junit.xml"))
    cases = ET.parse(project.path / "junit.xml").getroot().iter("testcase")
    properties = {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")} for case in cases}
    props = properties["tiny[onnxruntime/cpu_int8]"]
    for key in ("build_id", "build_key", "forge.preset", "forge.backend", "forge.target", "forge.precision",
                "source_sha256", "artifact_sha256", "cache_hit", "mean_ms", "p99_ms", "min_cosine"):
        assert key in props, key


def test_github_step_summary_is_written(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = project.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    project.runpytest("-m", "fp32").assert_outcomes(passed=1)
    assert "| `ort.forge.yaml::tiny[onnxruntime/cpu_fp32]` | passed |" in summary.read_text()


def test_tampered_artifact_fails_the_manifest_gate_naming_the_file(project: pytest.Pytester) -> None:
    project.runpytest("-m", "onnxruntime").assert_outcomes(passed=4)
    artifact = project.path / "builds/tiny_cnn__cpu__onnxruntime__cpu_int8/model.onnx"
    data = bytearray(artifact.read_bytes())
    data[10] ^= 0xFF
    artifact.write_bytes(bytes(data))
    result = project.runpytest("builds/")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*sha256 mismatch for */tiny_cnn__cpu__onnxruntime__cpu_int8/model.onnx*"])
    gate = project.runpytest("ort.forge.yaml", "--forge-validate", "builds", "-k", "verify", "-p", "no:cacheprovider")
    gate.assert_outcomes(passed=3, failed=1)


def test_a_python_spec_uses_the_fixtures_per_preset(project: pytest.Pytester) -> None:
    project.makepyfile(test_fixtures="""
        import pytest

        @pytest.mark.forge(model="models/tiny_cnn.onnx", presets=["onnxruntime/cpu_fp32", "onnxruntime/cpu_int8"])
        def test_runs(forge_record, forge_runner, forge_preset):
            assert forge_record.manifest.runtime.precision == forge_preset.precision
            (out,) = forge_runner.run({"input": __import__("numpy").zeros((1, 3, 224, 224), "float32")})
            assert out.shape == (1, 1000)

        def test_factory(forge_build):
            assert forge_build("models/tiny_cnn.onnx", "onnxruntime/cpu_fp16").manifest.artifact.sha256
    """)
    result = project.runpytest("test_fixtures.py", "-v", "--strict-markers")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_runs[[]onnxruntime/cpu_int8[]] PASSED*"])
    selected = project.runpytest("test_fixtures.py", "-m", "int8")
    selected.assert_outcomes(passed=1)


def test_options_are_listed_in_help(project: pytest.Pytester) -> None:
    result = project.runpytest("--help")
    result.stdout.fnmatch_lines(["*InferEdgeForge build provenance*", "*--forge-output=DIR*", "*--forge-presets=DIR*",
                                 "*--forge-report=PATH*", "*--forge-require=BACKEND*", "*--forge-validate=DIR*",
                                 "*forge_output (string)*"])


def test_xdist_builds_each_key_once_and_matches_serial(project: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    project.makefile(".forge.yaml", twin=SPEC.format(presets=ALL_ORT).replace("name: tiny", "name: twin"))
    result = project.runpytest_subprocess("-n", "2", "--forge-report", "report.json", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8, skipped=3)
    report = json.loads((project.path / "report.json").read_text())
    builds = [item for item in report["items"] if item["outcome"] == "passed"]
    misses = [item["properties"]["build_dir"] for item in builds if item["properties"]["cache_hit"] is False]
    assert sorted(misses) == sorted(set(misses)) and len(misses) == 4
    assert len(report["compare"]) == 3


def test_without_benchmark_an_item_still_smoke_runs_the_artifact(project: pytest.Pytester) -> None:
    result = project.runpytest("ort.forge.yaml", "-m", "fp16", "--forge-no-benchmark", "--junitxml", "j.xml")
    result.assert_outcomes(passed=1)
    properties = {p.get("name"): p.get("value") for p in ET.parse(project.path / "j.xml").getroot().iter("property")}
    assert properties["smoke"] == "ok, output shapes [[1, 1000]]"
    assert "mean_ms" not in properties


def test_only_forge_manifests_are_collected_and_a_missing_metadata_still_fails(project: pytest.Pytester) -> None:
    project.runpytest("ort.forge.yaml", "-m", "fp32").assert_outcomes(passed=1)
    web = project.path / "site" / "manifest.json"
    web.parent.mkdir()
    web.write_text('{"name": "a web app manifest", "icons": []}')
    (project.path / "builds/tiny_cnn__cpu__onnxruntime__cpu_fp32/metadata.json").unlink()
    result = project.runpytest("builds/", "site/")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*metadata.json*not found*"])
