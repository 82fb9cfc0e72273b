"""pytest conventions and start-up: --lf ids, which records are collected, fixture items in the reports,
the table's width, presets found from the project and the package, and what a session without Forge items pays."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SPEC = """\
name: tiny
model: models/tiny_cnn.onnx
presets: [onnxruntime/cpu_fp32, onnxruntime/{second}]
benchmark: {{warmup: 0, runs: 2}}
inputs: {{samples: 2}}
"""
HEAVY = ("numpy", "onnx", "onnxruntime", "pydantic", "jsonschema", "yaml", "rich", "filelock")


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    shutil.copytree(REPO / "models", pytester.path / "models")
    return pytester


def test_last_failed_reruns_exactly_the_failed_spec_item(project: pytest.Pytester) -> None:
    project.makefile(".forge.yaml", tiny=SPEC.format(second="no_such_preset"))
    project.runpytest().assert_outcomes(passed=1, failed=1)
    again = project.runpytest("--lf", "-v")
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines(["*tiny.forge.yaml::tiny[[]onnxruntime/no_such_preset[]] FAILED*"])


def test_a_spec_item_is_selected_by_its_node_id(project: pytest.Pytester) -> None:
    project.makefile(".forge.yaml", tiny=SPEC.format(second="cpu_fp16"))
    result = project.runpytest("tiny.forge.yaml::tiny[onnxruntime/cpu_fp16]")
    result.assert_outcomes(passed=1)


def test_built_in_presets_serve_a_project_without_a_presets_folder(project: pytest.Pytester) -> None:
    project.makefile(".forge.yaml", tiny=SPEC.format(second="cpu_fp16"))
    assert not (project.path / "presets").exists()
    project.runpytest("--strict-markers", "-m", "onnxruntime and cpu").assert_outcomes(passed=2)


def test_a_named_presets_root_that_does_not_exist_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makefile(".forge.yaml", tiny=SPEC.format(second="cpu_fp16"))
    result = project.runpytest("--forge-presets", "nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--forge-presets: presets root*nowhere does not exist*"])


def test_a_project_preset_overrides_the_built_in_one(project: pytest.Pytester) -> None:
    (project.path / "presets/onnxruntime").mkdir(parents=True)
    builtin = (REPO / "presets/onnxruntime/cpu_fp32.yaml").read_text()
    (project.path / "presets/onnxruntime/cpu_fp32.yaml").write_text(builtin.replace("target: cpu", "target: myboard"))
    project.makefile(".forge.yaml", tiny=SPEC.format(second="cpu_fp16"))
    result = project.runpytest("--strict-markers", "-m", "myboard", "-v")
    result.assert_outcomes(passed=1, deselected=1)
    assert (project.path / "builds/tiny_cnn__myboard__onnxruntime__cpu_fp32").is_dir()


def test_a_web_manifest_is_never_collected(project: pytest.Pytester) -> None:
    (project.path / "web").mkdir()
    (project.path / "web/manifest.json").write_text('{"name": "app", "icons": []}')
    (project.path / "web/metadata.json").write_text('{"build": "3", "source_model": "none"}')
    project.makepyfile(test_app="def test_app():\n    pass\n")
    project.runpytest().assert_outcomes(passed=1)
    project.runpytest("web").assert_outcomes()


def test_build_records_are_gated_only_where_the_user_asked(project: pytest.Pytester) -> None:
    project.makefile(".forge.yaml", tiny=SPEC.format(second="cpu_fp16"))
    project.runpytest().assert_outcomes(passed=2)
    project.runpytest().assert_outcomes(passed=2)  # the builds/ under the project are not collected by a plain run
    project.runpytest("builds").assert_outcomes(passed=2)
    project.runpytest("tiny.forge.yaml", "--forge-validate", "builds").assert_outcomes(passed=4)


def test_a_fixture_test_reports_like_a_spec_item(project: pytest.Pytester) -> None:
    project.makepyfile(test_fix="""
        import pytest

        @pytest.mark.forge(model="models/tiny_cnn.onnx", presets=["onnxruntime/cpu_fp32"])
        def test_runs(forge_record, forge_runner):
            assert forge_record.artifact_path.is_file()
    """)
    result = project.runpytest("--forge-report", "report.json", "--junitxml", "junit.xml")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*InferEdgeForge summary*", "test_runs[[]onnxruntime/cpu_fp32[]]*",
                                 "*passed*miss*"])
    item = json.loads((project.path / "report.json").read_text())["items"][0]
    assert (item["kind"], item["experiment"], item["preset"], item["backend"]) == (
        "build", "test_runs", "onnxruntime/cpu_fp32", "onnxruntime")
    assert 'name="forge.preset" value="onnxruntime/cpu_fp32"' in (project.path / "junit.xml").read_text()


def test_the_summary_table_fits_the_terminal(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "72")
    project.makefile(".forge.yaml", tiny=SPEC.format(second="cpu_int8_dynamic"))
    result = project.runpytest_subprocess()
    result.assert_outcomes(passed=2)
    start = next(index for index, line in enumerate(result.outlines) if "InferEdgeForge summary" in line)
    table = result.outlines[start:]
    assert all(len(line) <= 72 for line in table), [line for line in table if len(line) > 72]


def test_the_plugin_module_loads_only_the_standard_library_and_pytest() -> None:
    code = ("import sys, pytest_inferedgeforge.plugin; "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_a_session_without_forge_items_imports_nothing_heavy_and_writes_nothing(project: pytest.Pytester) -> None:
    project.makeconftest(f"""
        import sys

        def pytest_unconfigure(config):
            print("HEAVY", [m for m in {HEAVY!r} if m in sys.modules])
    """)
    project.makepyfile(test_one="def test_one():\n    pass\n")
    result = project.runpytest_subprocess("-s", "-p", "no:hypothesispytest", "-p", "no:xdist", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["HEAVY []"])
    assert "InferEdgeForge" not in result.stdout.str()
    assert not (project.path / "builds").exists()
