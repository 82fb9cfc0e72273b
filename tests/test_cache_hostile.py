"""The shared cache under attack and fault (issue 23): a writer with bucket access, a FIFO, a full disk, a frozen
server, credentials in an endpoint. Each test stages the fault first, then asserts what a runner is left with.
S3 cases run against the real SeaweedFS server (``s3_cache``); FIFOs and sparse files in a directory cache.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import obstore
import pytest

from pytest_inferedgeforge.engine.build import build
from pytest_inferedgeforge.engine.cache_store import CHUNK, MAX_ENTRY_BYTES, CacheRefused
from pytest_inferedgeforge.engine.plan import plan_build
from pytest_inferedgeforge.engine.presets import load_preset
from pytest_inferedgeforge.engine.runs import RunSettings, run_native
from pytest_inferedgeforge.engine.shared_cache import AC, CAS, connect, open_store, pull, push
from pytest_inferedgeforge.engine.signing import load_signing_key
from pytest_inferedgeforge.model.keys import generate_key
from pytest_inferedgeforge.model.layout import MANIFEST_FILE, RUNS_DIR

REPO = Path(__file__).resolve().parent.parent
KEY_OF_NOTHING = "ab" * 32


@dataclass(frozen=True)
class Signed:
    """Runner A's output: a key pair and a signed build per preset."""

    key: Path
    pub: Path
    builds: dict[str, Path]


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Signed:
    root = tmp_path_factory.mktemp("runner_a")
    generate_key(root / "signing")
    signer = load_signing_key(root / "signing")
    builds = {}
    for preset in ("cpu_fp32", "cpu_int8_dynamic"):
        plan = plan_build(REPO / "models/tiny_cnn.onnx", load_preset(f"onnxruntime/{preset}", REPO / "presets"),
                          root / "builds")
        builds[preset] = build(plan, signer=signer).record.build_dir
    return Signed(root / "signing", root / "signing.pub", builds)


def _push_all(url: str, signed: Signed) -> dict[str, str]:
    """Push every build; preset -> its build key."""
    cache = connect(url, [signed.pub], push=True)
    return {preset: push(cache, build_dir).key for preset, build_dir in signed.builds.items()}


def _rewrite(url: str, path: str, change: Callable[[dict[str, Any]], None]) -> None:
    """What a writer with bucket access can do to an entry: replace it with an edited copy."""
    store = open_store(url)
    data = json.loads(bytes(obstore.get(store, path).bytes()))
    change(data)
    obstore.delete(store, path)
    obstore.put(store, path, json.dumps(data).encode())


def _entry(url: str, key: str) -> dict[str, Any]:
    return json.loads(bytes(obstore.get(open_store(url), AC + key).bytes()))


def _blob_of(url: str, key: str, name: str) -> str:
    return next(CAS + item["sha256"] for item in _entry(url, key)["files"] if item["path"] == name)


def _present(url: str, path: str) -> bool:
    try:
        obstore.head(open_store(url), path)
    except FileNotFoundError:
        return False
    return True


def _pull_cli(cli: Any, url: str, key: str, signed: Signed, root: Path) -> tuple[int, str, str]:
    return cli("cache", "pull", key, "--cache", url, "--trust", str(signed.pub), "--output", str(root))  # type: ignore[no-any-return]


def _measured(build_dir: Path) -> Path:
    """Run the build once here, as runner B does after a pull; the run directory."""
    run_native(build_dir, RunSettings(warmup=1, runs=3, samples=1, accuracy=False))
    return next(path for path in (build_dir / RUNS_DIR).iterdir() if path.is_dir())


# 2: every field of an entry is bound


def test_a_forged_entry_name_cannot_replace_another_build(signed: Signed, s3_cache: str, cli: Any,
                                                          tmp_path: Path) -> None:
    """The fp32 entry renamed to the int8 build directory: the pull is refused, the int8 build and its run stay."""
    keys = _push_all(s3_cache, signed)
    root = tmp_path / "runner_b"
    assert _pull_cli(cli, s3_cache, keys["cpu_int8_dynamic"], signed, root)[0] == 0
    int8 = root / signed.builds["cpu_int8_dynamic"].name
    run = _measured(int8)
    manifest = (int8 / MANIFEST_FILE).read_bytes()
    _rewrite(s3_cache, AC + keys["cpu_fp32"], lambda entry: entry.update(build_dir_name=int8.name))
    code, _, err = _pull_cli(cli, s3_cache, keys["cpu_fp32"], signed, root)
    assert (code, (int8 / MANIFEST_FILE).read_bytes(), run.is_dir()) == (1, manifest, True), err


def test_a_pull_over_the_same_build_keeps_its_runs(signed: Signed, s3_cache: str, cli: Any, tmp_path: Path) -> None:
    keys = _push_all(s3_cache, signed)
    root = tmp_path / "runner_b"
    _pull_cli(cli, s3_cache, keys["cpu_fp32"], signed, root)
    run = _measured(root / signed.builds["cpu_fp32"].name)
    code, out, err = _pull_cli(cli, s3_cache, keys["cpu_fp32"], signed, root)
    assert (code, run.is_dir()) == (0, True), err
    assert "already holds this build" in out


def test_a_pull_into_a_build_of_another_key_is_refused(signed: Signed, s3_cache: str, tmp_path: Path) -> None:
    """The engine's pull, aimed at a directory that holds another key's build, leaves that build alone."""
    keys = _push_all(s3_cache, signed)
    target = tmp_path / signed.builds["cpu_fp32"].name
    shutil.copytree(signed.builds["cpu_int8_dynamic"], target)
    manifest = (target / MANIFEST_FILE).read_bytes()
    with pytest.raises(CacheRefused, match="another build key"):
        pull(connect(s3_cache, [signed.pub]), keys["cpu_fp32"], target)
    assert (target / MANIFEST_FILE).read_bytes() == manifest


def test_a_key_that_is_a_path_is_refused(signed: Signed, tmp_path: Path, cli: Any) -> None:
    """A directory cache read by plain system calls: a 'key' of ../ must not reach outside ac/."""
    (tmp_path / "outside.json").write_text("{}")
    code, _, err = _pull_cli(cli, str(tmp_path / "shared"), "../../outside.json", signed, tmp_path / "runner_b")
    assert (code, "not a build key" in err) == (1, True), err


# 3: only regular files are opened in a directory cache


def _in_thread(action: Callable[[], Any], timeout_s: float) -> tuple[bool, BaseException | None]:
    """Run ``action``; (finished within ``timeout_s``, what it raised)."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            action()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    return not thread.is_alive(), raised[0] if raised else None


@pytest.fixture
def fifo() -> Iterator[Callable[[Path], Path]]:
    """Make a FIFO at a path; afterwards, open each for writing once so a reader stuck on it (the fault) ends."""
    made: list[Path] = []

    def make(path: Path) -> Path:
        path.unlink(missing_ok=True)
        os.mkfifo(path)
        made.append(path)
        return path

    yield make
    for path in made:
        with contextlib.suppress(OSError):  # no reader is waiting on it
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def test_a_fifo_entry_is_refused_within_a_second(signed: Signed, tmp_path: Path,
                                                  fifo: Callable[[Path], Path]) -> None:
    cache = connect(str(tmp_path / "shared"), [signed.pub])
    (tmp_path / "shared" / "ac").mkdir()
    fifo(tmp_path / "shared" / "ac" / KEY_OF_NOTHING)
    finished, raised = _in_thread(lambda: cache.read_entry(KEY_OF_NOTHING), 1.0)
    assert finished and isinstance(raised, CacheRefused) and "not a regular file" in str(raised)


def test_a_fifo_blob_is_refused_within_a_second(signed: Signed, tmp_path: Path,
                                                 fifo: Callable[[Path], Path]) -> None:
    url = str(tmp_path / "shared")
    key = _push_all(url, signed)["cpu_fp32"]
    fifo(tmp_path / "shared" / _blob_of(url, key, "model.onnx"))
    target = tmp_path / "runner_b" / signed.builds["cpu_fp32"].name
    target.parent.mkdir()
    finished, raised = _in_thread(lambda: pull(connect(url, [signed.pub]), key, target), 1.0)
    assert finished and isinstance(raised, CacheRefused) and "not a regular file" in str(raised)


# 4: no dangling entries


def test_gc_keeps_the_blobs_of_an_entry_it_cannot_parse(signed: Signed, s3_cache: str, cli: Any) -> None:
    """An entry of another schema version names its blobs its own way; gc must not take them."""
    key = _push_all(s3_cache, signed)["cpu_fp32"]
    blobs = [CAS + item["sha256"] for item in _entry(s3_cache, key)["files"]]

    def other_version(entry: dict[str, Any]) -> None:
        entry.update(format="inferedgeforge-cache-entry-v9", objects={i["path"]: i.pop("sha256") for i in entry["files"]})
        del entry["files"]

    _rewrite(s3_cache, AC + key, other_version)
    assert cli("cache", "gc", "--cache", s3_cache, "--grace-s", "0")[0] == 0
    assert [blob for blob in blobs if not _present(s3_cache, blob)] == []


def test_a_push_repairs_a_blob_deleted_before_its_entry_was_written(signed: Signed, s3_cache: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """gc deleting a blob between the push's existence check and its entry write (the race of issue 23)."""
    cache = connect(s3_cache, [signed.pub], push=True)
    put_create = cache.put_create

    def gc_strikes_first(path: str, data: bytes | Path) -> bool:
        if path.startswith(AC):
            entry = json.loads(data if isinstance(data, bytes) else data.read_bytes())
            obstore.delete(cache.store, CAS + entry["files"][0]["sha256"])
        return put_create(path, data)

    monkeypatch.setattr(cache, "put_create", gc_strikes_first)
    key = push(cache, signed.builds["cpu_fp32"]).key
    assert [item["path"] for item in _entry(s3_cache, key)["files"]
            if not _present(s3_cache, CAS + item["sha256"])] == []


def test_a_later_push_repairs_a_dangling_entry(signed: Signed, s3_cache: str) -> None:
    key = _push_all(s3_cache, signed)["cpu_fp32"]
    blob = _blob_of(s3_cache, key, "model.onnx")
    obstore.delete(open_store(s3_cache), blob)
    push(connect(s3_cache, [signed.pub], push=True), signed.builds["cpu_fp32"])
    assert _present(s3_cache, blob)


def test_cache_check_lists_a_dangling_entry(signed: Signed, s3_cache: str, cli: Any) -> None:
    keys = _push_all(s3_cache, signed)
    obstore.delete(open_store(s3_cache), _blob_of(s3_cache, keys["cpu_fp32"], "model.onnx"))
    code, out, _ = cli("cache", "check", "--cache", s3_cache, "--json")
    assert code == 1
    assert [(row["key"], row["missing"]) for row in json.loads(out) if row["missing"]] == \
        [(keys["cpu_fp32"], ["model.onnx"])]


def test_gc_dry_run_shows_the_decisions_gc_makes(signed: Signed, s3_cache: str, cli: Any) -> None:
    _push_all(s3_cache, signed)
    obstore.put(open_store(s3_cache), CAS + "0" * 64, b"orphan")
    _, dry, _ = cli("cache", "gc", "--cache", s3_cache, "--grace-s", "0", "--dry-run", "--json")
    _, real, _ = cli("cache", "gc", "--cache", s3_cache, "--grace-s", "0", "--json")
    assert json.loads(dry)["would_delete"] == json.loads(real)["deleted"] == [CAS + "0" * 64]


# 5: every read is bounded before it starts


def test_an_oversized_entry_is_refused_without_reading_it(signed: Signed, tmp_path: Path) -> None:
    """600 MB of sparse zeros at ac/<key>: refused from its size, memory stays where it was."""
    cache = connect(str(tmp_path / "shared"), [signed.pub])
    (tmp_path / "shared" / "ac").mkdir()
    with (tmp_path / "shared" / "ac" / KEY_OF_NOTHING).open("wb") as handle:
        handle.truncate(600 * 1024 * 1024)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CacheRefused, match="too large"):
        cache.read_entry(KEY_OF_NOTHING)
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024 < MAX_ENTRY_BYTES


_BOUNDED_PULL = """
import resource, signal, sys
from pathlib import Path
from pytest_inferedgeforge.engine.shared_cache import CacheRefused, connect, pull
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
url, pub, key, target, limit = sys.argv[1:]
resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    pull(connect(url, [Path(pub)]), key, Path(target))
except CacheRefused as exc:
    print("refused:", exc)
"""


def test_a_blob_beyond_its_signed_size_is_refused_before_it_is_written(signed: Signed, s3_cache: str,
                                                                      tmp_path: Path) -> None:
    """64 MiB of junk as the artifact, its entry claiming that size: no file of the pull may grow past the signed
    size and a chunk (RLIMIT_FSIZE turns any larger write into an error)."""
    key = _push_all(s3_cache, signed)["cpu_fp32"]
    artifact = signed.builds["cpu_fp32"] / "model.onnx"
    junk = 64 * 1024 * 1024
    store, blob = open_store(s3_cache), _blob_of(s3_cache, key, "model.onnx")
    obstore.delete(store, blob)
    obstore.put(store, blob, os.urandom(junk))
    _rewrite(s3_cache, AC + key, lambda entry: [item.update(size_bytes=junk) for item in entry["files"]
                                               if item["path"] == "model.onnx"])
    target = tmp_path / "runner_b" / artifact.parent.name
    target.parent.mkdir()
    limit = artifact.stat().st_size + CHUNK
    result = subprocess.run([sys.executable, "-c", _BOUNDED_PULL, s3_cache, str(signed.pub), key, str(target),
                             str(limit)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0 and result.stdout.startswith("refused:"), result.stdout + result.stderr


def test_a_full_local_disk_is_a_local_error_and_the_cache_stays_in_use(signed: Signed, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    url = str(tmp_path / "shared")
    key = _push_all(url, signed)["cpu_fp32"]
    cache = connect(url, [signed.pub])
    target = tmp_path / "runner_b" / signed.builds["cpu_fp32"].name
    target.parent.mkdir()
    real_open = Path.open

    def full_disk(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if self.name == "model.onnx" and "w" in mode:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", full_disk)
    with pytest.raises(Exception, match="No space left on device") as raised:
        pull(cache, key, target)
    assert "on this machine" in str(raised.value)
    assert cache.unreachable is None


# 10: no credentials in records


def test_credentials_in_the_endpoint_reach_no_record(two_preset_project: pytest.Pytester, s3_cache: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """user:password in AWS_ENDPOINT_URL, and a refused secret so every request fails with the URL in its error."""
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.replace("http://", "http://leaky:hunter2@"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "refused")
    root = two_preset_project.path
    generate_key(root / "k")
    two_preset_project.runpytest("tiny.forge.yaml", "-p", "no:cacheprovider", "--forge-no-benchmark",
                                 "--forge-cache", s3_cache, "--forge-cache-push", "--forge-sign-key", "k",
                                 "--forge-trust", "k.pub", "--forge-report", "r.json", "--junitxml", "j.xml")
    records = [root / "r.json", root / "j.xml", *sorted(root.glob("builds/*/build.log"))]
    assert len(records) == 4
    assert "127.0.0.1" in (root / "r.json").read_text()  # the failure is reported, with its endpoint
    assert [path.name for path in records if "hunter2" in path.read_text()] == []


# 11: a frozen server costs seconds, not minutes


@pytest.fixture
def frozen_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An S3 endpoint that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "b")
    yield endpoint
    server.close()
    for conn in held:
        conn.close()


def test_a_frozen_server_falls_back_within_the_timeout(signed: Signed, frozen_endpoint: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGE_CACHE_TIMEOUT", "2")
    plan = plan_build(REPO / "models/tiny_cnn.onnx", load_preset("onnxruntime/cpu_fp32", REPO / "presets"),
                      tmp_path / "builds")
    built: list[Any] = []
    started = time.monotonic()
    finished, raised = _in_thread(lambda: built.append(build(plan, shared=connect("s3://forge/x", [signed.pub]))), 15)
    assert (finished, raised, time.monotonic() - started < 10) == (True, None, True)
    assert built[0].source == "built" and "failed" in built[0].reason


def test_the_cache_commands_take_a_timeout(frozen_endpoint: str, cli: Any) -> None:
    started = time.monotonic()
    code, _, err = cli("cache", "ls", "--cache", "s3://forge/x", "--timeout", "1")
    assert (code, time.monotonic() - started < 8) == (1, True), err
