"""A fresh build walks its record once: the verification it passed is handed to the push and the first run (engine/
fresh.py), and the toolchain probe is asked once per item. A build that is not this process's own, or a directory
changed since, is verified whole."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_inferedgeforge.backends import registry
from pytest_inferedgeforge.engine.build import VerifiedBuild, build
from pytest_inferedgeforge.engine.plan import plan_build
from pytest_inferedgeforge.engine.presets import load_preset
from pytest_inferedgeforge.engine.runs import RunSettings, run_native
from pytest_inferedgeforge.engine.shared_cache import connect
from pytest_inferedgeforge.engine.signing import load_signing_key
from pytest_inferedgeforge.model.keys import generate_key
from pytest_inferedgeforge.verify import build_dir as whole_record
from pytest_inferedgeforge.verify import manifest as manifest_rules

SETTINGS = RunSettings(warmup=0, runs=2, samples=1)
COUNTING_CONFTEST = """\
import json, sys
from collections import Counter
import pytest
from pytest_inferedgeforge.backends import registry
from pytest_inferedgeforge.verify import build_dir

@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    counts, patched = Counter(), []
    def counting(name, original):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return original(*args, **kwargs)
        return wrapper
    for name, owner in (("verify_build_dir", build_dir.verify_build_dir), ("_probe", registry._probe)):
        for module in list(sys.modules.values()):
            if getattr(module, name, None) is owner:
                patched.append((module, name, owner))
                setattr(module, name, counting(name, owner))
    try:
        return (yield)
    finally:
        for module, name, owner in patched:
            setattr(module, name, owner)
        with open("walks.json", "a") as out:
            out.write(json.dumps({"item": item.name, **counts}) + "\\n")
"""


def _count(monkeypatch: pytest.MonkeyPatch, counts: Counter[str], name: str, original: Callable[..., Any]) -> None:
    """Count every call of ``original`` wherever it was imported by name (module-level and function-level)."""
    def counting(*args: Any, **kwargs: Any) -> Any:
        counts[name] += 1
        return original(*args, **kwargs)

    for module in list(sys.modules.values()):
        if getattr(module, name, None) is original:
            monkeypatch.setattr(module, name, counting)


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    found: Counter[str] = Counter()
    _count(monkeypatch, found, "verify_build_dir", whole_record.verify_build_dir)
    _count(monkeypatch, found, "validate_manifest_data", manifest_rules.validate_manifest_data)
    _count(monkeypatch, found, "_probe", registry._probe)
    return found


def _fresh(workspace: Path, **options: Any) -> VerifiedBuild:
    plan = plan_build(workspace / "models" / "tiny_cnn.onnx", load_preset("onnxruntime/cpu_fp32", workspace / "presets"),
                      workspace / "builds")
    return build(plan, **options)


def test_a_fresh_build_and_its_run_walk_the_record_once(workspace: Path, counts: Counter[str]) -> None:
    outcome = _fresh(workspace)
    run = run_native(outcome, SETTINGS)
    assert run.completed, run.summary.error
    assert (counts["verify_build_dir"], counts["validate_manifest_data"], counts["_probe"]) == (1, 1, 1)


def test_a_fresh_build_pushed_and_run_walks_the_record_once(workspace: Path, counts: Counter[str]) -> None:
    key = workspace / "signing"
    generate_key(key)
    cache = connect(str(workspace / "shared"), [Path(f"{key}.pub")], push=True)
    outcome = _fresh(workspace, signer=load_signing_key(key), shared=cache)
    assert outcome.pushed and outcome.pushed.startswith("pushed"), outcome.pushed
    assert run_native(outcome, SETTINGS).completed
    assert counts["verify_build_dir"] == 1
    assert cache.entries(), "the entry was written"


def test_a_push_with_the_handed_report_still_needs_a_trusted_signature(workspace: Path) -> None:
    generate_key(workspace / "stranger")
    generate_key(workspace / "signing")
    cache = connect(str(workspace / "shared"), [workspace / "stranger.pub"], push=True)
    outcome = _fresh(workspace, signer=load_signing_key(workspace / "signing"), shared=cache)
    assert outcome.pushed and outcome.pushed.startswith("failed: refusing to push"), outcome.pushed


def test_a_build_from_a_previous_session_is_verified_whole_by_its_run(workspace: Path, counts: Counter[str]) -> None:
    _fresh(workspace)
    counts.clear()
    reused = _fresh(workspace)  # a cache hit: verified by the reuse check, and again by the run
    assert reused.cached and reused.fresh is None
    assert run_native(reused, SETTINGS).completed
    assert counts["verify_build_dir"] == 2


def test_a_directory_changed_after_the_build_is_verified_whole(workspace: Path, counts: Counter[str],
                                                               flip_byte: Callable[[Path], None]) -> None:
    outcome = _fresh(workspace)
    flip_byte(outcome.record.artifact_path)  # same size: its times (and the digest) tell
    run = run_native(outcome, SETTINGS)
    assert counts["verify_build_dir"] == 2
    assert not run.completed and "does not verify" in str(run.summary.error)


def test_a_second_run_of_the_same_build_verifies_the_first_runs_records(workspace: Path, counts: Counter[str]) -> None:
    outcome = _fresh(workspace)
    assert run_native(outcome, SETTINGS).completed
    assert run_native(outcome, SETTINGS).completed
    assert counts["verify_build_dir"] == 2


def test_one_fresh_plugin_item_verifies_once_and_probes_once(two_preset_project: pytest.Pytester) -> None:
    two_preset_project.makeconftest(COUNTING_CONFTEST)
    result = two_preset_project.runpytest("-p", "no:cacheprovider", "-k", "cpu_fp32")
    result.assert_outcomes(passed=1)
    walks = [json.loads(line) for line in (two_preset_project.path / "walks.json").read_text().splitlines()]
    assert [(walk["verify_build_dir"], walk["_probe"]) for walk in walks] == [(1, 1)]
