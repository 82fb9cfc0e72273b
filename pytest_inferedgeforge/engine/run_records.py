"""Atomic, locked run records: every run gets its own immutable ``runs/<run id>/`` directory.

A run writes its files into ``runs/.tmp-<run id>/`` while holding the build's
lock. Publishing first writes everything that must change, fsynced, where no
reader looks: the run's summary (and seal) in that directory, and beside their
targets the new ``runs/latest.json`` and (completed runs only, so a failed
run never replaces the last good record) the build directory's
``run_summary.json``, each with a copy of the file it replaces. Then only
renames remain, which a full disk cannot stop: the directory, the pointer,
the build's copy; last the ledger line. A failure at any step (a full disk)
renames the copies back and removes the run's directory, so the build is as
it was and still verifies, and the run is reported failed with the OS error
(:class:`RunWriteError`). Two concurrent runs of one build leave two
complete runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_inferedgeforge.engine.ledger import append_to_ledger
from pytest_inferedgeforge.engine.run_signing import is_sealed, seal_run
from pytest_inferedgeforge.model.containment import contained
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.hashing import file_digest
from pytest_inferedgeforge.model.jsonio import dump_json, fsync_path, fsync_tree, write_json_atomic
from pytest_inferedgeforge.model.layout import LATEST_RUN_FILE, RUN_SUMMARY_FILE, RUNS_DIR, utc_now
from pytest_inferedgeforge.model.records.run import LatestRun, RunSummary

if TYPE_CHECKING:
    from securesystemslib.signer import Signer

LEFTOVER_PREFIX = ".tmp-"
STAGED_INFIX = ".staged-"
"""``.<file name>.staged-<hex>``: a pointer's next content, or the copy of its current one, during a publish."""


class RunWriteError(ForgeError):
    """A run's records could not be written (a full disk, a read-only file system): one line with the OS error."""


@dataclass
class RunDirectory:
    """One run's directory while it is written (``work``) and once published (``final``)."""

    build_dir: Path
    run_id: str
    signer: Signer | None = None
    """Seals the run's records when it is published (engine/run_signing.py); None leaves the run unsigned."""

    @classmethod
    def open(cls, build_dir: Path, signer: Signer | None = None) -> RunDirectory:
        """Start a run (with the build's lock held): a fresh id and an empty work directory."""
        runs = build_dir / RUNS_DIR
        run = cls(build_dir, f"{utc_now():%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}", signer)
        try:
            runs.mkdir(exist_ok=True)
            for leftover in runs.glob(f"{LEFTOVER_PREFIX}*"):  # only lock holders write here, so these are dead
                shutil.rmtree(leftover, ignore_errors=True)
            for staged in (*runs.glob(f".*{STAGED_INFIX}*"), *build_dir.glob(f".*{STAGED_INFIX}*")):
                staged.unlink(missing_ok=True)
            run.work.mkdir()
        except OSError as exc:
            raise RunWriteError(f"a run of {build_dir} could not start: {exc}") from exc
        return run

    @property
    def work(self) -> Path:
        return contained(self.build_dir, f"{RUNS_DIR}/{LEFTOVER_PREFIX}{self.run_id}", "run work directory")

    @property
    def final(self) -> Path:
        return contained(self.build_dir, f"{RUNS_DIR}/{self.run_id}", "run directory")

    @property
    def relative(self) -> str:
        return f"{RUNS_DIR}/{self.run_id}"

    def write(self, name: str, data: dict[str, Any]) -> str:
        """Write one of the run's files; returns its sha256, which the summary records."""
        path = self.work / name
        try:
            write_json_atomic(path, data)
        except OSError as exc:
            raise RunWriteError(f"run {self.run_id}: {name} could not be written: {exc}") from exc
        return file_digest(path)

    def publish(self, summary: RunSummary) -> Path:
        """Stage the run, then commit it by renames and append its ledger line; on a failure undo all of it and
        raise :class:`RunWriteError` (see the module's docstring)."""
        data = summary.model_dump(mode="json")
        latest = LatestRun(run_id=self.run_id, status=summary.status, error=summary.error,
                           finished_at=summary.finished_at)
        pointers = [(self.build_dir / RUNS_DIR / LATEST_RUN_FILE, latest.model_dump(mode="json"))]
        if summary.status == "completed":
            pointers.append((self.build_dir / RUN_SUMMARY_FILE, data))
        commit = _Commit()
        try:
            write_json_atomic(self.work / RUN_SUMMARY_FILE, data)
            if self.signer is not None:
                seal_run(self.work, summary, self.signer)  # last: the seal covers every record of the run
            fsync_tree(self.work)
            for target, value in pointers:
                commit.stage(target, dump_json(value).encode("utf-8"))
            os.replace(self.work, self.final)
            fsync_path(self.final.parent)
            commit.put()
            fsync_path(self.final.parent)
            fsync_path(self.build_dir)
            append_to_ledger(self.build_dir, summary, file_digest(self.final / RUN_SUMMARY_FILE))
        except OSError as exc:
            commit.put_back()  # the pointers first: they never name a run that is gone
            for path in (self.final, self.work):
                shutil.rmtree(path, ignore_errors=True)
            raise RunWriteError(f"run {self.run_id} could not be recorded, so none of it was published: {exc}") \
                from exc
        finally:
            commit.discard()
        return self.final / RUN_SUMMARY_FILE

    def check_rewritable(self) -> None:
        """Refuse, before anything is written, to rewrite a signed run without a key to seal it again."""
        if is_sealed(self.final) and self.signer is None:
            raise ForgeError(f"{self.final} is a signed run: rewriting its records would break its seal; give the "
                             "key that should sign it (--sign-key)")

    def rewrite_summary(self, summary: RunSummary) -> None:
        """Rewrite a published, completed run's summary and the build's copy of it (attach-accuracy rebinding the
        run's structured result): the copy stays identical to the run's record. A sealed run is sealed again by
        ``signer``; without one it is refused, since the rewrite would break the seal."""
        self.check_rewritable()
        data = summary.model_dump(mode="json")
        write_json_atomic(self.final / RUN_SUMMARY_FILE, data)
        if self.signer is not None:
            seal_run(self.final, summary, self.signer)
        write_json_atomic(self.build_dir / RUN_SUMMARY_FILE, data)


@dataclass(frozen=True)
class _Staged:
    """A file's next content (``new``) and a copy of its current one (``old``; None: no file yet), both written
    beside it, so that putting it in place and putting it back are renames only."""

    target: Path
    new: Path
    old: Path | None


def _write_aside(target: Path, data: bytes) -> Path:
    aside = target.with_name(f".{target.name}{STAGED_INFIX}{uuid.uuid4().hex[:8]}")
    try:
        with open(aside, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError:
        aside.unlink(missing_ok=True)
        raise
    return aside


def _staged(target: Path, data: bytes) -> _Staged:
    new = _write_aside(target, data)
    try:
        old = _write_aside(target, target.read_bytes()) if target.exists() else None
    except OSError:
        new.unlink(missing_ok=True)
        raise
    return _Staged(target, new, old)


@dataclass
class _Commit:
    """Files staged beside their targets, put in place in order, put back in reverse if a later step fails."""

    staged: list[_Staged] = field(default_factory=list)
    placed: list[_Staged] = field(default_factory=list)

    def stage(self, target: Path, data: bytes) -> None:
        self.staged.append(_staged(target, data))

    def put(self) -> None:
        for item in self.staged:
            os.replace(item.new, item.target)
            self.placed.append(item)

    def put_back(self) -> None:
        """Best effort, after a failure: what cannot be put back is left as the failure left it."""
        for item in reversed(self.placed):
            with contextlib.suppress(OSError):
                if item.old is None:
                    item.target.unlink(missing_ok=True)
                else:
                    os.replace(item.old, item.target)
        self.placed = []

    def discard(self) -> None:
        """Remove whatever staged file is left (a put one has been renamed away)."""
        for item in self.staged:
            for path in (item.new, item.old):
                if path is not None:
                    path.unlink(missing_ok=True)
