"""The checked-in JSON Schemas are exactly what the pydantic models generate, and real files satisfy them."""

import json
from pathlib import Path

import jsonschema
import pytest

from pytest_inferedgeforge.engine.build import build
from pytest_inferedgeforge.engine.plan import plan_build
from pytest_inferedgeforge.engine.presets import load_preset
from pytest_inferedgeforge.engine.runs import RunSettings, run_native
from pytest_inferedgeforge.model.records.schemas import schema_names, schema_text

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schemas"


@pytest.mark.parametrize("name", schema_names())
def test_checked_in_schema_has_not_drifted(name: str) -> None:
    path = SCHEMAS / f"{name}.schema.json"
    assert path.is_file(), f"missing {path}; run: inferedgeforge schema --export docs/schemas"
    assert path.read_text() == schema_text(name), f"{path} drifted; run: inferedgeforge schema --export docs/schemas"


def test_no_stale_schema_files() -> None:
    assert sorted(p.name for p in SCHEMAS.glob("*.schema.json")) == sorted(f"{n}.schema.json" for n in schema_names())
    assert sorted(p.name for p in SCHEMAS.iterdir()) == sorted([f"{n}.schema.json" for n in schema_names()] + ["junit.xsd"])


def test_written_files_validate_against_their_schemas(workspace: Path) -> None:
    preset = load_preset("onnxruntime/cpu_int8", workspace / "presets")
    record = build(plan_build(Path("models/tiny_cnn.onnx"), preset, workspace / "builds")).record
    run = run_native(record.build_dir, RunSettings(runs=3, warmup=0, samples=2))
    schema = {name: json.loads((SCHEMAS / f"{name}.schema.json").read_text()) for name in schema_names()}
    pairs = [("metadata", record.metadata_path), ("manifest", record.manifest_path), ("run_summary", run.summary_path),
             ("structured_result", run.structured_result_path), ("accuracy_evidence", run.evidence_path)]
    for name, path in pairs:
        jsonschema.validate(json.loads(Path(path).read_text()), schema[name])
    for spec in Path(__file__).resolve().parent.parent.joinpath("experiments").glob("*.forge.yaml"):
        import yaml

        jsonschema.validate(yaml.safe_load(spec.read_text()), schema["experiment"])
