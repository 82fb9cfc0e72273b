"""Publishing builds durably: the --force swap, its recovery, and leftover work directories."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from pytest_inferedgeforge.engine.build import build
from pytest_inferedgeforge.engine.plan import plan_build
from pytest_inferedgeforge.engine.presets import load_preset
from pytest_inferedgeforge.engine.publish import LEFTOVER_GRACE_S


def _plan(workspace: Path):
    return plan_build(Path("models/tiny_cnn.onnx"), load_preset("onnxruntime/cpu_fp32", workspace / "presets"),
                      workspace / "builds")


def _hidden(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith((".tmp-", ".old-")))


def test_a_forced_rebuild_swaps_in_place_and_leaves_nothing_behind(workspace: Path) -> None:
    first = build(_plan(workspace)).record
    second = build(_plan(workspace), force=True).record
    assert second.build_dir == first.build_dir and second.metadata.build.build_id
    assert (second.build_dir / "manifest.json").is_file()
    assert _hidden(workspace / "builds") == []


def test_a_swap_killed_between_its_two_renames_is_restored_by_the_next_build(workspace: Path) -> None:
    record = build(_plan(workspace)).record
    parked = record.build_dir.with_name(f".old-{record.build_dir.name}-0123abcd")
    os.replace(record.build_dir, parked)  # the state a kill leaves between the fallback's two renames
    outcome = build(_plan(workspace))
    assert outcome.cached and outcome.record.metadata.build.build_id == record.metadata.build.build_id
    assert _hidden(workspace / "builds") == []


def test_dead_work_dirs_of_other_builds_are_removed_after_the_grace_period(workspace: Path) -> None:
    root = workspace / "builds"
    root.mkdir()
    old, fresh = root / ".tmp-other__cpu__onnxruntime__x-deadbeef", root / ".tmp-another__cpu__onnxruntime__y-feedface"
    for leftover in (old, fresh):
        leftover.mkdir()
        (leftover / "model.onnx").write_bytes(b"\0" * 1024)
    stale = time.time() - LEFTOVER_GRACE_S - 60
    os.utime(old, (stale, stale))
    build(_plan(workspace))
    assert not old.exists() and fresh.exists()


def test_a_work_dir_of_a_name_with_this_name_as_prefix_is_not_this_builds(workspace: Path) -> None:
    root = workspace / "builds"
    root.mkdir()
    other = root / ".tmp-tiny_cnn__cpu__onnxruntime__cpu_fp32-extra-0123abcd"
    other.mkdir()
    build(_plan(workspace))
    assert other.exists()  # a live build of "...cpu_fp32-extra" is not ours to remove
    shutil.rmtree(other)
