"""A tamper corpus: every way of editing a real, benchmarked build directory that must fail ``verify``.

One real build (ONNX Runtime fp32 of the shipped CNN, with a recorded run) is made per module; each
case copies it to a fresh place (so it also proves that a moved tree still verifies) and edits one
thing. Property-based tests (hypothesis) mutate any single bound field of any record.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_inferedgeforge.engine.build import build
from pytest_inferedgeforge.engine.plan import plan_build
from pytest_inferedgeforge.engine.presets import load_preset
from pytest_inferedgeforge.engine.record import load_build_record
from pytest_inferedgeforge.engine.runs import RunSettings, run_native
from pytest_inferedgeforge.verify.build_dir import verify_build_dir

REPO = Path(__file__).resolve().parent.parent
NAME = "tiny_cnn__cpu__onnxruntime__cpu_fp32"


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tamper")
    shutil.copytree(REPO / "models", root / "models")
    plan = plan_build(root / "models/tiny_cnn.onnx", load_preset("onnxruntime/cpu_fp32", REPO / "presets"),
                      root / "builds")
    outcome = build(plan)
    run = run_native(outcome.record, RunSettings(warmup=0, runs=3, samples=2))
    assert run.completed, run.summary.error
    return outcome.record.build_dir


@pytest.fixture
def copy(original: Path, tmp_path: Path) -> Path:
    """The build copied to a new root: a moved tree, which must still verify (with warnings only)."""
    target = tmp_path / "moved" / NAME
    shutil.copytree(original, target)
    return target


def _run_dir(build_dir: Path) -> Path:
    return build_dir / json.loads((build_dir / "run_summary.json").read_text())["run_dir"]


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def _errors(build_dir: Path) -> list[str]:
    return [issue.line() for issue in verify_build_dir(build_dir).errors]


def test_the_moved_copy_verifies_clean(copy: Path) -> None:
    report = verify_build_dir(copy)
    assert report.valid, report.errors
    assert report.warnings == []
    assert load_build_record(copy).readiness.ready


def test_an_artifact_swapped_with_its_three_hashes_rewritten_fails_on_size(copy: Path, tmp_path: Path) -> None:
    other = REPO / "models/tiny_cnn_external.onnx"
    shutil.copyfile(other, copy / "model.onnx")
    import hashlib

    digest = hashlib.sha256(other.read_bytes()).hexdigest()
    for name, places in (("manifest.json", ("artifact", "artifacts")), ("metadata.json", ("artifacts",))):
        def rewrite(data: dict[str, Any], places: tuple[str, ...] = places) -> None:
            for place in places:
                entry = data[place][0] if isinstance(data[place], list) else data[place]
                entry["sha256"] = digest
        _edit(copy / name, rewrite)
    errors = _errors(copy)
    assert any("artifact.size_bytes: size mismatch" in line for line in errors)
    assert any("artifact_sha256_at_run" in line for line in errors)  # and the run measured another artifact


@pytest.mark.parametrize(("edit", "field"), [
    (lambda m: m["preset_snapshot"]["build_options"].update(optimization_level="basic"), "preset_snapshot"),
    (lambda m: m["toolchain"]["versions"].update(onnxruntime="0.0.1"), "toolchain.backend/toolchain.versions"),
    (lambda m: m.update(input_shapes={"input": [2, 3, 224, 224]}), "input_shapes"),
    (lambda m: m["source_model"].update(sha256="0" * 64), "source_model.sha256"),
])
def test_an_edited_build_input_no_longer_matches_the_build_key(copy: Path, edit: Callable, field: str) -> None:
    for name in ("manifest.json", "metadata.json"):  # edited consistently in both files
        _edit(copy / name, edit)
    assert any(line.startswith(f"ERROR {field}:") and "edited after the build" in line for line in _errors(copy))


def test_precision_edited_everywhere_in_the_manifest_still_fails(copy: Path) -> None:
    def to_int8(manifest: dict[str, Any]) -> None:
        manifest["runtime"]["precision"] = manifest["artifact"]["precision"] = "int8"
        manifest["preset_snapshot"]["precision"] = manifest["preset_snapshot"]["build_options"]["precision"] = "int8"
    _edit(copy / "manifest.json", to_int8)
    errors = _errors(copy)
    assert any("metadata.preset_snapshot.precision" in line and "disagree" in line for line in errors)
    assert any(line.startswith("ERROR preset_snapshot:") for line in errors)


@pytest.mark.parametrize("key", ["preset_name", "target"])
def test_metadata_and_manifest_disagreeing_on_the_build_fails(copy: Path, key: str) -> None:
    _edit(copy / "metadata.json", lambda m: m["build"].update({key: "onnxruntime/cpu_int8" if key == "preset_name"
                                                                else "gpu"}))
    assert any(f"metadata.build.{key}" in line for line in _errors(copy))


@pytest.mark.parametrize("where", ["lab_compat", "runtime"])
@pytest.mark.parametrize("path", ["/etc/passwd", "../../../../etc/passwd"])
def test_a_handoff_path_pointing_elsewhere_is_an_error_and_handoffs_refuse(copy: Path, cli, where: str,
                                                                           path: str) -> None:
    if where == "lab_compat":
        _edit(copy / "metadata.json", lambda m: m["lab_compat"]["runtime"].update(engine_path=path))
        field = "metadata.lab_compat.runtime.engine_path"
    else:
        _edit(copy / "manifest.json", lambda m: m["runtime"].update(artifact_path=path))
        field = "runtime.artifact_path"
    assert any(line.startswith(f"ERROR {field}:") for line in _errors(copy))
    for argv in (("show-worker-summary", str(copy)), ("show-lab-profile-command", str(copy)),
                 ("create-agent-manifest", "--manifest", str(copy / "manifest.json"), "--agent-id", "a",
                  "--agent-type", "vision", "--priority", "1", "--latency-budget-ms", "5", "--deadline-ms", "9",
                  "--input-type", "image", "--output-type", "scores", "--fallback-mode", "none")):
        code, out, err = cli(*argv)
        assert code == 1 and "refusing to hand off" in err and "/etc/passwd" not in out


def test_validate_manifest_alone_refuses_a_runtime_path_that_is_not_the_artifact(copy: Path, cli) -> None:
    _edit(copy / "manifest.json", lambda m: m["runtime"].update(model_path="../../../../etc/passwd"))
    code, out, _ = cli("validate-manifest", "--manifest", str(copy / "manifest.json"))
    assert code == 1 and "ERROR runtime.model_path: ../../../../etc/passwd is not this build's verified file" in out


def test_the_gate_names_the_file_and_field_of_a_tampered_record(copy: Path, pytester: pytest.Pytester) -> None:
    _edit(copy / "metadata.json", lambda m: m["lab_compat"]["runtime"].update(engine_path="/etc/passwd"))
    _edit(_run_dir(copy) / "structured_result.json", lambda r: r.update(p99_ms=0.001))
    result = pytester.runpytest(str(copy.parent), "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ERROR metadata.lab_compat.runtime.engine_path: /etc/passwd is not this build*",
                                 "*ERROR runs/*/run_summary.json.structured_result_sha256: sha256 mismatch for *"
                                 "structured_result.json*"])


@pytest.mark.parametrize(("file", "edit", "field"), [
    ("run_summary.json", lambda s: s.update(mean_ms=s["mean_ms"] / 2), "mean_ms"),
    ("run_summary.json", lambda s: s["latency"].update(p99_ms=0.001), "latency.p99_ms"),
    ("structured_result.json", lambda r: r.update(mean_ms=0.001), "structured_result_sha256"),
    ("accuracy_evidence.json", lambda e: e["parity"].update(passed=True, min_cosine=0.5),
     "accuracy_evidence_sha256"),
])
def test_an_edited_run_record_fails(copy: Path, file: str, edit: Callable, field: str) -> None:
    _edit(_run_dir(copy) / file, edit)
    assert any(field in line for line in _errors(copy))


def test_the_builds_run_summary_must_be_a_copy_of_its_run(copy: Path) -> None:
    _edit(copy / "run_summary.json", lambda s: s.update(mean_ms=0.001))
    assert any(line.startswith("ERROR run_summary.json:") for line in _errors(copy))


@pytest.mark.parametrize("file", ["run_summary.json", "structured_result.json", "accuracy_evidence.json"])
def test_a_garbage_run_file_fails(copy: Path, file: str) -> None:
    (_run_dir(copy) / file).write_text("garbage\x00")
    assert _errors(copy)


def test_results_from_two_different_runs_side_by_side_fail(copy: Path) -> None:
    run_dir = _run_dir(copy)
    second = run_dir.with_name(run_dir.name[:-8] + "deadbeef")
    shutil.copytree(run_dir, second)
    shutil.copyfile(second / "accuracy_evidence.json", run_dir / "accuracy_evidence.json")
    _edit(second / "run_summary.json", lambda s: s.update(run_id=second.name, run_dir=f"runs/{second.name}"))
    assert any(f"runs/{second.name}/run_summary.json structured_result.extra.forge_run_id" in line
               for line in _errors(copy))


def test_a_deleted_manifest_fails_the_gate_and_is_listed_as_broken(copy: Path, cli,
                                                                   pytester: pytest.Pytester) -> None:
    (copy / "manifest.json").unlink()
    result = pytester.runpytest(str(copy.parent), "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Build manifest file not found*"])
    code, out, _ = cli("list-builds", "--dir", str(copy.parent))
    assert code == 0 and "broken" in out


def test_a_tampered_second_artifact_is_refused_by_runs_and_readiness(tmp_path: Path, flip_byte) -> None:
    shutil.copytree(REPO / "models", tmp_path / "models")
    plan = plan_build(tmp_path / "models/tiny_cnn_external.onnx",
                      load_preset("onnxruntime/cpu_fp32", REPO / "presets"), tmp_path / "builds")
    record = build(plan).record
    assert len(record.manifest.artifacts or []) == 2
    assert run_native(record, RunSettings(warmup=0, runs=2, samples=1)).completed
    flip_byte(record.build_dir / "model.onnx.data")
    assert any("artifacts[1].sha256" in line for line in _errors(record.build_dir))
    run = run_native(record.build_dir, RunSettings(warmup=0, runs=2, samples=1))
    assert not run.completed and "refusing to measure it" in (run.summary.error or "")
    assert load_build_record(record.build_dir).readiness.state == "broken"


# --- property-based: any single mutation of a bound field is detected --------------------------------------------

UNBOUND = {
    # Free text that nothing is derived from and that only one file carries; edits to these are not tampering
    # with evidence (they become detectable with signed provenance).
    ("metadata.json", "handoff.reasons"),
}


def _leaves(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*prefix, index))
    else:
        yield prefix, value


def _record_files(build_dir: Path) -> list[Path]:
    run_dir = _run_dir(build_dir)
    return [build_dir / "metadata.json", build_dir / "manifest.json", build_dir / "run_summary.json",
            build_dir / "runs/latest.json", *sorted(run_dir.glob("*.json"))]


def _mutated(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1 if value == 0 else value * 1.5
    if isinstance(value, str):
        return value + "x"
    return "null replaced"


def _bound_leaves(original: Path) -> list[tuple[str, tuple[Any, ...]]]:
    found = []
    for path in _record_files(original):
        relative = str(path.relative_to(original))
        for where, _ in _leaves(json.loads(path.read_text())):
            if (relative, ".".join(map(str, where))) not in UNBOUND:
                found.append((relative, where))
    return found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_mutation_of_a_bound_field_is_detected(original: Path, tmp_path_factory: pytest.TempPathFactory,
                                                         data: st.DataObject) -> None:
    relative, where = data.draw(st.sampled_from(_bound_leaves(original)))
    target = tmp_path_factory.mktemp("mutant") / NAME
    shutil.copytree(original, target)

    def mutate(record: dict[str, Any]) -> None:
        holder: Any = record
        for key in where[:-1]:
            holder = holder[key]
        holder[where[-1]] = _mutated(holder[where[-1]])

    _edit(target / relative, mutate)
    assert not verify_build_dir(target).valid, f"{relative}: {'.'.join(map(str, where))} mutated undetected"


def test_every_single_bound_field_mutation_is_detected(original: Path, tmp_path: Path) -> None:
    """The exhaustive form of the property above: every leaf of every record, one at a time."""
    missed = []
    for index, (relative, where) in enumerate(_bound_leaves(original)):
        target = tmp_path / str(index) / NAME
        shutil.copytree(original, target)

        def mutate(record: dict[str, Any], where: tuple[Any, ...] = where) -> None:
            holder: Any = record
            for key in where[:-1]:
                holder = holder[key]
            holder[where[-1]] = _mutated(holder[where[-1]])

        _edit(target / relative, mutate)
        if verify_build_dir(target).valid:
            missed.append(f"{relative}: {'.'.join(map(str, where))}")
        shutil.rmtree(target.parent)
    assert missed == []


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                                       max_size=4), max_leaves=20)
RECORD_KEYS = ["build", "source_model", "artifact", "artifacts", "runtime", "lab_compat", "preset_snapshot",
               "run_id", "status", "latency", "accuracy", "input_shapes", "toolchain"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(file=st.sampled_from(["metadata.json", "manifest.json", "run_summary.json", "runs/latest.json"]),
       value=JSON | st.dictionaries(st.sampled_from(RECORD_KEYS), JSON, max_size=6))
def test_verify_never_raises_on_arbitrary_json(original: Path, tmp_path_factory: pytest.TempPathFactory,
                                               file: str, value: Any) -> None:
    target = tmp_path_factory.mktemp("garbage") / NAME
    shutil.copytree(original, target)
    (target / file).write_text(json.dumps(value))
    report = verify_build_dir(target)
    assert isinstance(report.valid, bool)
    load_build_record_or_error(target)


def load_build_record_or_error(build_dir: Path) -> None:
    """Reading the record either works (and readiness is judged) or is one clean RecordError."""
    from pytest_inferedgeforge.model.errors import RecordError

    try:
        record = load_build_record(build_dir, require_manifest=False)
    except RecordError:
        return
    assert record.readiness.state in {"ready", "pending", "failed", "stale", "broken"}
