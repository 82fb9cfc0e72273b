"""Collectors and items: experiment specs and their per-preset build items (the gate's items are in gate.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _pytest._code.code import ExceptionInfo, TerminalRepr

from pytest_inferedgeforge.engine.build import VerifiedBuild, build
from pytest_inferedgeforge.engine.checks import build_invariants
from pytest_inferedgeforge.engine.plan import plan_build
from pytest_inferedgeforge.engine.presets import load_experiment, load_preset
from pytest_inferedgeforge.engine.quantization.speed import describe as describe_speed
from pytest_inferedgeforge.engine.record import BuildRecord
from pytest_inferedgeforge.engine.runs import RunSettings, run_native, run_samples
from pytest_inferedgeforge.engine.smoke import smoke_run
from pytest_inferedgeforge.engine.toolchains import availability
from pytest_inferedgeforge.model.errors import ForgeError, PresetError, SpecError
from pytest_inferedgeforge.model.presets import Preset
from pytest_inferedgeforge.model.spec import DEFAULT_SEED, Experiment
from pytest_inferedgeforge.plugin.baseline import check_baseline, latency_properties, regression_rules
from pytest_inferedgeforge.plugin.failures import CleanFailureItem, ForgeCheckFailed
from pytest_inferedgeforge.plugin.markers import register_preset_markers
from pytest_inferedgeforge.plugin.phase import PhaseLine
from pytest_inferedgeforge.plugin.properties import (
    BACKEND,
    BUILD_DIR,
    BUILD_SOURCE,
    CACHE_HIT,
    EXPERIMENT,
    KIND,
    MODEL,
    PRECISION,
    PRESET,
    RUN_SUMMARY_PATH,
    SPEC,
    SPEED_VS_FP32,
    TARGET,
)
from pytest_inferedgeforge.plugin.quantization import diagnosis_lines, search_build, searches
from pytest_inferedgeforge.plugin.settings import ForgeSettings, get_settings
from pytest_inferedgeforge.plugin.sharing import shared_cache, signer


def preset_marks(config: pytest.Config, preset: Preset) -> list[pytest.MarkDecorator]:
    register_preset_markers(config, preset.backend, preset.target)
    names = dict.fromkeys(["forge", preset.backend, preset.target, str(preset.precision)])
    return [getattr(pytest.mark, name) for name in names]


def build_for_test(item: pytest.Item, model: Path, preset: Preset,
                   input_shapes: dict[str, list[int]] | None = None, experiment: Experiment | None = None,
                   progress: Callable[[str], None] | None = None) -> VerifiedBuild:
    """Skip (or fail, when required) on a missing toolchain; build or reuse; check every invariant."""
    config = item.config
    settings = get_settings(config)
    toolchain = availability(preset.backend)
    if not toolchain.ok:
        reason = f"{preset.backend} unavailable: {toolchain.reason}"
        if preset.backend in settings.required_backends:
            pytest.fail(f"--forge-require {preset.backend}: {reason}", pytrace=False)
        pytest.skip(reason)
    inputs = experiment.spec.inputs if experiment is not None else None
    plan = plan_build(model, preset, settings.output_root, input_shapes=input_shapes,
                      input_values=inputs.values if inputs else None,
                      input_seed=inputs.seed if inputs else DEFAULT_SEED,
                      input_dataset=experiment.dataset if experiment is not None else None,
                      calibration_dataset=experiment.calibration if experiment is not None else None,
                      preprocess=inputs.preprocess if inputs else None)
    return checked(item, build(plan, progress=progress, force=settings.rebuild, signer=signer(config),
                               shared=shared_cache(config), toolchain=toolchain))


def checked(item: pytest.Item, outcome: VerifiedBuild) -> VerifiedBuild:
    """``outcome``, once every build invariant holds, Forge's own and then the site's (pytest_forge_invariants,
    after pytest_forge_build_finished); else the item fails with one line per violation."""
    violations = build_invariants(outcome)
    if violations:
        raise ForgeCheckFailed("\n".join(issue.line() for issue in violations))
    item.ihook.pytest_forge_build_finished(item=item, build=outcome)
    found = item.ihook.pytest_forge_invariants(item=item, build=outcome)
    site = [line for lines in found for line in ([lines] if isinstance(lines, str) else lines or []) if line]
    if site:
        raise ForgeCheckFailed("\n".join(site))
    return outcome


def site_host_state(item: pytest.Item) -> dict[str, Any]:
    """The facts pytest_forge_update_host_state adds to this item's run record; each must be JSON, since it is
    written into (and signed with) run_summary.json."""
    facts: dict[str, Any] = {}
    item.ihook.pytest_forge_update_host_state(config=item.config, host_state=facts)
    for key, value in facts.items():
        try:
            if not isinstance(key, str):
                raise TypeError(f"keys must be strings, not {type(key).__name__}")
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ForgeCheckFailed(f"pytest_forge_update_host_state: host fact {key!r} is not JSON: {exc}") from exc
    return facts


def item_properties(experiment: str, spec: Path, model: Path, preset: Preset) -> list[tuple[str, object]]:
    """The properties that make an item a Forge build item in the table, the JSON report and JUnit."""
    return [(KIND, "build"), (EXPERIMENT, experiment), (SPEC, str(spec)),
            (MODEL, str(model)), (PRESET, preset.name), (BACKEND, preset.backend),
            (TARGET, preset.target), (PRECISION, preset.precision)]


def fixture_properties(item: pytest.Item, model: Path, preset: Preset) -> None:
    """A test that builds through the fixtures reports like a spec item (its first build names it)."""
    if any(name == KIND for name, _ in item.user_properties):
        return
    experiment = getattr(item, "originalname", None) or item.name
    item.user_properties.extend(item_properties(experiment, item.path, model, preset))


def record_properties(item: pytest.Item, outcome: VerifiedBuild) -> None:
    record = outcome.record
    manifest = record.manifest
    item.user_properties.extend([
        ("build_id", manifest.build.build_id), ("build_key", manifest.build.build_key),
        (BUILD_DIR, str(record.build_dir)), ("source_sha256", manifest.source_model.sha256),
        ("artifact_sha256", manifest.artifact.sha256), ("artifact_size_bytes", manifest.artifact.size_bytes),
        (CACHE_HIT, outcome.cached), ("cache_reason", outcome.reason), (BUILD_SOURCE, outcome.source),
    ])
    if outcome.pushed:
        item.user_properties.append(("cache_push", outcome.pushed))
    if manifest.calibration is not None:
        item.user_properties.append(("calibration_source", manifest.calibration.source))
        if manifest.calibration.warnings:
            item.user_properties.append(("calibration_warnings", "; ".join(manifest.calibration.warnings)))


def param_nodeid(parent: pytest.Collector, name: str, param: str) -> str:
    """``<spec>::<experiment>[<preset id>]``, the id a parametrized test would have. Given as a string, pytest
    parses it into name and parameters as it does for its own parametrized items, so ``--lf``, ``--ff`` and
    ``-k`` match the ids its cache stored (a name with the bracket glued on would never match)."""
    return f"{parent.nodeid}::{name}[{param}]"


class ForgeSpecFile(pytest.File):
    """A ``*.forge.yaml`` experiment: one item per preset."""

    def collect(self) -> Iterator[pytest.Item]:
        experiment = load_experiment(self.path, get_settings(self.config).presets_root)
        chosen = self.ihook.pytest_forge_select_presets(config=self.config, experiment=experiment,
                                                        presets=list(experiment.presets))
        for preset in experiment.presets if chosen is None else chosen:
            item = ForgeItem.from_parent(self, name=f"{experiment.name}[{preset.name}]",
                                         nodeid=param_nodeid(self, experiment.name, preset.name),
                                         experiment=experiment, preset=preset)
            for mark in preset_marks(self.config, preset):
                item.add_marker(mark)
            yield item
        for preset_id, error in experiment.preset_errors.items():
            broken = BrokenPresetItem.from_parent(self, name=f"{experiment.name}[{preset_id}]",
                                                  nodeid=param_nodeid(self, experiment.name, preset_id), error=error)
            # a build item like the others, so the summary table and the report show it failed, not leave it out
            broken.user_properties.extend([(KIND, "build"), (EXPERIMENT, experiment.name), (SPEC, str(experiment.path)),
                                           (MODEL, str(experiment.model)), (PRESET, preset_id)])
            broken.add_marker(pytest.mark.forge)
            yield broken

    def repr_failure(self, excinfo: ExceptionInfo[BaseException]) -> str | TerminalRepr:  # type: ignore[override]
        if isinstance(excinfo.value, SpecError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class BrokenPresetItem(CleanFailureItem):
    """A preset of a spec that could not be loaded: it fails alone, the spec's other presets still run."""

    def __init__(self, *, error: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        raise ForgeCheckFailed(self.error)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name


class ForgeItem(CleanFailureItem):
    """Build (or reuse) one preset of an experiment, check its invariants, benchmark it, check parity."""

    def __init__(self, *, experiment: Experiment, preset: Preset, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.experiment = experiment
        self.preset = preset
        self.user_properties.extend(item_properties(experiment.name, experiment.path, experiment.model, preset))

    def runtest(self) -> None:
        self.phase = PhaseLine.for_item(self.config)
        try:
            self._work()
        finally:
            self.phase.clear()

    def _work(self) -> None:
        spec = self.experiment.spec
        settings = get_settings(self.config)
        if searches(self.experiment, self.preset):
            outcome = self._search(settings)
        else:
            outcome = build_for_test(self, self.experiment.model, self.preset, spec.inputs.shapes,
                                     self.experiment, progress=lambda message: self.phase(f"build: {message}"))
        record_properties(self, outcome)
        if not settings.benchmark or not (spec.benchmark.enabled or spec.accuracy.enabled):
            self._smoke(outcome)
            return
        self._benchmark(outcome, settings)

    def _search(self, settings: ForgeSettings) -> VerifiedBuild:
        """The spec's int8 search in place of the plain build; its result is then checked like any build. With no
        passing trial the item fails with the search's outcome and the diagnosis of the best trial's build."""
        tuned = search_build(self, self.experiment, self.preset, settings, phase=self.phase)
        outcome = checked(self, tuned.build)
        if not tuned.passed:
            record_properties(self, outcome)
            raise ForgeCheckFailed("\n".join([tuned.summary, *self._diagnosis(outcome.record, settings)]))
        return outcome

    def _diagnosis(self, record: BuildRecord, settings: ForgeSettings) -> list[str]:
        """The failure's diagnosis lines, unless the spec turned them off (accuracy.diagnose: false)."""
        if not self.experiment.spec.accuracy.diagnose:
            return []
        self.phase("diagnosis of the failed parity")
        return diagnosis_lines(self, record, self._run_settings(settings))

    def _smoke(self, outcome: VerifiedBuild) -> None:
        """One inference on the artifact; the benchmark step covers this when it runs. A verified cache hit reports
        the build's recorded smoke run instead: the same bytes and the same toolchain (both in the build key) ran it,
        and loading a large artifact again would cost more than the rest of the item."""
        record = outcome.record
        recorded = record.manifest.smoke
        if outcome.cached and recorded is not None and recorded.runner:
            self.user_properties.append(("smoke", f"ok at build time on identical bytes ({recorded.runner}: "
                                                  f"{recorded.detail})"))
            return
        try:
            samples, _ = run_samples(record, self._run_settings(get_settings(self.config)), count=1)
            result = smoke_run(self.preset.backend, record.artifact_path, samples[0])
        except ForgeError as exc:
            raise ForgeCheckFailed(f"smoke inference failed: {exc}") from exc
        self.user_properties.append(("smoke", f"ok, {result.detail}" if result.runner else
                                     f"not run here: {result.detail}"))

    def _run_settings(self, settings: ForgeSettings) -> RunSettings:
        spec = self.experiment.spec
        return RunSettings(
            warmup=settings.warmup if settings.warmup is not None else spec.benchmark.warmup,
            runs=settings.runs if settings.runs is not None else spec.benchmark.runs,
            threads=spec.benchmark.threads, seed=spec.inputs.seed, samples=spec.inputs.samples,
            dataset=self.experiment.dataset, accuracy=spec.accuracy.enabled,
            thresholds=spec.accuracy.override_for(str(self.preset.precision)),
            values=spec.inputs.values, output_checks=spec.accuracy.outputs,
            min_duration_s=spec.benchmark.min_duration_s if settings.runs is None else None,
            min_runs=spec.benchmark.min_runs, max_cv=spec.benchmark.max_cv, drift_alpha=spec.benchmark.drift_alpha,
        )

    def _benchmark(self, outcome: VerifiedBuild, settings: ForgeSettings) -> None:
        record = outcome.record
        key = signer(self.config)
        run_settings = self._run_settings(settings)
        run_settings.host_extra = site_host_state(self)
        self.phase("benchmark and parity" if run_settings.accuracy else "benchmark")
        run = run_native(outcome, run_settings, key.signer if key else None)  # a fresh build hands its checks along
        self.ihook.pytest_forge_run_finished(item=self, run=run)
        summary = run.summary
        self.user_properties.extend([("run_status", summary.status), (RUN_SUMMARY_PATH, str(run.summary_path))])
        if not run.completed:
            raise ForgeCheckFailed(f"benchmark failed (recorded in {run.summary_path}): {summary.error}")
        assert summary.latency is not None
        self.user_properties.extend([("runner", summary.runner), ("evidence", summary.evidence),
                                     *latency_properties(summary),
                                     ("structured_result_path", str(run.structured_result_path))])
        if summary.speed_vs_fp32 is not None:  # said plainly; a handoff, not a judgement (unless the spec asks)
            self.user_properties.extend([(SPEED_VS_FP32, describe_speed(summary.speed_vs_fp32)),
                                         ("speed_ratio_vs_fp32", summary.speed_vs_fp32.ratio)])
        if run.parity is not None:
            parity = run.parity
            self.user_properties.extend([
                ("min_cosine", parity.min_cosine), ("max_abs_error", parity.max_abs_error),
                ("top1_agreement", parity.top1_agreement), ("min_channel_cosine", parity.min_channel_cosine),
                ("parity_passed", parity.passed),
                ("accuracy_evidence_path", str(run.evidence_path)),
            ])
            if parity.warnings:
                self.user_properties.append(("parity_warnings", "; ".join(parity.warnings)))
            if not parity.passed:
                calibration = record.manifest.calibration
                warnings = [*(record.manifest.warnings or []),
                            *(f"calibration: {line}" for line in (calibration.warnings or [] if calibration else []))]
                message = ("accuracy parity vs the source model failed: " + "; ".join(parity.failures)
                           + "".join(f"; build warning: {warning}" for warning in warnings[:3]))
                raise ForgeCheckFailed("\n".join([message, *self._diagnosis(record, settings)]))
        rules = regression_rules(settings, self.experiment.spec)
        if rules:
            check_baseline(self, record, summary, rules, settings, self.experiment.spec.benchmark.max_host_drift)
        verdict = summary.speed_vs_fp32
        if verdict is not None and verdict.verdict == "slower" and self.experiment.spec.benchmark.require_faster_than_fp32:
            raise ForgeCheckFailed(f"benchmark.require_faster_than_fp32: {describe_speed(verdict)}")

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.experiment.name}[{self.preset.name}]"


def fp32_first(items: list[pytest.Item]) -> None:
    """Reorder in place: within each spec, its fp32 items take the first of the places its items hold (all other
    items keep their places), so an int8/fp16 item's speed verdict finds the fp32 run of this session."""
    places: dict[Path, list[int]] = {}
    for index, item in enumerate(items):
        if isinstance(item, ForgeItem):
            places.setdefault(item.path, []).append(index)
    for indices in places.values():
        ordered = sorted((items[index] for index in indices),
                         key=lambda item: str(item.preset.precision) != "fp32")  # type: ignore[attr-defined]
        for index, item in zip(indices, ordered, strict=True):
            items[index] = item


def parametrize_forge_marker(metafunc: pytest.Metafunc) -> None:
    """``@pytest.mark.forge(model=..., presets=[...])`` parametrizes ``forge_preset``, one case per preset."""
    marker = metafunc.definition.get_closest_marker("forge")
    if marker is None or "forge_preset" not in metafunc.fixturenames:
        return
    preset_ids = marker.kwargs.get("presets")
    if not preset_ids or "model" not in marker.kwargs:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: @pytest.mark.forge needs model= and presets=[...]")
    root = get_settings(metafunc.config).presets_root
    params = []
    for preset_id in preset_ids:
        try:
            preset = load_preset(preset_id, root)
        except PresetError as exc:  # this case fails with the error; the test's other presets still run
            params.append(pytest.param(f"{metafunc.definition.nodeid}: {exc}", id=str(preset_id)))
            continue
        params.append(pytest.param(preset, id=preset.name, marks=preset_marks(metafunc.config, preset)))
    metafunc.parametrize("forge_preset", params)
