"""The int8 search (``inferedgeforge tune``): find a static int8 artifact that passes parity, and is fast.

Each step is a trial, a real build (engine/quantization/tune_trial.py), in this order:

1. the preset as is, and when the quantizer failed on it in a known way, the preset with the setting that avoids
   it (tune_ort.py), which the later trials keep;
2. structural variants where the model's ops call for them (tune_ort.py): only matrix and convolution ops
   quantized, dynamic int8 of recurrent and matrix ops, depthwise convolutions with slow int8 kernels in float;
3. calibration settings, one change each against (1): the other calibration methods, per-channel weights
   toggled, ``reduce_range``, symmetric activations;
4. when nothing passed yet: from the best trial so far, keep in float (``nodes_to_exclude``) the nodes the
   diagnosis (engine/quantization/diagnose.py) tags ``range_mixing`` together, then with their branch back to the
   compute nodes (tune_groups.py), one trial each; else the input and output tensors of the node it ranks worst
   (the node, their producers and consumers: in QDQ one node alone in float changes no tensor); diagnose the new
   artifact, and again, until parity passes (a failing trial is closer when fewer checks fail, then fewer
   channels collapse);
5. a revert pass: re-quantize each kept node once (compute nodes first) and keep it quantized when parity still
   passes, so every float node left is proven necessary by a recorded trial.

``max_trials`` and ``timeout_s`` hold: a trial starts only when the longest trial so far, and one more build for
the result, still fit before the deadline. The fastest passing trial wins (else the best failing one, by its
figures) and is built again, as an ordinary build of the preset with the trial's options, into the output root
with the ledger bound in (engine/quantization/tune_ledger.py), so ``rebuild-from-manifest`` reproduces it with no
search. ONNX Runtime specifics are in tune_ort.py; RKNN int8 (tune_rknn.py) skips (2) and (3), keeps toolkit layers in
float16 (``float_layers``, hybrid quantization) as the toolkit's own analysis ranks them, and says "on the simulator".
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.engine.build import build
from pytest_inferedgeforge.engine.plan import BuildPlan, plan_build
from pytest_inferedgeforge.engine.presets import load_preset
from pytest_inferedgeforge.engine.quantization.diagnose import diagnose_onnxruntime, range_mixing_nodes, worst_nodes
from pytest_inferedgeforge.engine.quantization.tune_groups import SourceGraph, float_groups
from pytest_inferedgeforge.engine.quantization.tune_ledger import LedgerBackend
from pytest_inferedgeforge.engine.quantization.tune_ort import (
    calibration_variants,
    ort_base_options,
    structural_variants,
    workaround,
)
from pytest_inferedgeforge.engine.quantization.tune_request import TuneOutcome, TuneRequest
from pytest_inferedgeforge.engine.quantization.tune_rknn import WHERE, float_option, is_rknn, rank_layers, rknn_base_options
from pytest_inferedgeforge.engine.quantization.tune_score import describe, select
from pytest_inferedgeforge.engine.quantization.tune_score import failing_score as _failing_score
from pytest_inferedgeforge.engine.quantization.tune_score import passed as _passed
from pytest_inferedgeforge.engine.quantization.tune_trial import (
    BENCH_S,
    Evaluation,
    Timing,
    TrialResult,
    TrialRunner,
    short_bench,
)
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.presets import Preset
from pytest_inferedgeforge.model.records.tuning import Stage, TuningTrial

FP32_PRESET = "onnxruntime/cpu_fp32"
"""The build every trial's latency is compared with."""
HISTOGRAM_METHODS = ("entropy", "percentile")
HISTOGRAM_COST = 8.0
"""onnxruntime's histogram calibration is much slower than minmax: measured on layout_cdla (800x608), a percentile
trial took 114 s after a 16.5 s minmax one (6.9x); without this a 60 s budget ran to 148 s."""
RANKED_KEPT = 10
"""How many of a diagnosis' worst nodes a trial record keeps."""

def _config_key(options: dict[str, Any]) -> str:
    floats = ("nodes_to_exclude", "float_layers")  # an empty list is the option left out
    normal = {key: sorted(value) if key in floats else value for key, value in options.items()
              if not (key in floats and not value)}
    return json.dumps(normal, sort_keys=True, default=str)


class _Search:
    """The trials run so far, the budget, and the one way to run another."""

    def __init__(self, request: TuneRequest, runner: TrialRunner, started: float) -> None:
        self.request = request
        self.runner = runner
        self.started = started
        self.deadline = started + request.timeout_s if request.timeout_s is not None else None
        self.trials: list[TuningTrial] = []
        self.artifacts: dict[int, Path] = {}
        self.tried: dict[str, TuningTrial] = {}
        self.mixing: dict[int, list[str]] = {}
        """Trial -> the nodes its diagnosis tags ``range_mixing`` and divergent (kept in float together)."""
        self.graph = SourceGraph(runner.base.source)
        self.unhelpful: set[str] = set()
        """Ranked nodes whose float trial improved nothing: not tried again after a later diagnosis ranks them."""
        self.stopped = "exhausted"

    def _say(self, message: str) -> None:
        if self.request.progress is not None:
            self.request.progress(message)

    def room(self, cost: float = 1.0) -> bool:
        """Whether another trial fits: under max_trials, and (with a deadline) the trial, expected to take ``cost``
        times the longest trial so far, then the resulting build (the longest trial once more) before it."""
        if len(self.trials) >= self.request.max_trials:
            self.stopped = "max_trials"
            return False
        if self.deadline is not None and self.trials:
            longest = max(trial.wall_s for trial in self.trials)
            if time.monotonic() + (cost + 1) * longest > self.deadline:
                self.stopped = "timeout"
                return False
        self.stopped = "exhausted"
        return True

    def bench_s(self) -> float:
        if self.deadline is None:
            return BENCH_S
        return max(0.05, min(BENCH_S, (self.deadline - time.monotonic()) / 50))

    def _cost(self, options: dict[str, Any]) -> float:
        """How many times the longest trial so far this one is expected to take: a histogram calibration method
        not measured yet costs HISTOGRAM_COST (the deadline is checked between trials, never inside one)."""
        method = options.get("calibration_method")
        measured = {trial.build_options.get("calibration_method") for trial in self.trials}
        return HISTOGRAM_COST if method in HISTOGRAM_METHODS and method not in measured else 1.0

    def trial(self, options: dict[str, Any], stage: Stage, change: str, parent: TuningTrial | None) -> TuningTrial | None:
        """Run one trial, or return the earlier trial of the same options; None when the budget is spent."""
        known = self.tried.get(_config_key(options))
        if known is not None:
            return known
        if not self.room(self._cost(options)):
            return None
        number = len(self.trials) + 1
        result: TrialResult = self.runner.run(number, options, stage=stage, change=change,
                                              parent=parent.trial if parent else None, bench_s=self.bench_s())
        record = result.record
        self.trials.append(record)
        self.tried[_config_key(options)] = record
        if result.artifact is not None:
            self.artifacts[number] = result.artifact
        verdict = "error" if record.error else "passed" if _passed(record) else "failed"
        ratio = f" ({record.fp32_ratio:.2f}x fp32)" if record.fp32_ratio is not None else ""
        self._say(f"trial {number} [{stage}] {change}: {verdict}; {describe(record)}{ratio}; {record.wall_s:.1f}s")
        return record

    def ranked(self, trial: TuningTrial) -> list[str]:
        """The nodes the diagnosis of ``trial``'s artifact ranks worst, worst first; recorded with the trial."""
        artifact = self.artifacts.get(trial.trial)
        if artifact is None:
            return []
        clock = time.perf_counter()
        samples = self.runner.evaluation.samples
        if is_rknn(self.request.preset):  # the toolkit's accuracy_analysis, one run per sample: two are enough
            names = rank_layers(self.runner.base.backend, self.request.model.resolve(), artifact, samples[:2])
        else:
            diagnosis = diagnose_onnxruntime(self.request.model.resolve(), artifact, samples)
            names = [name for name in worst_nodes(diagnosis) if name in self.graph.node]  # what nodes_to_exclude
            self.mixing[trial.trial] = [name for name in range_mixing_nodes(diagnosis) if name in self.graph.node]
        recorded = self.trials[trial.trial - 1]
        updated = recorded.model_copy(update={"worst_nodes": names[:RANKED_KEPT],
                                              "wall_s": round(recorded.wall_s + time.perf_counter() - clock, 3)})
        self.trials[trial.trial - 1] = updated
        self.tried[_config_key(trial.build_options)] = updated
        self._say(f"diagnosis of trial {trial.trial}: worst {', '.join(names[:3]) or 'none named'}")
        return names


def _keep_group_in_float(search: _Search, current: TuningTrial) -> TuningTrial | None:
    """The groups of ``current``'s range-mixing nodes (tune_groups.py), one trial each, smallest first: the first
    that passes, else the one that improves the figures most, else None."""
    best = None
    for change, group in float_groups(search.graph, search.mixing.get(current.trial, [])):
        nodes = list(dict.fromkeys([*current.float_nodes, *group]))
        trial = search.trial({**current.build_options, float_option(search.request.preset): nodes}, "float_nodes",
                             change, current)
        if trial is None or _passed(trial):
            return trial or best
        if _failing_score(trial) > _failing_score(best or current):
            best = trial
    return best


def _keep_in_float(search: _Search, start: TuningTrial) -> TuningTrial:
    """Greedy: from ``current``, keep the nodes the diagnosis tags ``range_mixing`` in float together (one trial),
    else the worst-ranked node; a trial that passes or improves the figures becomes ``current`` (diagnosed again),
    one that does not leaves room for the next-ranked node. Ends when parity passes, no ranked node helps, or the
    budget is spent."""
    current = start
    while not _passed(current):
        ranked = search.ranked(current)
        group = _keep_group_in_float(search, current)
        if group is not None:
            current = group
            continue
        for node in [name for name in ranked if name not in current.float_nodes and name not in search.unhelpful]:
            kept = [node] if is_rknn(search.request.preset) else search.graph.tensors_in_float(node)
            change = f"keep {node} in float" if len(kept) == 1 else \
                f"keep the tensors of {node} in float ({len(kept)} nodes: {', '.join(kept)})"
            options = {**current.build_options,
                       float_option(search.request.preset): list(dict.fromkeys([*current.float_nodes, *kept]))}
            trial = search.trial(options, "float_nodes", change, current)
            if trial is None:
                return current
            if _passed(trial) or _failing_score(trial) > _failing_score(current):
                current = trial
                break
            search.unhelpful.add(node)
        else:
            return current
    return current


def _revert(search: _Search, current: TuningTrial) -> TuningTrial:
    """Re-quantize each kept node once, compute nodes first; keep it quantized when parity still passes."""
    for node in search.graph.compute_first(list(current.float_nodes)):
        options = {**current.build_options, float_option(search.request.preset): [n for n in current.float_nodes if n != node]}
        trial = search.trial(options, "revert", f"re-quantize {node}", current)
        if trial is None:
            break
        if _passed(trial):
            current = trial
    return current


def _run_search(search: _Search, base_options: dict[str, Any]) -> None:
    base = search.trial(base_options, "preset", "the preset as is", None)
    assert base is not None  # the first trial always has room
    fixed = None if is_rknn(search.request.preset) else workaround(base.error, base_options)
    if fixed is not None:
        base_options = fixed[1]
        base = search.trial(base_options, "workaround", fixed[0], base) or base
    variants: list[tuple[Stage, str, dict[str, Any]]] = [] if is_rknn(search.request.preset) else [
        *(("structure", change, options) for change, options in structural_variants(base_options, search.graph)),
        *(("calibration", change, options) for change, options in calibration_variants(base_options))]
    for stage, change, options in variants:
        if search.trial(options, stage, change, base) is None and not search.room():
            return  # out of budget; a variant only too costly for what is left is skipped for the next one
    if any(_passed(trial) for trial in search.trials):
        search.stopped = "passed"
        return
    start = max((trial for trial in search.trials if not trial.error), key=_failing_score, default=None)
    if start is None:
        return
    found = _keep_in_float(search, start)
    if _passed(found):
        _revert(search, found)
        search.stopped = "passed"


def _check_tunable(preset: Preset) -> dict[str, Any]:
    return rknn_base_options(preset) if is_rknn(preset) else ort_base_options(preset)


def _plan(request: TuneRequest, preset: Preset) -> BuildPlan:
    """A plan of ``preset`` with the request's inputs, as a spec item plans its builds (same build keys)."""
    return plan_build(request.model, preset, request.output_root, input_shapes=request.input_shapes,
                      input_values=request.input_values, input_seed=request.seed, input_dataset=request.dataset,
                      calibration_dataset=request.calibration_dataset, preprocess=request.preprocess)


def tunable(preset: Preset) -> bool:
    """Whether the search applies to ``preset``: static QDQ int8 on ONNX Runtime, int8 on RKNN (a spec's other
    presets build as they are)."""
    try:
        _check_tunable(preset)
    except ForgeError:
        return False
    return True


def _fp32_timing(request: TuneRequest, evaluation: Evaluation, bench_s: float) -> Timing:
    """The benchmark of the model's fp32 build (built, or reused from the output root) on the evaluation inputs."""
    plan = _plan(request, load_preset(FP32_PRESET, None))
    record = build(plan).record
    runner = plan.backend.load(record.artifact_path)
    try:
        return short_bench(runner, evaluation.samples, bench_s)
    finally:
        runner.close()


def tune(request: TuneRequest) -> TuneOutcome:
    """Search, then build the selected trial's options into the output root with the ledger bound in.

    onnxruntime.quantization prints its calibration progress on stdout (entropy, percentile); during the search it
    goes to stderr, so a caller's stdout (``tune --json``) holds only what the caller prints."""
    with contextlib.redirect_stdout(sys.stderr):
        return _tune(request)


def _tune(request: TuneRequest) -> TuneOutcome:
    base_options = _check_tunable(request.preset)
    if request.max_trials < 1:
        raise ForgeError("max_trials must be at least 1")
    started = time.monotonic()
    plan = _plan(request, request.preset)
    evaluation = Evaluation.prepare(plan, dataset=request.dataset, count=request.samples, seed=request.seed,
                                    thresholds=request.thresholds, checks=request.output_checks)
    bench = BENCH_S if request.timeout_s is None else max(0.05, min(BENCH_S, request.timeout_s / 50))
    fp32 = None if is_rknn(request.preset) else _fp32_timing(request, evaluation, bench)
    plan.output_root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".tune-", dir=plan.output_root))
    try:
        search = _Search(request, TrialRunner(plan, scratch, evaluation, fp32), started)
        _run_search(search, base_options)
        selected = select(search.trials, fewest_float=is_rknn(request.preset))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if all(trial.error for trial in search.trials):  # nothing to keep, nothing to diagnose: say why, in one line
        raise ForgeError(f"no passing configuration within budget: none of {len(search.trials)} trial(s) built an "
                         f"int8 artifact; trial 1: {search.trials[0].error}")
    trials = [trial.model_copy(update={"selected": trial.trial == selected.trial}) for trial in search.trials]
    preset = request.preset.model_copy(update={"build_options": dict(selected.build_options)})
    final_plan = _plan(request, preset)
    passed = _passed(selected)
    summary = {"selected_trial": selected.trial, "passed": passed, "stopped": search.stopped}
    final_plan = replace(final_plan, backend=LedgerBackend(final_plan.backend, trials, summary))
    outcome = build(final_plan, force=True, signer=request.signer)
    notes = list(evaluation.warnings)
    if selected.artifact_sha256 and outcome.record.manifest.artifact.sha256 != selected.artifact_sha256:
        notes.append(f"the resulting artifact's sha256 differs from trial {selected.trial}'s: the quantizer is not "
                     "deterministic here; the ledger's figures are the trial's")
    return TuneOutcome(passed=passed, selected=trials[selected.trial - 1], trials=trials, build=outcome,
                       fp32=fp32, median_ms=selected.median_ms, elapsed_s=time.monotonic() - started,
                       stopped=search.stopped, notes=notes, where=WHERE if is_rknn(request.preset) else "")
