"""The shared build cache against a real S3 server (SeaweedFS, started by the ``s3_server`` fixture).

Runner A builds, signs and pushes; runner B, with another output root and only the public key, pulls every
build, verified, and runs none of the toolchains. Tampered, untrusted and concurrent cases on the same server.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import obstore
import pytest

from pytest_inferedgeforge.engine.build import build
from pytest_inferedgeforge.engine.cache_gc import check_entries, collect_garbage
from pytest_inferedgeforge.engine.cache_store import MAX_ENTRY_BYTES
from pytest_inferedgeforge.engine.plan import plan_build
from pytest_inferedgeforge.engine.presets import load_preset
from pytest_inferedgeforge.engine.shared_cache import AC, CAS, connect, open_store, push
from pytest_inferedgeforge.engine.signing import load_signing_key
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.keys import generate_key

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def fleet(two_preset_project: pytest.Pytester, s3_cache: str) -> dict[str, Any]:
    """A project, a key pair, and the cache URL runner A and runner B share."""
    root = two_preset_project.path
    generate_key(root / "signing")
    return {"pytester": two_preset_project, "url": s3_cache, "key": root / "signing", "pub": root / "signing.pub"}


def _runner_a(fleet: dict[str, Any]) -> pytest.RunResult:
    return fleet["pytester"].runpytest("tiny.forge.yaml", "-p", "no:cacheprovider", "--forge-output", "root_a",
                                       "--forge-cache", fleet["url"], "--forge-cache-push",
                                       "--forge-sign-key", str(fleet["key"]), "--forge-report", "a.json")


def _runner_b(fleet: dict[str, Any], *extra: str) -> pytest.RunResult:
    return fleet["pytester"].runpytest("tiny.forge.yaml", "-p", "no:cacheprovider", "--forge-output", "root_b",
                                       "--forge-cache", fleet["url"], "--forge-trust", str(fleet["pub"]),
                                       "--forge-report", "b.json", *extra)


def _items(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text())["items"]


def test_runner_b_pulls_every_build_runner_a_pushed(fleet: dict[str, Any]) -> None:
    _runner_a(fleet).assert_outcomes(passed=2)
    _runner_b(fleet).assert_outcomes(passed=2)
    root = fleet["pytester"].path
    assert [item["properties"]["build_source"] for item in _items(root / "a.json")] == ["built", "built"]
    assert all(item["properties"]["cache_push"].startswith("pushed") for item in _items(root / "a.json"))
    assert [item["properties"]["build_source"] for item in _items(root / "b.json")] == ["remote", "remote"]


def test_runner_b_ran_no_toolchain(fleet: dict[str, Any]) -> None:
    """B's build logs are A's, byte for byte: no build ran on B, yet B benchmarked each artifact itself."""
    _runner_a(fleet)
    _runner_b(fleet)
    root = fleet["pytester"].path
    for build_dir in sorted((root / "root_b").glob("tiny_cnn__*")):
        assert (build_dir / "build.log").read_bytes() == (root / "root_a" / build_dir.name / "build.log").read_bytes()
        assert (build_dir / "run_summary.json").is_file()


def test_each_key_is_built_once_and_stored_once(fleet: dict[str, Any]) -> None:
    _runner_a(fleet)
    _runner_b(fleet)
    _runner_a(fleet)  # a second run of A: local hits, already in the cache
    entries = connect(fleet["url"], [fleet["pub"]]).entries()
    assert len(entries) == 2
    assert [item["properties"]["cache_push"] for item in _items(fleet["pytester"].path / "a.json")] == \
        ["already in the shared cache"] * 2


def test_the_pulled_builds_pass_the_gate_with_the_trusted_key(fleet: dict[str, Any]) -> None:
    """B holds only the public key, so its own runs are unsigned: the gate is told to allow that."""
    _runner_a(fleet)
    _runner_b(fleet)
    gate = fleet["pytester"].runpytest("root_b", "-p", "no:cacheprovider", "--forge-trust", str(fleet["pub"]),
                                       "--forge-allow-unsigned-runs")
    gate.assert_outcomes(passed=2)


def test_the_gate_with_a_trusted_key_fails_unsigned_builds(fleet: dict[str, Any]) -> None:
    fleet["pytester"].runpytest("tiny.forge.yaml", "-p", "no:cacheprovider", "--forge-output", "plain",
                                "--forge-no-benchmark")
    gate = fleet["pytester"].runpytest("plain", "-p", "no:cacheprovider", "--forge-trust", str(fleet["pub"]))
    gate.assert_outcomes(failed=2)
    gate.stdout.fnmatch_lines(["*provenance.dsse.json: missing: the build is not signed*"])


def _flip_blob(url: str, digest: str) -> None:
    """What a writer with access to the bucket could do: replace a blob's bytes under its name."""
    store = open_store(url)
    data = bytearray(obstore.get(store, CAS + digest).bytes())
    data[len(data) // 2] ^= 0x01
    obstore.delete(store, CAS + digest)
    obstore.put(store, CAS + digest, bytes(data))


def test_a_flipped_byte_in_a_blob_is_refused_and_the_build_is_local(fleet: dict[str, Any]) -> None:
    _runner_a(fleet)
    root = fleet["pytester"].path
    for item in _items(root / "a.json"):
        _flip_blob(fleet["url"], item["properties"]["artifact_sha256"])
    result = _runner_b(fleet)
    result.assert_outcomes(passed=2)
    items = _items(root / "b.json")
    assert [item["properties"]["build_source"] for item in items] == ["built", "built"]
    assert all("does not hash to the digest of model" in item["properties"]["cache_reason"] for item in items)


def test_an_entry_signed_by_an_untrusted_key_is_refused(fleet: dict[str, Any]) -> None:
    _runner_a(fleet)
    stranger = fleet["pytester"].path / "stranger"
    generate_key(stranger)
    fleet["pub"] = Path(f"{stranger}.pub")
    _runner_b(fleet).assert_outcomes(passed=2)
    items = _items(fleet["pytester"].path / "b.json")
    assert [item["properties"]["build_source"] for item in items] == ["built", "built"]
    assert all("not signed by a trusted key" in item["properties"]["cache_reason"] for item in items)


def test_an_entry_under_another_key_is_refused(fleet: dict[str, Any]) -> None:
    """An entry copied to another build key (Olive's collision, or a poisoning attempt) is not served."""
    _runner_a(fleet)
    store = open_store(fleet["url"])
    keys = [item["properties"]["build_key"] for item in _items(fleet["pytester"].path / "a.json")]
    fp32, dynamic = (bytes(obstore.get(store, AC + key).bytes()) for key in keys)
    for key in keys:
        obstore.delete(store, AC + key)
    obstore.put(store, AC + keys[0], dynamic.replace(keys[1].encode(), keys[0].encode()))
    obstore.put(store, AC + keys[1], fp32)
    _runner_b(fleet).assert_outcomes(passed=2)
    reasons = [item["properties"]["cache_reason"] for item in _items(fleet["pytester"].path / "b.json")]
    assert "the signed provenance is of build key" in reasons[0]
    assert "holds an entry for another build key" in reasons[1]


def test_concurrent_pushers_of_one_key_store_one_entry(tmp_path: Path, s3_cache: str) -> None:
    key = tmp_path / "signing"
    generate_key(key)
    plan = plan_build(REPO / "models/tiny_cnn.onnx", load_preset("onnxruntime/cpu_fp32", REPO / "presets"),
                      tmp_path / "builds")
    build_dir = build(plan, signer=load_signing_key(key)).record.build_dir
    cache = connect(s3_cache, [Path(f"{key}.pub")], push=True)
    written: list[bool] = []
    threads = [threading.Thread(target=lambda: written.append(push(cache, build_dir).entry_written)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(written) == [False] * 5 + [True]
    assert len(cache.entries()) == 1


def test_a_dangling_entry_another_build_cannot_repair_is_replaced(tmp_path: Path, s3_cache: str) -> None:
    """Two builds of one key differ in build.log (its timestamps): the second push cannot put back the first's
    missing build.log blob, so it replaces the entry with its own, whole one."""
    key = tmp_path / "signing"
    generate_key(key)
    cache = connect(s3_cache, [Path(f"{key}.pub")], push=True)
    first, second = (build(plan_build(REPO / "models/tiny_cnn.onnx", load_preset("onnxruntime/cpu_fp32", REPO / "presets"),
                                      tmp_path / root), signer=load_signing_key(key)).record.build_dir
                     for root in ("a", "b"))
    build_key = push(cache, first).key
    store = open_store(s3_cache)
    entry = json.loads(bytes(obstore.get(store, AC + build_key).bytes()))
    obstore.delete(store, CAS + next(item["sha256"] for item in entry["files"] if item["path"] == "build.log"))
    assert push(cache, second).entry_written
    assert [check.status for check in check_entries(cache)] == ["ok"]


def test_gc_deletes_nothing_while_an_entry_cannot_be_read(tmp_path: Path) -> None:
    """An entry too large to read might name any blob: gc stops rather than guess."""
    cache = connect(str(tmp_path / "shared"), [])
    (tmp_path / "shared" / "ac").mkdir()
    with (tmp_path / "shared" / "ac" / ("ab" * 32)).open("wb") as handle:
        handle.truncate(MAX_ENTRY_BYTES + 1)
    obstore.put(cache.store, CAS + "0" * 64, b"orphan")
    with pytest.raises(ForgeError, match="gc deletes nothing while an entry cannot be read"):
        collect_garbage(cache, grace_s=0)
    assert cache.exists(CAS + "0" * 64)


def test_cache_cli_lists_pulls_and_collects_garbage(fleet: dict[str, Any], cli: Any, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    _runner_a(fleet)
    capsys.readouterr()  # runner A's session output
    url = fleet["url"]
    code, out, _ = cli("cache", "ls", "--cache", url, "--json")
    assert code == 0
    rows = json.loads(out)
    assert {row["preset"] for row in rows} == {"onnxruntime/cpu_fp32", "onnxruntime/cpu_int8_dynamic"}
    code, out, err = cli("cache", "pull", rows[0]["key"], "--cache", url, "--trust", str(fleet["pub"]),
                         "--output", str(tmp_path / "pulled"), "--json")
    assert code == 0, err
    assert cli("verify", json.loads(out)["build_dir"], "--key", str(fleet["pub"]))[0] == 0
    store = open_store(url)
    obstore.put(store, CAS + "0" * 64, b"orphan")
    code, out, _ = cli("cache", "gc", "--cache", url, "--grace-s", "0", "--json")
    assert json.loads(out)["deleted"] == [CAS + "0" * 64]


def test_cache_pull_without_a_trusted_key_is_a_usage_error(fleet: dict[str, Any], cli: Any) -> None:
    code, _, err = cli("cache", "pull", "0" * 64, "--cache", fleet["url"])
    assert code == 2
    assert "--trust" in err


def test_cache_push_refuses_an_unsigned_build(tmp_path: Path, s3_cache: str, cli: Any) -> None:
    plan = plan_build(REPO / "models/tiny_cnn.onnx", load_preset("onnxruntime/cpu_fp32", REPO / "presets"),
                      tmp_path / "builds")
    build_dir = build(plan).record.build_dir
    code, _, err = cli("cache", "push", str(build_dir), "--cache", s3_cache)
    assert code == 1
    assert "not signed" in err


def test_push_without_a_sign_key_is_a_usage_error(fleet: dict[str, Any]) -> None:
    result = fleet["pytester"].runpytest("tiny.forge.yaml", "--forge-cache", fleet["url"], "--forge-cache-push")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--forge-cache-push needs --forge-sign-key*"])


def test_a_directory_cache_works_like_s3(tmp_path: Path, cli: Any) -> None:
    """A shared file system path is the same layout, create-only too."""
    cli("keygen", str(tmp_path / "k"))
    model = str(REPO / "models/tiny_cnn.onnx")
    common = ("--model", model, "--preset", "onnxruntime/cpu_fp32", "--cache", str(tmp_path / "shared"), "--json")
    code, out, err = cli("build", *common, "--output", str(tmp_path / "a"), "--sign-key", str(tmp_path / "k"),
                         "--cache-push")
    assert code == 0, err
    code, out, err = cli("build", *common, "--output", str(tmp_path / "b"), "--trust", str(tmp_path / "k.pub"))
    assert json.loads(out)["build_source"] == "remote"


def test_a_dynamic_model_is_pulled_under_its_shapes_tagged_name(tmp_path: Path, cli: Any, dynamic_model: Path) -> None:
    """The name a pull derives from the signed manifest carries the resolved shapes, as a local build's does."""
    cli("keygen", str(tmp_path / "k"))
    common = ("--model", str(dynamic_model), "--preset", "onnxruntime/cpu_fp32", "--input-shape",
              "pixel_values:1x3x32x32", "--cache", str(tmp_path / "shared"), "--json")
    cli("build", *common, "--output", str(tmp_path / "a"), "--sign-key", str(tmp_path / "k"), "--cache-push")
    code, out, err = cli("build", *common, "--output", str(tmp_path / "b"), "--trust", str(tmp_path / "k.pub"))
    assert (code, json.loads(out)["build_source"]) == (0, "remote"), err
    assert [path.name for path in (tmp_path / "b").glob("exported_dynamic__*")] == \
        [path.name for path in (tmp_path / "a").glob("exported_dynamic__*")] == \
        ["exported_dynamic__cpu__onnxruntime__cpu_fp32__1x3x32x32"]


def test_junit_says_where_each_build_came_from(fleet: dict[str, Any]) -> None:
    import xml.etree.ElementTree as ET

    _runner_a(fleet)
    _runner_b(fleet, "--junitxml", "b.xml")
    tree = ET.parse(fleet["pytester"].path / "b.xml")
    sources = [prop.get("value") for prop in tree.iter("property") if prop.get("name") == "build_source"]
    assert sources == ["remote", "remote"]


def test_the_cache_settings_work_from_the_ini_file(fleet: dict[str, Any]) -> None:
    """Runner A and B configured in pytest.ini (paths relative to it), nothing on the command line."""
    pytester = fleet["pytester"]
    pytester.makeini(f"[pytest]\nforge_output = root_a\nforge_cache = {fleet['url']}\nforge_cache_push = true\n"
                     "forge_sign_key = signing\n")
    pytester.runpytest("tiny.forge.yaml", "-p", "no:cacheprovider").assert_outcomes(passed=2)
    pytester.makeini(f"[pytest]\nforge_output = root_b\nforge_cache = {fleet['url']}\nforge_trust =\n    signing.pub\n")
    pytester.runpytest("tiny.forge.yaml", "-p", "no:cacheprovider", "--forge-report", "b.json").assert_outcomes(passed=2)
    assert [item["properties"]["build_source"] for item in _items(pytester.path / "b.json")] == ["remote", "remote"]


def test_an_unreachable_cache_is_said_once_and_builds_go_on(two_preset_project: pytest.Pytester,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name, value in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "a",
                        "AWS_SECRET_ACCESS_KEY": "b"}.items():
        monkeypatch.setenv(name, value)
    generate_key(two_preset_project.path / "k")
    result = two_preset_project.runpytest("tiny.forge.yaml", "-p", "no:cacheprovider", "--forge-cache", "s3://forge/x",
                                          "--forge-trust", "k.pub", "--forge-report", "r.json")
    result.assert_outcomes(passed=2)
    first, second = (item["properties"]["cache_reason"] for item in _items(two_preset_project.path / "r.json"))
    assert "failed" in first and "not asked again" not in first
    assert "not asked again" in second
