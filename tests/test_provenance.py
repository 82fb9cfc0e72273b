"""SLSA provenance per build, DSSE signatures, keys, and what ``verify --key`` refuses (docs/provenance.md)."""

from __future__ import annotations

import copy
import json
import shutil
import stat
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_inferedgeforge.engine.build import build
from pytest_inferedgeforge.engine.plan import plan_build
from pytest_inferedgeforge.engine.presets import load_preset
from pytest_inferedgeforge.engine.signing import load_signing_key, write_provenance
from pytest_inferedgeforge.model.hashing import file_digest, sha256_json
from pytest_inferedgeforge.model.keys import generate_key
from pytest_inferedgeforge.model.provenance import python_component
from pytest_inferedgeforge.model.records.build import load_manifest
from pytest_inferedgeforge.model.records.key import key_of
from pytest_inferedgeforge.model.records.schemas import schema_for
from pytest_inferedgeforge.verify.build_dir import verify_build_dir
from pytest_inferedgeforge.verify.provenance import statement_rules

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("keys")
    generate_key(root / "ed", "ed25519")
    generate_key(root / "ec", "ecdsa-p256")
    generate_key(root / "other", "ed25519")
    return {"ed": root / "ed", "ec": root / "ec", "other": root / "other"}


@pytest.fixture(scope="module")
def signed_build(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, Path]) -> Path:
    """An int8 build (calibration recorded) signed at build time with the Ed25519 key."""
    root = tmp_path_factory.mktemp("provenance")
    shutil.copytree(REPO / "models", root / "models")
    plan = plan_build(root / "models/tiny_cnn.onnx", load_preset("onnxruntime/cpu_int8", REPO / "presets"),
                      root / "builds")
    return build(plan, signer=load_signing_key(keys["ed"])).record.build_dir


@pytest.fixture
def moved(signed_build: Path, tmp_path: Path) -> Path:
    """The signed build copied to another root: each case tampers with its own copy."""
    target = tmp_path / "elsewhere" / signed_build.name
    shutil.copytree(signed_build, target)
    return target


def _statement(build_dir: Path) -> dict[str, Any]:
    return json.loads((build_dir / "provenance.json").read_text())


def test_provenance_passes_its_generated_schema(signed_build: Path) -> None:
    jsonschema.Draft202012Validator(schema_for("provenance")).validate(_statement(signed_build))


def test_provenance_follows_the_in_toto_and_slsa_rules(signed_build: Path) -> None:
    assert statement_rules(_statement(signed_build)) == []


def test_provenance_names_every_artifact_source_calibration_and_toolchain(signed_build: Path) -> None:
    statement = _statement(signed_build)
    manifest = load_manifest(signed_build / "manifest.json")
    assert statement["subject"] == [{"name": a.file, "digest": {"sha256": a.sha256}} for a in manifest.artifacts or []]
    definition = statement["predicate"]["buildDefinition"]
    dependencies = {item["name"]: item for item in definition["resolvedDependencies"]}
    assert dependencies[manifest.source_model.path]["digest"]["sha256"] == manifest.source_model.sha256
    assert manifest.calibration is not None
    assert dependencies["calibration_samples"]["digest"]["sha256"] == manifest.calibration.sha256
    assert dependencies["onnxruntime"]["uri"].startswith("pkg:pypi/onnxruntime@")
    assert definition["externalParameters"]["input_shapes"] == {"input": [1, 3, 224, 224]}  # integers stay integers
    assert definition["internalParameters"]["build_key"] == manifest.build.build_key


def test_an_onnxruntime_build_lists_the_installed_distribution_as_pkg_pypi(signed_build: Path) -> None:
    uris = [item.get("uri") for item in _statement(signed_build)["predicate"]["buildDefinition"]["resolvedDependencies"]]
    assert f"pkg:pypi/onnxruntime@{metadata.version('onnxruntime')}" in uris


def test_the_source_digest_appears_only_in_resolved_dependencies(signed_build: Path) -> None:
    statement = _statement(signed_build)
    source = load_manifest(signed_build / "manifest.json").source_model
    assert statement["predicate"]["buildDefinition"]["externalParameters"]["source_model"] == {
        "path": source.path, "format": source.format}
    assert json.dumps(statement).count(str(source.sha256)) == 1


def test_provenance_timestamps_are_utc_with_z(signed_build: Path) -> None:
    run = _statement(signed_build)["predicate"]["runDetails"]["metadata"]
    build = load_manifest(signed_build / "manifest.json").build
    assert (run["startedOn"], run["finishedOn"]) == (build.started_at, build.finished_at)
    assert run["startedOn"].endswith("Z") and run["finishedOn"].endswith("Z") and "+" not in run["startedOn"]


def _dist_info(root: Path, name: str, installer: str, direct_url: str | None = None) -> Path:
    info = root / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "INSTALLER").write_text(f"{installer}\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(direct_url)
    return root


def test_an_index_installed_distribution_is_pypi_with_its_pep503_name(tmp_path: Path) -> None:
    component = python_component("Stand_In.Dist", [str(_dist_info(tmp_path, "Stand_In.Dist", "pip"))])
    assert (component.kind, component.distribution, component.version) == ("pypi", "stand-in-dist", "1.0")


def test_a_distribution_installed_from_a_direct_url_is_not_pypi(tmp_path: Path) -> None:
    root = _dist_info(tmp_path, "stand_in", "pip", '{"url": "file:///wheels/stand_in-1.0.whl", "archive_info": {}}')
    component = python_component("stand_in", [str(root)])
    assert (component.kind, component.url) == ("python", "file:///wheels/stand_in-1.0.whl")


def test_a_name_no_distribution_provides_is_a_system_component(tmp_path: Path) -> None:
    assert python_component("stand_in", [str(tmp_path)]).kind == "system"


def test_an_edited_dependency_in_the_provenance_fails_verify(moved: Path, cli: Any) -> None:
    (moved / "provenance.dsse.json").unlink()
    statement = _statement(moved)
    for item in statement["predicate"]["buildDefinition"]["resolvedDependencies"]:
        if item.get("uri", "").startswith("pkg:pypi/onnxruntime@"):
            item["uri"] = "pkg:pypi/onnxruntime@0.0.1"
    (moved / "provenance.json").write_text(json.dumps(statement))
    code, out, _ = cli("verify", str(moved))
    assert code == 1
    assert "predicate.buildDefinition.resolvedDependencies" in out


def _as_record_format_6(build_dir: Path) -> None:
    """Rewrite a build's records as record format 6 wrote them (``+00:00`` timestamps, no toolchain components),
    key included, and compose its provenance from them."""
    for name in ("manifest.json", "metadata.json"):
        record = json.loads((build_dir / name).read_text())
        build = record["build"]
        build.update(record_format=6, started_at=build["started_at"].replace("Z", "+00:00"),
                     finished_at=build["finished_at"].replace("Z", "+00:00"))
        build["key_parts"]["record_format"] = sha256_json(6)
        build["build_key"] = key_of(build["key_parts"])
        record["toolchain"].pop("components")
        (build_dir / name).write_text(json.dumps(record, indent=2))
    (build_dir / "provenance.dsse.json").unlink()
    write_provenance(build_dir, load_manifest(build_dir / "manifest.json"))


def test_a_record_format_6_build_with_offset_timestamps_verifies_with_warnings(moved: Path) -> None:
    _as_record_format_6(moved)
    report = verify_build_dir(moved)
    assert report.valid, report.first_error()
    assert {issue.path for issue in report.warnings} >= {
        "provenance.json:predicate.runDetails.metadata.startedOn", "provenance.json:predicate.runDetails.metadata.finishedOn"}


def test_a_record_format_7_build_with_offset_timestamps_fails_verify(moved: Path, cli: Any) -> None:
    (moved / "provenance.dsse.json").unlink()
    statement = _statement(moved)
    run = statement["predicate"]["runDetails"]["metadata"]
    run["startedOn"] = run["startedOn"].replace("Z", "+00:00")
    (moved / "provenance.json").write_text(json.dumps(statement))
    code, out, _ = cli("verify", str(moved))
    assert code == 1
    assert "startedOn" in out and "is not an RFC 3339 UTC timestamp" in out


def test_byproducts_bind_the_build_log_and_records(signed_build: Path) -> None:
    byproducts = {item["name"]: item["digest"]["sha256"] for item in
                  _statement(signed_build)["predicate"]["runDetails"]["byproducts"]}
    assert byproducts == {name: file_digest(signed_build / name) for name in ("build.log", "metadata.json", "manifest.json")}


def test_a_moved_signed_build_verifies_with_its_public_key(moved: Path, keys: dict[str, Path], cli: Any) -> None:
    code, out, _ = cli("verify", str(moved), "--key", f"{keys['ed']}.pub")
    assert code == 0, out


def test_artifact_and_manifest_edited_together_fail_verify_key(moved: Path, keys: dict[str, Path], cli: Any,
                                                               flip_byte: Any) -> None:
    artifact = moved / "model.onnx"
    flip_byte(artifact, 2000)
    manifest = json.loads((moved / "manifest.json").read_text())
    new_sha, size = file_digest(artifact), artifact.stat().st_size
    for entry in [manifest["artifact"], *manifest["artifacts"]]:
        entry.update(sha256=new_sha, size_bytes=size)
    (moved / "manifest.json").write_text(json.dumps(manifest, indent=2))
    code, out, _ = cli("verify", str(moved), "--key", f"{keys['ed']}.pub")
    assert code == 1
    assert "provenance.json" in out


def test_a_recomposed_provenance_breaks_the_signature(moved: Path, keys: dict[str, Path], cli: Any) -> None:
    """An editor who also rewrites provenance.json to match cannot re-sign it with the trusted key."""
    write_provenance(moved, load_manifest(moved / "manifest.json"))
    code, out, _ = cli("verify", str(moved), "--key", f"{keys['ed']}.pub")
    assert code == 1
    assert "payload is not this build's provenance.json" in out


def test_a_signature_by_another_key_fails(moved: Path, keys: dict[str, Path], cli: Any) -> None:
    code, out, _ = cli("verify", str(moved), "--key", f"{keys['other']}.pub")
    assert code == 1
    assert "no signature verifies with a trusted key" in out


def test_an_unsigned_build_fails_verify_key(moved: Path, keys: dict[str, Path], cli: Any) -> None:
    (moved / "provenance.dsse.json").unlink()
    code, out, _ = cli("verify", str(moved), "--key", f"{keys['ed']}.pub")
    assert code == 1
    assert "not signed" in out


def test_an_unsigned_build_passes_plain_verify(moved: Path, cli: Any) -> None:
    (moved / "provenance.dsse.json").unlink()
    code, out, _ = cli("verify", str(moved))
    assert code == 0, out


def test_require_signature_fails_an_unsigned_build(moved: Path, cli: Any) -> None:
    (moved / "provenance.dsse.json").unlink()
    code, out, _ = cli("verify", str(moved), "--require-signature")
    assert code == 1
    assert "not signed" in out


def test_a_deleted_provenance_fails_verify(moved: Path, cli: Any) -> None:
    (moved / "provenance.json").unlink()
    code, out, _ = cli("verify", str(moved))
    assert code == 1
    assert "provenance.json: missing" in out


def test_sign_adds_a_second_key_to_the_envelope(moved: Path, keys: dict[str, Path], cli: Any) -> None:
    code, _, err = cli("sign", str(moved), "--key", str(keys["ec"]))
    assert code == 0, err
    assert len(json.loads((moved / "provenance.dsse.json").read_text())["signatures"]) == 2
    for name in ("ed", "ec"):
        assert cli("verify", str(moved), "--key", f"{keys[name]}.pub")[0] == 0


def test_sign_refuses_a_build_that_does_not_verify(moved: Path, keys: dict[str, Path], cli: Any, flip_byte: Any) -> None:
    flip_byte(moved / "model.onnx", 2000)
    code, _, err = cli("sign", str(moved), "--key", str(keys["other"]))
    assert code == 1
    assert err.startswith("Error: refusing to sign")


def test_keygen_writes_a_private_key_only_its_owner_reads(tmp_path: Path, cli: Any) -> None:
    code, out, _ = cli("keygen", str(tmp_path / "signing"), "--json")
    assert code == 0
    assert stat.S_IMODE((tmp_path / "signing").stat().st_mode) == 0o600
    assert "BEGIN PUBLIC KEY" in (tmp_path / "signing.pub").read_text()
    assert len(json.loads(out)["keyid"]) == 64


def test_keygen_refuses_to_overwrite_a_key(tmp_path: Path, cli: Any) -> None:
    cli("keygen", str(tmp_path / "signing"))
    code, _, err = cli("keygen", str(tmp_path / "signing"))
    assert code == 1
    assert "already exists" in err


def test_a_private_key_given_as_trusted_key_is_one_clear_error(moved: Path, keys: dict[str, Path], cli: Any) -> None:
    code, _, err = cli("verify", str(moved), "--key", str(keys["ed"]))
    assert code == 1
    assert err.count("\n") == 1 and "a private key was given" in err


def _valid() -> dict[str, Any]:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model.onnx", "digest": {"sha256": "a" * 64}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {"buildType": "https://example.com/t/v1", "externalParameters": {},
                                "resolvedDependencies": [{"uri": "pkg:pypi/onnx@1.17.0"}]},
            "runDetails": {"builder": {"id": "https://example.com/builder"},
                           "metadata": {"startedOn": "2026-01-02T03:04:05Z"}},
        },
    }


BROKEN = {
    "wrong _type": lambda s: s.update({"_type": "https://in-toto.io/Statement/v0.1"}),
    "no subject": lambda s: s.update({"subject": []}),
    "subject without name": lambda s: s["subject"][0].pop("name"),
    "subject without digest": lambda s: s["subject"][0].pop("digest"),
    "short sha256": lambda s: s["subject"][0]["digest"].update({"sha256": "abc"}),
    "upper-case hex": lambda s: s["subject"][0]["digest"].update({"sha256": "A" * 64}),
    "wrong predicateType": lambda s: s.update({"predicateType": "https://slsa.dev/provenance/v0.2"}),
    "no buildType": lambda s: s["predicate"]["buildDefinition"].pop("buildType"),
    "no externalParameters": lambda s: s["predicate"]["buildDefinition"].pop("externalParameters"),
    "empty dependency": lambda s: s["predicate"]["buildDefinition"]["resolvedDependencies"].append({"name": "x"}),
    "no builder id": lambda s: s["predicate"]["runDetails"]["builder"].pop("id"),
    "no runDetails": lambda s: s["predicate"].pop("runDetails"),
    "timestamp without zone": lambda s: s["predicate"]["runDetails"]["metadata"].update(startedOn="2026-01-02 03:04"),
    "basic-format timestamp": lambda s: s["predicate"]["runDetails"]["metadata"].update(startedOn="20261203T142320+0000"),
    "week-date timestamp": lambda s: s["predicate"]["runDetails"]["metadata"].update(startedOn="2026-W49-4T10:00:00Z"),
    "offset timestamp": lambda s: s["predicate"]["runDetails"]["metadata"].update(finishedOn="2026-12-03T14:23:20+00:00"),
    "no such instant": lambda s: s["predicate"]["runDetails"]["metadata"].update(startedOn="2026-13-03T14:23:20Z"),
}


def test_the_minimal_valid_statement_passes() -> None:
    assert statement_rules(_valid()) == []


def test_a_timestamp_with_microseconds_passes() -> None:
    statement = _valid()
    statement["predicate"]["runDetails"]["metadata"]["startedOn"] = "2026-12-03T14:23:20.123456Z"
    assert statement_rules(statement) == []


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_statement_rules_refuse(case: str) -> None:
    statement = copy.deepcopy(_valid())
    BROKEN[case](statement)
    assert statement_rules(statement), case


def test_verify_build_dir_reports_the_signature_issue_with_the_api(moved: Path, keys: dict[str, Path]) -> None:
    from pytest_inferedgeforge.model.keys import load_public_key

    report = verify_build_dir(moved, [load_public_key(Path(f"{keys['other']}.pub"))])
    assert [issue.path for issue in report.errors] == ["provenance.dsse.json"]


@pytest.fixture
def oms_signed(moved: Path, keys: dict[str, Path], cli: Any) -> Path:
    pytest.importorskip("model_signing")
    code, _, err = cli("sign", str(moved), "--key", str(keys["ec"]), "--oms")
    assert code == 0, err
    return moved


def test_oms_signature_verifies_with_the_p256_key(oms_signed: Path, keys: dict[str, Path], cli: Any) -> None:
    assert (oms_signed / "model.sig").is_file()
    code, out, _ = cli("verify", str(oms_signed), "--key", f"{keys['ec']}.pub")
    assert code == 0, out


def test_oms_signature_is_what_the_openssf_tools_verify(oms_signed: Path, keys: dict[str, Path]) -> None:
    from model_signing import verifying

    from pytest_inferedgeforge.verify.oms import oms_hashing

    root = oms_signed.resolve()
    (verifying.Config().set_hashing_config(oms_hashing(root)).set_ignore_unsigned_files(True)
     .use_elliptic_key_verifier(public_key=Path(f"{keys['ec']}.pub")).verify(root, root / "model.sig"))


def test_oms_signature_fails_on_a_changed_build_log(oms_signed: Path, keys: dict[str, Path], cli: Any) -> None:
    with (oms_signed / "build.log").open("a") as handle:
        handle.write("edited\n")
    code, out, _ = cli("verify", str(oms_signed), "--key", f"{keys['ec']}.pub")
    assert code == 1
    assert "ERROR model.sig: the OMS signature does not verify" in out


def test_oms_needs_a_p256_key(moved: Path, keys: dict[str, Path], cli: Any) -> None:
    code, _, err = cli("sign", str(moved), "--key", str(keys["other"]), "--oms")
    assert code == 1
    assert "ECDSA P-256" in err
