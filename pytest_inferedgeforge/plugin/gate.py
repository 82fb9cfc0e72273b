"""The manifest gate: ``pytest builds/`` collects every build directory and every failure record.

A build directory is recognised by its ``metadata.json`` (or, without one, by
a Forge ``manifest.json``), so a directory whose manifest was deleted is still
collected and fails, instead of silently dropping out of the gate. A
``<name>.failed.json`` record left by a failed build fails the gate too.

Records are collected only where the user asked for them: under a path given on
the command line or a ``--forge-validate`` root, never because a plain ``pytest``
walked the project (a web app's ``manifest.json`` is not a build), and only
files that carry Forge's ``schema_version``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_inferedgeforge.model.containment import is_regular_file
from pytest_inferedgeforge.model.errors import RecordError
from pytest_inferedgeforge.model.jsonio import read_json_object
from pytest_inferedgeforge.model.layout import FAILURE_SUFFIX, MANIFEST_FILE, METADATA_FILE
from pytest_inferedgeforge.plugin.failures import CleanFailureItem, ForgeCheckFailed
from pytest_inferedgeforge.plugin.properties import BUILD_DIR, KIND
from pytest_inferedgeforge.plugin.settings import VALIDATE_ROOTS_KEY

SNIFF_BYTES = 4096


def _head(path: Path) -> str:
    if not is_regular_file(path):
        return ""
    try:
        with path.open("r", encoding="utf-8", errors="ignore") as handle:
            return handle.read(SNIFF_BYTES)
    except OSError:
        return ""


def _is_build_metadata(path: Path) -> bool:
    """A build's metadata.json (its schema version, ``build`` and ``source_model`` sections), not any file of
    that name."""
    head = _head(path)
    return '"schema_version"' in head and '"build"' in head and '"source_model"' in head


def _is_forge_manifest(path: Path) -> bool:
    return "inferedgeforge-manifest" in _head(path)


def _explicit_roots(config: pytest.Config) -> list[Path]:
    stored: tuple[Path, ...] = config.stash[VALIDATE_ROOTS_KEY]  # set at configure time
    roots = list(stored)
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        roots += [(config.invocation_params.dir / arg.split("::")[0]).resolve() for arg in config.args]
    return roots


def asked_for(file_path: Path, config: pytest.Config) -> bool:
    """Under a path the user named (``pytest builds/``, ``pytest builds/x/metadata.json``) or a --forge-validate root."""
    resolved = file_path.resolve()
    return any(resolved == root or resolved.is_relative_to(root) for root in _explicit_roots(config))


def collect_record_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """The gate's collector for ``file_path``, or None when it is not a build record the user asked to check."""
    if not asked_for(file_path, parent.config):
        return None
    if file_path.name == METADATA_FILE and _is_build_metadata(file_path):
        return BuildDirFile.from_parent(parent, path=file_path)
    if (file_path.name == MANIFEST_FILE and not (file_path.parent / METADATA_FILE).exists()
            and _is_forge_manifest(file_path)):
        return BuildDirFile.from_parent(parent, path=file_path)
    if file_path.name.endswith(FAILURE_SUFFIX) and '"status": "failed"' in _head(file_path):
        return FailureRecordFile.from_parent(parent, path=file_path)
    return None


class GateItem(CleanFailureItem):
    """A gate check: its failure is shown as its message alone."""

    label = "check"

    @property
    def subject(self) -> str:
        return self.path.name

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.label} {self.subject}"


class BuildDirItem(GateItem):
    """The whole-record check: original rules, schema, hashes and sizes, build key, metadata/manifest agreement,
    downstream paths, provenance, every run record and, with ``--forge-trust``, a signature by a trusted key."""

    label = "verify"

    @property
    def subject(self) -> str:
        return self.path.parent.name

    def runtest(self) -> None:
        from pytest_inferedgeforge.plugin.sharing import trusted_keys
        from pytest_inferedgeforge.verify.build_dir import verify_build_dir

        build_dir = self.path.parent
        self.user_properties.extend([(KIND, "manifest"), (BUILD_DIR, str(build_dir))])
        keys = trusted_keys(self.config)
        report = verify_build_dir(build_dir, keys, require_signature=bool(keys),
                                  allow_unsigned_runs=bool(self.config.getoption("forge_allow_unsigned_runs")))
        if not report.valid:
            raise ForgeCheckFailed(f"{build_dir}: {len(report.errors)} error(s)\n" +
                                   "\n".join(issue.line() for issue in report.errors))


class FailureRecordItem(GateItem):
    """``<name>.failed.json``: the record of a build that failed; the gate fails with its error."""

    label = "failed build"

    def runtest(self) -> None:
        self.user_properties.append((KIND, "manifest"))
        try:
            error = read_json_object(self.path, "Failure record").get("error")
        except RecordError as exc:
            raise ForgeCheckFailed(f"{self.path}: unreadable failure record ({exc})") from exc
        raise ForgeCheckFailed(f"{self.path}: the last build of {self.path.name[:-len(FAILURE_SUFFIX)]} failed: "
                               f"{error or 'no error recorded'}")


class RecordFile(pytest.File):
    """A build record found by the gate: one item of ``item_class``."""

    item_class: type[GateItem] = BuildDirItem

    def collect(self) -> Iterator[pytest.Item]:
        item = self.item_class.from_parent(self, name=self.item_class.label.replace(" ", "-"))
        item.add_marker(pytest.mark.forge)
        yield item


class BuildDirFile(RecordFile):
    item_class = BuildDirItem


class FailureRecordFile(RecordFile):
    item_class = FailureRecordItem
