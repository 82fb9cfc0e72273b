"""Finding the builds under a directory, each as a :class:`~.record.BuildRecord` with its readiness."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pytest_inferedgeforge.engine.record import BuildRecord, load_build_record
from pytest_inferedgeforge.model.errors import RecordError, did_you_mean
from pytest_inferedgeforge.model.layout import MANIFEST_FILE, METADATA_FILE

if TYPE_CHECKING:
    from securesystemslib.signer import Key


def find_build_dirs(root: Path) -> list[Path]:
    """The build directories under ``root``: each directory holding a ``metadata.json`` (or, its metadata lost, a
    ``manifest.json``), skipping hidden work directories and anything else (compare plots, failure records)."""
    found = set()
    for name in (METADATA_FILE, MANIFEST_FILE):
        for path in root.rglob(name):
            relative = path.relative_to(root)
            if not any(part.startswith(".") for part in relative.parts[:-1]) and path.parent != root:
                found.add(path.parent)
    return sorted(found)


def scan_builds(root: Path, *, model: str | None = None, trusted: tuple[Key, ...] = ()) -> tuple[list[BuildRecord], list[str]]:
    """Every build under ``root`` (skipping hidden work dirs), and one line per unreadable one.

    One malformed record is reported and skipped; it never hides the others. A build whose
    manifest is missing is listed, as broken. With ``trusted`` keys, a build whose provenance or runs no
    trusted key signed does not verify, so it is never ready.
    """
    if not root.is_dir():
        raise RecordError(f"Build directory not found: {root}")
    records: list[BuildRecord] = []
    problems: list[str] = []
    for metadata_path in sorted(root.rglob(METADATA_FILE)):
        relative = metadata_path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts[:-1]):
            continue
        try:
            records.append(load_build_record(metadata_path.parent, require_manifest=False, trusted=trusted))
        except RecordError as exc:
            problems.append(f"skipped {metadata_path.parent}: {exc}")
    if model is not None:
        records = _of_model(records, model)
    records.sort(key=lambda r: (r.source_path, r.preset_name, r.metadata.build.backend, r.metadata.build.target,
                                str(r.build_dir)))
    return records, problems


def _of_model(records: list[BuildRecord], model: str) -> list[BuildRecord]:
    """The builds of ``model``: a path (relative to where the CLI runs), or else a file name or stem such as
    ``tiny_cnn``, which is what a user remembers; a stem two source models share is refused, a near miss is
    answered with the closest stem."""
    wanted = str(Path(model).resolve())
    exact = [record for record in records if record.source_path == wanted]
    if exact or not records:
        return exact
    named = [record for record in records if model in (Path(record.source_path).stem, Path(record.source_path).name)]
    sources = sorted({record.source_path for record in named})
    if len(sources) > 1:
        raise RecordError(f"--model '{model}' names {len(sources)} source models ({', '.join(sources)}); give its path")
    # a model file that exists but has no builds yet is no typo: it gets the empty list, as before
    stems = {Path(record.source_path).stem for record in records}
    hint = "" if named or Path(model).is_file() else did_you_mean(Path(model).stem, stems)
    if hint:
        raise RecordError(f"no builds of model '{model}'{hint}; `inferedgeforge list-builds` lists the models")
    return named


def group_by_source(records: list[BuildRecord]) -> dict[str, list[BuildRecord]]:
    groups: dict[str, list[BuildRecord]] = {}
    for record in records:
        groups.setdefault(record.source_path, []).append(record)
    return dict(sorted(groups.items()))
