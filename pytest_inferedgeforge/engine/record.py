"""The one view of a build directory: its records, its artifact, its last run, and whether it is ready.

Every reader (the build cache, runs, the catalog, compare, the plugin's report)
loads a build through :func:`load_build_record` and judges it with the same
:func:`judge_readiness`, so ``list-builds``, ``show-compare-candidates`` and the
report never disagree.

Ready means more than "a run_summary.json exists": the whole record verifies
(every artifact, every record, every run), the last completed run passed
parity (a later run that failed to complete is kept beside it and does not
demote the build), it measured this artifact's bytes, the artifact it measured is, byte
for byte, the artifact the manifest records and the file on disk today, and the
structured result Lab compares is still there.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_inferedgeforge.engine.run_records import RunDirectory
from pytest_inferedgeforge.model.errors import ForgeError, RecordError
from pytest_inferedgeforge.model.hashing import file_digest
from pytest_inferedgeforge.model.jsonio import read_json_object
from pytest_inferedgeforge.model.layout import (
    LATEST_RUN_FILE,
    MANIFEST_FILE,
    METADATA_FILE,
    RUN_SUMMARY_FILE,
    RUNS_DIR,
    STRUCTURED_RESULT_FILE,
    run_dirs,
)
from pytest_inferedgeforge.model.records.build import (
    BuildMetadata,
    Manifest,
    load_manifest,
    load_metadata,
    load_record,
    validated,
)
from pytest_inferedgeforge.model.records.paths import locate_source, resolve_in, source_base
from pytest_inferedgeforge.model.records.run import LatestRun, RunSummary
from pytest_inferedgeforge.verify.build_dir import verify_build_dir
from pytest_inferedgeforge.verify.manifest import ValidationReport, artifact_location

if TYPE_CHECKING:
    from securesystemslib.signer import Key


@dataclass(frozen=True)
class Readiness:
    state: str
    """ready | pending | failed | stale | broken"""
    reason: str

    @property
    def ready(self) -> bool:
        return self.state == "ready"


@dataclass
class BuildRecord:
    """A build directory and its records. Paths are absolute, so everything derived is CWD-independent."""

    build_dir: Path
    metadata: BuildMetadata
    manifest_or_none: Manifest | None
    run_summary: RunSummary | None
    """The last completed run (the build directory's run_summary.json)."""
    latest_run: LatestRun | None = None
    """The last run of any status (runs/latest.json), when runs are recorded per directory."""
    trusted: tuple[Key, ...] = ()
    """Keys whose signatures count: given, the build and every run must be signed by one of them to verify (and so
    to be ready), since unsigned figures are only consistent with each other."""

    @property
    def manifest(self) -> Manifest:
        if self.manifest_or_none is None:
            raise RecordError(f"{self.manifest_path} is missing; this build cannot be verified")
        return self.manifest_or_none

    @property
    def metadata_path(self) -> Path:
        return self.build_dir / METADATA_FILE

    @property
    def manifest_path(self) -> Path:
        return self.build_dir / MANIFEST_FILE

    @property
    def artifact_or_none(self) -> Path | None:
        """The primary artifact inside the build directory; None when the records point outside it."""
        entry = self.manifest_or_none.artifact if self.manifest_or_none else (
            self.metadata.artifacts[0] if self.metadata.artifacts else None)
        if entry is None:
            return None
        location, _ = artifact_location(entry.model_dump(), self.build_dir, "artifact")
        return location

    @property
    def artifact_path(self) -> Path:
        location = self.artifact_or_none
        if location is None:
            raise RecordError(f"{self.build_dir}: the recorded artifact is not a file inside the build directory")
        return location

    @property
    def structured_result(self) -> Path | None:
        """The last completed run's structured result where it really is: inside the run's directory (so a moved
        tree hands off its current path), or for records older than run directories, the recorded path."""
        summary = self.run_summary
        if summary is None:
            return None
        if summary.run_id and summary.structured_result_sha256:
            try:
                return RunDirectory(self.build_dir, summary.run_id).final / STRUCTURED_RESULT_FILE
            except ForgeError:
                return None
        return resolve_in(summary.structured_result_path, self.build_dir) if summary.structured_result_path else None

    @property
    def preset_name(self) -> str:
        snapshot = self.metadata.preset_snapshot or {}
        return str(snapshot.get("name") or self.metadata.build.preset_name)

    @property
    def source_path(self) -> str:
        """The source model's absolute path on this machine (where the record's relative path resolves)."""
        return str(self.source_file)

    @property
    def source_file(self) -> Path:
        """The source model: found through the recorded path or ``path_abs``, else where the recorded path
        points (the file may not be on this machine)."""
        source = self.metadata.source_model.model_dump()
        found = locate_source(source, self.build_dir)
        return found or resolve_in(source["path"], source_base(self.build_dir)).resolve()

    @functools.cached_property
    def verification(self) -> ValidationReport:
        """The whole-record check of this build directory, run once per loaded record (readiness, runs and
        handoffs all read it)."""
        return verify_build_dir(self.build_dir, list(self.trusted) or None)

    @functools.cached_property
    def readiness(self) -> Readiness:
        return judge_readiness(self)

    @functools.cached_property
    def last_failed_run(self) -> RunSummary | None:
        """The newest run that did not complete (kept beside the last good one, which it never replaces)."""
        for run_dir in reversed(run_dirs(self.build_dir)):
            try:
                summary = load_record(run_dir / RUN_SUMMARY_FILE, RunSummary, "Run summary")
            except RecordError:
                continue  # verify reports it; a listing shows what it can read
            if summary.status != "completed":
                return summary
        return None


def load_run_summary(build_dir: Path) -> RunSummary | None:
    path = build_dir / RUN_SUMMARY_FILE
    if not path.exists():
        return None
    data = read_json_object(path, "Run summary")
    data.setdefault("status", "completed")  # original summaries may predate the key
    return validated(data, RunSummary, path)


def load_latest_run(build_dir: Path) -> LatestRun | None:
    path = build_dir / RUNS_DIR / LATEST_RUN_FILE
    return load_record(path, LatestRun, "Latest run pointer") if path.exists() else None


def load_build_record(build_dir: Path, *, require_manifest: bool = True, metadata_file: Path | None = None,
                      trusted: tuple[Key, ...] = ()) -> BuildRecord:
    """Load a build directory's records; unreadable ones raise :class:`RecordError`.

    ``metadata_file`` reads the metadata from another file name, as the original's METADATA_PATH arguments allow;
    ``trusted`` keys make the build's verification (and readiness) require their signatures.
    """
    build_dir = build_dir.resolve()
    metadata = load_metadata(metadata_file or build_dir / METADATA_FILE)
    manifest_path = build_dir / MANIFEST_FILE
    manifest = load_manifest(manifest_path) if require_manifest or manifest_path.exists() else None
    return BuildRecord(build_dir, metadata, manifest, load_run_summary(build_dir), load_latest_run(build_dir), trusted)


def judge_readiness(record: BuildRecord) -> Readiness:
    summary, manifest = record.run_summary, record.manifest_or_none
    if manifest is None:
        return Readiness("broken", f"{MANIFEST_FILE} is missing, so nothing about this build can be verified")
    try:
        report = record.verification
    except RecordError as exc:
        return Readiness("broken", str(exc))
    if not report.valid:
        return Readiness("broken", f"the build record does not verify ({report.first_error()})")
    latest = record.latest_run
    if summary is None:
        if latest is not None and latest.status != "completed":
            return Readiness("failed", f"last benchmark {latest.status}: {latest.error or 'no error recorded'}")
        return Readiness("pending", "no benchmark run yet")
    if summary.status != "completed":
        return Readiness("failed", f"last benchmark {summary.status}: {summary.error or 'no error recorded'}")
    measured = summary.artifact_sha256_at_run or (summary.primary_artifact or {}).get("sha256")
    if not measured:
        return Readiness("stale", "the run summary does not say which artifact it measured")
    return _artifact_readiness(record, manifest, measured) or _run_readiness(summary, record.structured_result)


def _artifact_readiness(record: BuildRecord, manifest: Manifest, measured: str) -> Readiness | None:
    """Not ready when the measured artifact is not, byte for byte, the recorded one on disk today."""
    location = record.artifact_or_none
    if location is None:
        return Readiness("broken", "the recorded artifact is not a file inside this build directory")
    if not location.is_file():
        return Readiness("broken", f"artifact file missing: {location}")
    current = file_digest(location)
    if current != measured:
        return Readiness("stale", f"artifact changed since its benchmark (measured {measured[:12]}, now {current[:12]})")
    if manifest.artifact.sha256 != measured:
        return Readiness("stale", "the benchmark measured a different artifact than the manifest records")
    return None


def _run_readiness(summary: RunSummary, result: Path | None) -> Readiness:
    """Ready when the run measured the artifact's bytes, passed parity and left Lab its structured result."""
    if summary.evidence not in (None, "artifact"):
        return Readiness("pending", f"the last run measured a {summary.evidence}, not this artifact's bytes; "
                                    "not ready for a device compare on that evidence")
    if summary.accuracy and summary.accuracy.get("passed") is False:
        return Readiness("failed", "the last run's accuracy parity failed: "
                                   + "; ".join(summary.accuracy.get("failures") or [])[:300])
    if not summary.accuracy:
        how = ("an InferEdgeLab profile measures latency only" if summary.via == "lab"
               else "it ran with --no-accuracy")
        return Readiness("pending", f"the last run did not check parity against the source model ({how}); "
                                    "run run-benchmark with parity before comparing")
    if result is None:
        return Readiness("pending", "the last run left no structured result for InferEdgeLab to compare")
    if not result.is_file():
        return Readiness("stale", f"the last run's structured result is gone: {result}")
    return Readiness("ready", "benchmark result is present for this artifact")
