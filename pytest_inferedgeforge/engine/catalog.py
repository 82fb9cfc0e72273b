"""Finding builds under a directory and judging which are ready to compare.

Ready means more than "a run_summary.json exists": the last run completed, and
the artifact it measured is, byte for byte, the artifact the manifest records
and the file on disk today. Anything else is not ready, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from pytest_inferedgeforge.model.errors import RecordError, describe_validation_error
from pytest_inferedgeforge.model.hashing import sha256_file
from pytest_inferedgeforge.model.jsonio import read_json_object
from pytest_inferedgeforge.model.records.build import BuildMetadata, Manifest, load_manifest, load_metadata
from pytest_inferedgeforge.model.records.run import RunSummary
from pytest_inferedgeforge.verify.manifest import artifact_location

RUN_SUMMARY_FILE = "run_summary.json"


@dataclass(frozen=True)
class Readiness:
    state: str
    """ready | pending | failed | stale | broken"""
    reason: str

    @property
    def ready(self) -> bool:
        return self.state == "ready"


@dataclass
class BuildEntry:
    build_dir: Path
    metadata: BuildMetadata
    manifest: Manifest | None
    run_summary: RunSummary | None
    readiness: Readiness

    @property
    def preset_name(self) -> str:
        snapshot = self.metadata.preset_snapshot or {}
        return str(snapshot.get("name") or self.metadata.build.preset_name)

    @property
    def source_path(self) -> str:
        return normalise_path(self.metadata.source_model.path)

    @property
    def artifact_path(self) -> Path | None:
        if not self.metadata.artifacts:
            return None
        location, _ = artifact_location(self.metadata.artifacts[0].model_dump(), self.build_dir, "artifact")
        return location


def normalise_path(text: str) -> str:
    """An absolute form of a recorded path. Forge records absolute paths; the original's relative
    ones were relative to wherever it ran, so the best reading is the current directory."""
    return str(Path(text).resolve())


def load_run_summary(build_dir: Path) -> RunSummary | None:
    path = build_dir / RUN_SUMMARY_FILE
    if not path.exists():
        return None
    data = read_json_object(path, "Run summary")
    data.setdefault("status", "completed")  # original summaries may predate the key
    try:
        return RunSummary.model_validate(data)
    except ValidationError as exc:
        raise RecordError(describe_validation_error(exc, str(path))) from exc


def judge_readiness(build_dir: Path, metadata: BuildMetadata, manifest: Manifest | None,
                    summary: RunSummary | None) -> Readiness:
    if summary is None:
        return Readiness("pending", "no benchmark run yet")
    if summary.status != "completed":
        return Readiness("failed", f"last benchmark {summary.status}: {summary.error or 'no error recorded'}")
    measured = summary.artifact_sha256_at_run or (summary.primary_artifact or {}).get("sha256")
    if not measured:
        return Readiness("stale", "the run summary does not say which artifact it measured")
    if not metadata.artifacts:
        return Readiness("broken", "metadata lists no artifact")
    location, issues = artifact_location(metadata.artifacts[0].model_dump(), build_dir, "artifact")
    if location is None:
        return Readiness("broken", issues[0].message if issues else "artifact path missing")
    if not location.is_file():
        return Readiness("broken", f"artifact file missing: {location}")
    current = sha256_file(location)
    if current != measured:
        return Readiness("stale", f"artifact changed since its benchmark (measured {measured[:12]}, now {current[:12]})")
    if manifest is not None and manifest.artifact.sha256 != measured:
        return Readiness("stale", "the benchmark measured a different artifact than the manifest records")
    if summary.evidence not in (None, "artifact"):
        return Readiness("pending", f"the last run measured a {summary.evidence}, not this artifact's bytes; "
                                    "not ready for a device compare on that evidence")
    if summary.accuracy and summary.accuracy.get("passed") is False:
        return Readiness("failed", "the last run's accuracy parity failed: "
                                   + "; ".join(summary.accuracy.get("failures") or [])[:300])
    if not summary.structured_result_path:
        return Readiness("ready", "benchmark result is present for this artifact (no structured result path)")
    return Readiness("ready", "benchmark result is present for this artifact")


def load_entry(build_dir: Path) -> BuildEntry:
    metadata = load_metadata(build_dir / "metadata.json")
    manifest = load_manifest(build_dir / "manifest.json") if (build_dir / "manifest.json").exists() else None
    summary = load_run_summary(build_dir)
    return BuildEntry(build_dir, metadata, manifest, summary, judge_readiness(build_dir, metadata, manifest, summary))


def scan_builds(root: Path, *, model: str | None = None) -> tuple[list[BuildEntry], list[str]]:
    """Every build under ``root`` (skipping hidden work dirs), and one line per unreadable one.

    One malformed record is reported and skipped; it never hides the others.
    """
    if not root.is_dir():
        raise RecordError(f"Build directory not found: {root}")
    entries: list[BuildEntry] = []
    problems: list[str] = []
    for metadata_path in sorted(root.rglob("metadata.json")):
        relative = metadata_path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts[:-1]):
            continue
        try:
            entries.append(load_entry(metadata_path.parent))
        except RecordError as exc:
            problems.append(f"skipped {metadata_path.parent}: {exc}")
    if model is not None:
        wanted = str(Path(model).resolve())
        entries = [entry for entry in entries if entry.source_path == wanted]
    entries.sort(key=lambda e: (e.source_path, e.preset_name, e.metadata.build.backend, e.metadata.build.target,
                                str(e.build_dir)))
    return entries, problems


def group_by_source(entries: list[BuildEntry]) -> dict[str, list[BuildEntry]]:
    groups: dict[str, list[BuildEntry]] = {}
    for entry in entries:
        groups.setdefault(entry.source_path, []).append(entry)
    return dict(sorted(groups.items()))
