"""The gate in front of every handoff view: a build directory is handed downstream only when its whole record
verifies, and then with the verified artifact's path, never a path read from the record unchecked.

A loose record (a metadata or manifest file that is not a build directory's ``metadata.json`` /
``manifest.json``, such as the original's contract fixtures) has no files to verify; its recorded
values are shown as they are.
"""

from __future__ import annotations

from pathlib import Path

from pytest_inferedgeforge.engine.record import BuildRecord, load_build_record
from pytest_inferedgeforge.model.errors import ForgeError, RecordError
from pytest_inferedgeforge.model.layout import MANIFEST_FILE, METADATA_FILE


def is_build_record(record_file: Path) -> bool:
    """True for the metadata.json or manifest.json of a build directory (either one beside it)."""
    return record_file.name in (METADATA_FILE, MANIFEST_FILE) and (
        (record_file.parent / METADATA_FILE).exists() or (record_file.parent / MANIFEST_FILE).exists())


def handoff_artifact(record: BuildRecord) -> Path:
    """The verified primary artifact of a loaded build; :class:`ForgeError` naming the first error when the
    build does not verify."""
    report = record.verification
    if not report.valid:
        raise ForgeError(f"refusing to hand off {record.build_dir}: its record does not verify "
                         f"({report.first_error()}); see 'inferedgeforge verify {record.build_dir}'")
    return record.artifact_path


def verified_artifact(record_file: Path) -> Path | None:
    """The verified primary artifact of ``record_file``'s build directory (None for a loose record).

    Raises :class:`ForgeError` when the build does not verify, naming the first error.
    """
    if not is_build_record(record_file):
        return None
    build_dir = record_file.resolve().parent
    try:
        record = load_build_record(build_dir, require_manifest=False)
    except RecordError as exc:
        raise ForgeError(f"refusing to hand off {build_dir}: {exc}") from exc
    return handoff_artifact(record)
