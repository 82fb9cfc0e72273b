"""Benchmark and parity runs of a published build, and the truthful records they leave.

Every run, failed runs included, leaves an immutable ``runs/<run id>/``
(engine/run_records.py) with its summary; a completed native run adds the Lab
structured result and, with parity on, ``accuracy_evidence.json``. A run first
verifies the whole build record and refuses to measure one that does not
verify. All run files carry the run id and the artifact sha256 measured, and
the summary records the other files' sha256 (verify/runs.py checks them).

This module measures: ``_measure`` returns a ``RunMeasurement`` (engine/run_compose.py), which composes the
three record formats from it; the run directory publishes them (engine/run_records.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_inferedgeforge.backends.api import Availability, PreparesReference, ReferenceRunner, Runner, reference_runner
from pytest_inferedgeforge.backends.registry import availability
from pytest_inferedgeforge.engine.benchmark import measure, speed_probe
from pytest_inferedgeforge.engine.build import VerifiedBuild
from pytest_inferedgeforge.engine.parity import check_parity, run_all
from pytest_inferedgeforge.engine.publish import build_lock
from pytest_inferedgeforge.engine.record import BuildRecord, load_build_record
from pytest_inferedgeforge.engine.run_compose import (
    RunMeasurement,
    RunOutcome,
    compose_run,
    failed_summary,
    run_context,
)
from pytest_inferedgeforge.engine.run_records import RunDirectory
from pytest_inferedgeforge.engine.toolchains import load_runner
from pytest_inferedgeforge.model.errors import ForgeError, ToolchainUnavailable
from pytest_inferedgeforge.model.hashing import file_digest
from pytest_inferedgeforge.model.host_state import host_state
from pytest_inferedgeforge.model.inputs import InputSource, Sample, ValueRule, input_samples, rules_from_record, samples_sha256
from pytest_inferedgeforge.model.layout import (
    RUN_SUMMARY_FILE,
    format_instant,
    utc_now,
)
from pytest_inferedgeforge.model.preprocess import preprocess_from_record
from pytest_inferedgeforge.model.records.evidence import ParityResult
from pytest_inferedgeforge.model.spec import (
    DEFAULT_RUNS,
    DEFAULT_SAMPLES,
    DEFAULT_SEED,
    DEFAULT_WARMUP,
    OutputCheck,
    Thresholds,
    effective_thresholds,
)
from pytest_inferedgeforge.model.stats import DEFAULT_MAX_CV, DRIFT_ALPHA, summarize
from pytest_inferedgeforge.verify.manifest import ValidationReport

if TYPE_CHECKING:
    from securesystemslib.signer import Signer


@dataclass
class RunSettings:
    warmup: int = DEFAULT_WARMUP
    runs: int = DEFAULT_RUNS
    threads: int | None = None
    seed: int = DEFAULT_SEED
    samples: int = DEFAULT_SAMPLES
    dataset: Path | None = None
    accuracy: bool = True
    thresholds: Thresholds | None = None
    """The spec's thresholds for the build's precision; None: the per-precision default."""
    keep_latencies: bool = True
    min_duration_s: float | None = None
    """A time budget instead of a count: run at least this long and at least ``min_runs`` times."""
    min_runs: int = 1
    max_cv: float = DEFAULT_MAX_CV
    """The stability verdict's coefficient-of-variation threshold."""
    drift_alpha: float | None = DRIFT_ALPHA
    """Significance of the first-half vs second-half drift test; None: not checked."""
    values: dict[str, ValueRule] | None = None
    """Value rules of synthetic inputs; None: the rules the build recorded."""
    output_checks: dict[str, OutputCheck] = field(default_factory=dict)
    host_extra: dict[str, Any] = field(default_factory=dict)
    """Facts the caller adds to the recorded host state (the plugin's pytest_forge_update_host_state: a rack
    id); Forge's own measured facts win on a clash."""


def verified_artifact_sha(record: BuildRecord, report: ValidationReport | None = None) -> str:
    """Verify the whole build record now (every artifact, every record), unless ``report`` is that verification
    handed along (engine/fresh.py); refuse to measure one that fails."""
    report = report if report is not None else record.verification
    if not report.valid:
        raise ForgeError(f"{record.build_dir} does not verify ({report.first_error()}); refusing to measure it")
    return str(record.manifest.artifact.sha256)


def run_samples(record: BuildRecord, settings: RunSettings, count: int | None = None) -> tuple[list[Sample], InputSource]:
    """The inputs of a run: the dataset's, or synthetic ones under the settings' (else the recorded) value rules."""
    inputs = record.manifest.source_model.inputs or []
    if not inputs or not record.manifest.input_shapes:
        raise ForgeError(f"{record.manifest_path} records no input shapes; rebuild it with this Forge version")
    shapes = record.manifest.input_shapes
    values = settings.values if settings.values is not None else rules_from_record(record.manifest.input_values)
    return input_samples(inputs, shapes, count=count or settings.samples, seed=settings.seed,
                         dataset=settings.dataset, values=values,
                         preprocess=preprocess_from_record(record.manifest.preprocess))


def run_native(build: Path | BuildRecord | VerifiedBuild, settings: RunSettings,
               signer: Signer | None = None) -> RunOutcome:
    """Benchmark (and parity-check) a build on this machine; always leaves a run record, sealed by ``signer``
    when given (engine/run_signing.py).

    ``build`` is a build directory, its record, or the ``VerifiedBuild`` that built it; either way the record is
    read again under the build's lock, which the run holds, so concurrent runs queue and a rebuild waits for the
    run. A ``VerifiedBuild`` this process just built hands along its verification while the directory is unchanged
    (engine/fresh.py) and its toolchain probe; anything else is verified whole.
    """
    verified = build if isinstance(build, VerifiedBuild) else None
    build_dir = build.record.build_dir if isinstance(build, VerifiedBuild) else \
        build.build_dir if isinstance(build, BuildRecord) else build
    with build_lock(build_dir):
        record = load_build_record(build_dir)  # read under the lock: a rebuild may have replaced it meanwhile
        handed = _handed_along(verified, record)  # before this run adds its directory
        run = RunDirectory.open(record.build_dir, signer)
        started = utc_now()
        base = {**run_context(record), "via": "native", "warmup": settings.warmup, "runs": settings.runs,
                "started_at": format_instant(started), "run_id": run.run_id,
                "run_dir": run.relative}
        try:
            outcome = _outcome(record, settings, run, base, handed)
        except Exception as exc:  # a bug in Forge: keep the record truthful, then let the traceback through
            run.publish(failed_summary(base, f"internal error: {type(exc).__name__}: {exc}"))
            raise
        outcome.summary_path = run.publish(outcome.summary)
        return outcome


def _handed_along(verified: VerifiedBuild | None, record: BuildRecord) -> tuple[ValidationReport | None,
                                                                                 Availability | None]:
    """What a build of this process hands the run: its verification while the directory is the tree it verified,
    and the toolchain probe of the record's backend."""
    if verified is None or verified.record.metadata.build.backend != record.metadata.build.backend:
        return None, None
    report = verified.fresh.report_if_unchanged(record.build_dir) if verified.fresh is not None else None
    return report, verified.toolchain


class _RunFailed(ForgeError):
    """A run that stopped on a Forge error, with the summary fields it had established (its failed summary records
    them)."""

    def __init__(self, message: str, facts: dict[str, Any]) -> None:
        super().__init__(message)
        self.message = message
        self.facts = facts


def _measure(record: BuildRecord, settings: RunSettings, base: dict[str, Any],
             handed: tuple[ValidationReport | None, Availability | None]) -> RunMeasurement:
    """Verify, load, time and parity-check: what the run measured, written nowhere (engine/run_compose.py writes
    it); a Forge error becomes :class:`_RunFailed` with the facts reached so far."""
    report, probed = handed
    facts = dict(base)
    try:
        facts["artifact_sha256_at_run"] = verified_artifact_sha(record, report)
        toolchain = probed or availability(record.metadata.build.backend)
        if not toolchain.ok:
            raise ToolchainUnavailable(toolchain.reason or "toolchain unavailable")
        before = speed_probe()  # before any runtime threads exist
        facts["host_state"] = {**settings.host_extra, **host_state(), "speed_probe_ms": [before]}
        runner = load_runner(record.metadata.build.backend, record.artifact_path, threads=settings.threads)
        try:
            samples, input_source = run_samples(record, settings)
            facts["inputs_sha256"] = samples_sha256(samples)
            measured = measure(runner, samples, warmup=settings.warmup, runs=settings.runs,
                               min_duration_s=settings.min_duration_s, min_runs=settings.min_runs)
            latencies = [round(value, 6) for value in measured.latencies_ms]
            stats = summarize(latencies, settings.max_cv, settings.drift_alpha)
            facts.update(runs=len(latencies), max_cv=settings.max_cv, min_duration_s=settings.min_duration_s,
                         duration_s=round(measured.duration_s, 6))
            parity = _parity(record, runner, samples, input_source, settings) if settings.accuracy else None
            finished = utc_now()
            ran_on = (runner.description, runner.settings, runner.evidence)
        finally:
            runner.close()
    except ForgeError as exc:
        raise _RunFailed(str(exc), facts) from exc
    return RunMeasurement(
        facts=facts, runner=ran_on[0], runner_settings=ran_on[1], evidence=ran_on[2], stats=stats,
        latencies_ms=latencies, warmup_ms=[round(value, 6) for value in measured.warmup_ms], parity=parity,
        input_source=input_source, finished=finished, speed_probe_ms=(before, speed_probe()))  # its threads are gone


def _outcome(record: BuildRecord, settings: RunSettings, run: RunDirectory, base: dict[str, Any],
             handed: tuple[ValidationReport | None, Availability | None]) -> RunOutcome:
    """The run measured, then its records composed; a failure at either step is a failed summary with what the
    run had established (a completed run whose files cannot be written keeps its measured facts and parity)."""
    summary_path = run.final / RUN_SUMMARY_FILE
    try:
        measured = _measure(record, settings, base, handed)
    except _RunFailed as exc:
        return RunOutcome(summary=failed_summary(exc.facts, exc.message), summary_path=summary_path)
    try:
        return compose_run(record, run, measured, keep_latencies=settings.keep_latencies)
    except ForgeError as exc:  # a run file that cannot be written (RunWriteError)
        return RunOutcome(summary=failed_summary(measured.facts, str(exc)), summary_path=summary_path,
                          parity=measured.parity)


def _parity(record: BuildRecord, runner: Runner, samples: list[Sample], input_source: InputSource,
            settings: RunSettings) -> ParityResult:
    source = record.source_file
    if not source.is_file():
        raise ForgeError(f"source model not found at {source}; parity needs it (disable accuracy to benchmark only)")
    if file_digest(source) != record.manifest.source_model.sha256:
        raise ForgeError(f"source model {source} changed since the build; parity against it would be meaningless")
    reference = reference_runner(source, settings.threads)
    try:
        return _compare(record, reference, runner, samples, input_source, settings)
    finally:
        reference.close()


def _compare(record: BuildRecord, reference: ReferenceRunner, runner: Runner, samples: list[Sample],
             input_source: InputSource, settings: RunSettings) -> ParityResult:
    reference_inputs = ([runner.prepare_reference(sample) for sample in samples]
                        if isinstance(runner, PreparesReference) else samples)
    output_names = reference.output_names()
    thresholds, warnings = effective_thresholds(record.manifest.runtime.precision, settings.thresholds, input_source)
    return check_parity(
        run_all(reference, reference_inputs), run_all(runner, samples), output_names, thresholds=thresholds,
        input_source=input_source, inputs_sha256=samples_sha256(samples), candidate=runner.description,
        checks=settings.output_checks, evidence=runner.evidence, warnings=warnings,
    )
