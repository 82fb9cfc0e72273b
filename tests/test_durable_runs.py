"""Durable runs: a full disk at any step of a run leaves a build that verifies, and a torn ledger line costs only
itself (issue 23, found with a 50 MB tmpfs)."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_inferedgeforge.engine.history import read_history
from pytest_inferedgeforge.engine.ledger import append_to_ledger, ledger_path
from pytest_inferedgeforge.engine.run_records import RunWriteError
from pytest_inferedgeforge.engine.runs import RunSettings, run_native
from pytest_inferedgeforge.model.records.run import RunSummary
from pytest_inferedgeforge.verify.build_dir import verify_build_dir

FP32 = "tiny_cnn__cpu__onnxruntime__cpu_fp32"
SETTINGS = RunSettings(warmup=0, runs=2, samples=2)

needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names a descriptor's file via /proc")


@pytest.fixture
def disk_full_from(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Fill the disk when a file whose name holds ``name`` is first fsynced: from then on every fsync of a file
    fails with ENOSPC (where a full disk reports written data it cannot place)."""
    def arm(name: str) -> None:
        full = [False]
        fsync = os.fsync

        def failing(descriptor: int) -> None:
            path = os.readlink(f"/proc/self/fd/{descriptor}")
            if stat.S_ISREG(os.fstat(descriptor).st_mode) and (full[0] or name in Path(path).name):
                full[0] = True
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
            fsync(descriptor)

        monkeypatch.setattr(os, "fsync", failing)
    return arm


def _build(cli: Callable[..., tuple[int, str, str]], output: Path, *, run: bool = True) -> Path:
    code, _, err = cli("build", "--model", "models/tiny_cnn.onnx", "--output", str(output), "--preset",
                       "onnxruntime/cpu_fp32")
    assert code == 0, err
    if run:
        code, _, err = cli("run-benchmark", str(output / FP32), "--runs", "2", "--warmup", "0")
        assert code == 0, err
    return output / FP32


def _state(build_dir: Path) -> dict[str, object]:
    """What a failed run must leave as it was: the runs, the pointer, the build's summary and the ledger."""
    runs = build_dir / "runs"
    return {"runs": sorted(path.name for path in runs.iterdir()) if runs.is_dir() else [],
            "latest": (runs / "latest.json").read_text() if (runs / "latest.json").exists() else None,
            "summary": (build_dir / "run_summary.json").read_text(),
            "ledger": ledger_path(build_dir).read_text() if ledger_path(build_dir).exists() else None}


@needs_proc
def test_a_full_disk_while_writing_the_run_directory_fails_the_run_and_keeps_the_previous_state(
        workspace: Path, cli, disk_full_from: Callable[[str], None]) -> None:
    build_dir = _build(cli, workspace / "builds")
    before = _state(build_dir)
    disk_full_from("structured_result.json")
    with pytest.raises(RunWriteError, match="No space left on device"):
        run_native(build_dir, SETTINGS)
    assert _state(build_dir) == before
    assert verify_build_dir(build_dir).valid


@needs_proc
def test_a_full_disk_while_writing_latest_json_fails_the_run_and_keeps_the_previous_state(
        workspace: Path, cli, disk_full_from: Callable[[str], None]) -> None:
    build_dir = _build(cli, workspace / "builds")
    before = _state(build_dir)
    disk_full_from("latest.json")
    with pytest.raises(RunWriteError, match="No space left on device"):
        run_native(build_dir, SETTINGS)
    assert _state(build_dir) == before
    assert verify_build_dir(build_dir).valid


@needs_proc
def test_a_full_disk_at_the_first_runs_pointer_leaves_a_build_without_runs_that_verifies(
        workspace: Path, cli, disk_full_from: Callable[[str], None]) -> None:
    build_dir = _build(cli, workspace / "builds", run=False)
    disk_full_from("latest.json")
    with pytest.raises(RunWriteError, match="No space left on device"):
        run_native(build_dir, SETTINGS)
    assert list((build_dir / "runs").iterdir()) == []
    assert verify_build_dir(build_dir).valid


@needs_proc
def test_a_full_disk_at_the_ledger_line_unpublishes_the_run(workspace: Path, cli,
                                                            disk_full_from: Callable[[str], None]) -> None:
    build_dir = _build(cli, workspace / "builds")
    before = _state(build_dir)
    disk_full_from(".jsonl")
    with pytest.raises(RunWriteError, match="No space left on device"):
        run_native(build_dir, SETTINGS)
    assert _state(build_dir) == before  # no half line either: the failed append is cut back off
    assert verify_build_dir(build_dir).valid


def test_the_staged_files_of_a_publish_killed_midway_are_cleared_by_the_next_run(workspace: Path, cli) -> None:
    build_dir = _build(cli, workspace / "builds")
    killed = [build_dir / "runs/.latest.json.staged-0badf00d", build_dir / ".run_summary.json.staged-0badf00d"]
    for path in killed:
        path.write_text("{}")
    assert verify_build_dir(build_dir).valid
    run_native(build_dir, SETTINGS)
    assert not any(path.exists() for path in killed)


def test_an_append_after_a_torn_ledger_line_starts_on_a_fresh_line(tmp_path: Path) -> None:
    build_dir = tmp_path / "builds" / FP32
    first, torn, new = (RunSummary(status="completed", run_id=f"run-{index}", build_key="k",
                                   started_at=f"2026-01-01T00:00:0{index}.000000Z") for index in range(3))
    append_to_ledger(build_dir, first)
    with open(ledger_path(build_dir), "a") as handle:  # a crash midway through the next append
        handle.write(torn.model_dump_json()[:40])
    append_to_ledger(build_dir, new)
    entries, problems = read_history(tmp_path / "builds")
    assert [entry.summary.run_id for entry in entries] == ["run-0", "run-2"]
    assert len(problems) == 1 and f"{FP32}.jsonl:2: not JSON (a torn or damaged line), skipped" in problems[0]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs (a build and its cache fit, with room to fill); skipped where mounting is not allowed."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """Fill the file system, then give ``leave`` bytes back."""
    filler = disk / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    os.truncate(filler, max(filler.stat().st_size - leave, 0))
    return filler


@pytest.mark.parametrize("leave", [0, 4096, 8192, 16384, 32768, 65536])
def test_a_run_on_a_full_tmpfs_leaves_a_build_that_verifies_and_that_the_next_run_accepts(
        workspace: Path, cli, small_disk: Path, leave: int) -> None:
    build_dir = _build(cli, small_disk / "builds")
    before = _state(build_dir)
    filler = _fill(small_disk, leave)
    code, _, err = cli("run-benchmark", str(build_dir), "--runs", "2", "--warmup", "0")
    assert verify_build_dir(build_dir).valid
    if code != 0:
        assert "No space left on device" in err and len(err.strip().splitlines()) == 1
        assert _state(build_dir) == before
    filler.unlink()
    code, _, err = cli("run-benchmark", str(build_dir), "--runs", "2", "--warmup", "0")
    assert code == 0, err
    assert verify_build_dir(build_dir).valid
