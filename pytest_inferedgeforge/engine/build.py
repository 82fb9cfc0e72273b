"""The build engine: a plan -> a verified build directory, or a clean error.

The order is deliberate. Everything that can be refused (the model, the shapes,
the toolchain, a name collision) is checked before anything is written. The
toolchain then writes into a temporary directory beside the final one, the
records are composed and validated there, and one fsynced exchange publishes
the build (engine/publish.py). A crash can leave a ``.tmp-`` directory (ignored
by every reader, removed by a later build) or a ``<name>.failed.json`` record,
never a directory that looks like a build.

Whatever happens, :func:`build` returns a :class:`VerifiedBuild`: the record,
the verification report it passed, and why it was built or reused. Checks,
runs and reports consume it instead of verifying again.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pytest_inferedgeforge.backends.api import Availability, BuildRequest
from pytest_inferedgeforge.backends.registry import availability
from pytest_inferedgeforge.engine.build_key import Fingerprint, describe_change, fingerprint
from pytest_inferedgeforge.engine.compose import compose_records
from pytest_inferedgeforge.engine.fresh import FreshVerification, verify_fresh
from pytest_inferedgeforge.engine.inspection import recheck, remember
from pytest_inferedgeforge.engine.plan import BuildPlan
from pytest_inferedgeforge.engine.publish import build_lock, publish, sweep, work_dir_for
from pytest_inferedgeforge.engine.record import BuildRecord, load_build_record
from pytest_inferedgeforge.engine.shared_cache import SharedCache, pull, push
from pytest_inferedgeforge.engine.signing import SigningKey, write_provenance
from pytest_inferedgeforge.engine.smoke import smoke_build
from pytest_inferedgeforge.model.errors import ForgeError, RecordError, ToolchainUnavailable
from pytest_inferedgeforge.model.jsonio import write_json_atomic
from pytest_inferedgeforge.model.layout import (
    FAILURE_SUFFIX,
    LOG_FILE,
    MANIFEST_FILE,
    METADATA_FILE,
    format_timestamp,
    utc_now,
)
from pytest_inferedgeforge.model.records.build import (
    load_manifest,
    manifest_to_dict,
    metadata_to_dict,
)
from pytest_inferedgeforge.model.records.paths import locate_source
from pytest_inferedgeforge.verify.build_dir import verify_build_dir
from pytest_inferedgeforge.verify.manifest import ValidationReport

Progress = Callable[[str], None]
LOGGER = logging.getLogger("inferedgeforge.build")
"""Build progress also goes here (never to the root logger's handlers), so pytest's log capture shows it."""


BuildSource = Literal["built", "local", "remote"]
"""Where a build came from: built here, reused from the output root, or pulled from the shared cache and verified."""


@dataclass
class VerifiedBuild:
    """A published build that passed whole-record verification when it was built or reused."""

    record: BuildRecord
    report: ValidationReport
    cached: bool
    reason: str
    """Why it was built (first build, which key part changed, forced) or why the cache was used."""
    source: BuildSource = "built"
    pushed: str | None = None
    """What pushing it to the shared cache did, when a push was asked for."""
    toolchain: Availability | None = None
    """The toolchain probe this build asked; a run of it in this process does not ask again."""
    fresh: FreshVerification | None = None
    """Built by this process: its one whole-record verification, which the push and the first run take while the
    directory is unchanged (engine/fresh.py). None for a build from the cache or a previous session."""

    @property
    def digests(self) -> dict[str, str | None]:
        """File -> sha256 of the source model and every artifact, as verified (the report holds no error)."""
        manifest = self.record.manifest
        found: dict[str, str | None] = {self.record.source_path: manifest.source_model.sha256}
        found.update({str(self.record.build_dir / (artifact.file or Path(artifact.path).name)): artifact.sha256
                      for artifact in manifest.artifacts or []})
        return found


def build(plan: BuildPlan, *, progress: Progress | None = None, force: bool = False, signer: SigningKey | None = None,
          shared: SharedCache | None = None, toolchain: Availability | None = None) -> VerifiedBuild:
    """Build (or reuse, or pull from ``shared``) ``plan`` and return the published, verified build; with ``signer``
    it is signed, and with ``shared.push`` pushed. ``toolchain``: the probe of the preset's backend the caller
    already asked (the plugin asks it to skip an item), so it is asked once."""
    toolchain = toolchain or availability(plan.preset.backend)
    if not toolchain.ok:
        raise ToolchainUnavailable(f"{plan.preset.name}: {toolchain.reason}")
    key = fingerprint(plan, toolchain.versions)
    if plan.output_root.exists() and not plan.output_root.is_dir():
        raise ForgeError(f"output root {plan.output_root} exists and is not a directory")
    plan.output_root.mkdir(parents=True, exist_ok=True)
    with build_lock(plan.build_dir):
        for note in sweep(plan.build_dir.parent, plan.build_dir):
            LOGGER.warning(note)
        cached, reason = _reuse_or_reason(plan, key)
        if cached is None and shared is not None and not force:
            cached, reason = _pull(plan, key.build_key, shared, reason)
        if cached is None or force:
            if not plan.model_checked:
                recheck(plan.source, plan.model, plan.output_root)
            cached = _build_fresh(plan, key, "forced rebuild" if force else reason, progress, signer, toolchain)
        elif signer is not None and cached.source == "local":
            signer.sign(plan.build_dir)
        remember(plan.source, plan.model, plan.output_root)
        if shared is not None and shared.push and cached.source != "remote":
            cached.pushed = _push(shared, plan.build_dir, cached.fresh)
        cached.toolchain = toolchain
        return cached


def _pull(plan: BuildPlan, key: str, shared: SharedCache, reason: str) -> tuple[VerifiedBuild | None, str]:
    """The build from the shared cache, verified; or (None, why it is built here) on a miss or a refused entry."""
    try:
        report = pull(shared, key, plan.build_dir)
    except ForgeError as exc:  # CacheRefused, or the cache could not be reached: build locally, say why
        note = f"shared cache entry not used: {exc}"
        LOGGER.warning(note)
        return None, f"{reason}; {note}"
    if report is None:
        return None, f"{reason}; not in the shared cache"
    return VerifiedBuild(load_build_record(plan.build_dir), report, cached=True, source="remote",
                         reason=f"pulled from the shared cache {shared.url}: signature and every digest verified"), ""


def _push(shared: SharedCache, build_dir: Path, fresh: FreshVerification | None) -> str:
    """Push after a build (a fresh one with the verification it just passed); a failure is said (and logged), the
    build itself stands."""
    try:
        result = push(shared, build_dir, fresh.report_if_unchanged(build_dir) if fresh is not None else None)
    except ForgeError as exc:
        LOGGER.warning("push to the shared cache failed: %s", exc)
        return f"failed: {exc}"
    if not result.entry_written:
        return "already in the shared cache"
    return f"pushed ({result.uploaded} new blob(s), {result.bytes_uploaded} bytes)"


def _reuse_or_reason(plan: BuildPlan, key: Fingerprint) -> tuple[VerifiedBuild | None, str]:
    """A verified cached build for this key, or the reason a (re)build is needed."""
    build_dir = plan.build_dir
    if not build_dir.exists():
        return None, "first build"
    try:
        manifest = load_manifest(build_dir / MANIFEST_FILE)
    except RecordError as exc:
        return None, f"existing build directory has no usable manifest ({exc}); rebuilding"
    source = manifest.source_model.model_dump()
    recorded_source = locate_source(source, build_dir)
    if recorded_source is not None and recorded_source.resolve() != plan.source \
            and manifest.source_model.sha256 != key.source_sha256:
        raise ForgeError(
            f"{build_dir} already holds a build of a different source model ({recorded_source}); two models with "
            f"the stem '{plan.source.stem}' cannot share the output root {plan.output_root}: use another --output"
        )
    if manifest.build.build_key != key.build_key:
        return None, describe_change(manifest.build.key_parts, key)
    report = verify_build_dir(build_dir)
    if not report.valid:
        return None, f"cached build failed verification ({report.errors[0].line()}); rebuilding"
    return VerifiedBuild(load_build_record(build_dir), report, cached=True, source="local",
                         reason="cache hit: same build key, hashes verified"), ""


class _BuildLog:
    def __init__(self, progress: Progress | None) -> None:
        self.lines: list[str] = []
        self._progress = progress

    def __call__(self, message: str) -> None:
        stamp = utc_now().strftime("%H:%M:%S.%f")[:-3]
        self.lines.append(f"{stamp} {message}")
        LOGGER.info(message)
        if self._progress:
            self._progress(message)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _build_fresh(plan: BuildPlan, key: Fingerprint, reason: str, progress: Progress | None,
                 signer: SigningKey | None, toolchain: Availability) -> VerifiedBuild:
    log = _BuildLog(progress)
    failure_record = plan.output_root / f"{plan.build_dir.name}{FAILURE_SUFFIX}"
    work_dir = work_dir_for(plan.build_dir)
    work_dir.mkdir()
    started = utc_now()
    clock = time.perf_counter()
    try:
        log(f"build {plan.preset.name} of {plan.source} ({reason})")
        log(f"input shapes: {plan.input_shapes}; build key {key.build_key}")
        request = BuildRequest(
            source=plan.source, model=plan.model, preset=plan.preset, input_shapes=plan.input_shapes,
            work_dir=work_dir, calibration_samples=plan.calibration_samples, log=log,
        )
        output = plan.backend.build(request)
        for artifact in output.artifacts:
            if not artifact.is_file() or artifact.parent != work_dir:
                raise ForgeError(f"{plan.backend.name} reported artifact {artifact.name} but did not write it")
        smoke = smoke_build(plan, output.artifacts[0], log)
        finished = utc_now()
        log(f"build finished in {time.perf_counter() - clock:.3f}s")
        (work_dir / LOG_FILE).write_text(log.text(), encoding="utf-8")
        metadata, manifest, manifest_checked = compose_records(
            plan, key, output, started, finished, round(time.perf_counter() - clock, 3), work_dir, smoke, toolchain)
        write_json_atomic(work_dir / METADATA_FILE, metadata_to_dict(metadata))
        write_json_atomic(work_dir / MANIFEST_FILE, manifest_to_dict(manifest))
        write_provenance(work_dir, manifest)
        if signer is not None:
            signer.sign(work_dir)
        publish(work_dir, plan.build_dir)
    except BaseException as exc:
        shutil.rmtree(work_dir, ignore_errors=True)
        if isinstance(exc, Exception):
            log(f"FAILED: {exc}")
            write_json_atomic(failure_record, {
                "status": "failed", "preset": plan.preset.name, "source_model": str(plan.source),
                "build_dir": str(plan.build_dir), "timestamp": format_timestamp(utc_now()),
                "error": str(exc), "log": log.lines,
            })
        raise
    failure_record.unlink(missing_ok=True)
    fresh = verify_fresh(plan.build_dir, manifest_checked)  # the one whole-record walk of a fresh build
    return VerifiedBuild(load_build_record(plan.build_dir), fresh.report, cached=False, reason=reason, fresh=fresh)
