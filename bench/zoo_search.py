"""The int8 search (``inferedgeforge tune``) on the real-model zoo, on its real data (issue 25). Run by hand.

    python bench/zoo_search.py [MODEL ...] [--max-trials N] [--timeout-s S]   # bench/results/zoo_search.json

For each zoo model (tests/zoo/zoo.yaml; ``python tests/zoo/fetch_zoo.py`` first) the spec is written exactly as
tests/zoo/test_zoo.py writes it (its real calibration and evaluation data, tests/zoo/zoo_data.py; its shapes, value
rules, preprocessing and output checks), and the engine's ``tune()`` searches ``onnxruntime/cpu_int8`` as a spec's
``quantization.search`` would. Per model: the outcome, the float nodes, the share of compute quantized, the trials
and the search time; then the resulting int8 build and the model's fp32 build are benchmarked interleaved (the
same evaluation inputs, ROUNDS rounds of ROUND_S seconds each) and judged as the speed verdict judges
(engine/quantization/speed.py): faster or slower only when the medians' 95 % intervals do not overlap. A model
without a passing configuration gets the search's summary and the diagnosis of its best trial (first lines).
Models run one after the other, in one process; one model's failure is recorded and the next one runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import onnxruntime
import yaml

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "zoo_search.json"
ZOO_DIR = REPO / "tests" / "zoo"
sys.path[:0] = [str(ZOO_DIR)]

from fetch_zoo import ZooUnavailable, fetch, load_zoo  # noqa: E402
from zoo_data import write_model_data, write_spec  # noqa: E402

from pytest_inferedgeforge.engine.benchmark import measure  # noqa: E402
from pytest_inferedgeforge.engine.build import build  # noqa: E402
from pytest_inferedgeforge.engine.plan import plan_build  # noqa: E402
from pytest_inferedgeforge.engine.presets import load_experiment  # noqa: E402
from pytest_inferedgeforge.engine.quantization.diagnoses import diagnose_build, summary_lines  # noqa: E402
from pytest_inferedgeforge.engine.quantization.speed import interval_verdict  # noqa: E402
from pytest_inferedgeforge.engine.quantization.tune import FP32_PRESET, TuneOutcome, TuneRequest, tune  # noqa: E402
from pytest_inferedgeforge.engine.runs import RunSettings, run_samples  # noqa: E402
from pytest_inferedgeforge.model.errors import ForgeError  # noqa: E402
from pytest_inferedgeforge.model.host_state import cpu_model, int8_dot_instructions  # noqa: E402
from pytest_inferedgeforge.model.spec import Experiment  # noqa: E402
from pytest_inferedgeforge.model.stats import summarize  # noqa: E402

ZOO = yaml.safe_load((ZOO_DIR / "zoo.yaml").read_text(encoding="utf-8"))["models"]
PRESET = "onnxruntime/cpu_int8"
ROUNDS = 5
ROUND_S = 1.5
"""The speed check: each artifact runs ROUND_S seconds per round, alternating, ROUNDS rounds (pooled)."""
DIAGNOSIS_LINES = 3


def _experiment(name: str, scratch: Path) -> Experiment:
    """The model's spec as tests/zoo/test_zoo.py writes it (its data, its zoo presets beside the built-in ones)."""
    entry = ZOO[name]
    inputs = write_model_data(entry["data"], scratch)
    spec_path = write_spec(name, entry, fetch(load_zoo()[name]), [FP32_PRESET, PRESET], inputs, scratch, search=False)
    return load_experiment(spec_path, scratch / "presets")


def _speed(experiment: Experiment, outcome: TuneOutcome, builds: Path) -> dict[str, Any]:
    """The resulting int8 build against the fp32 build, interleaved on the evaluation inputs, with the speed
    verdict's rule (non-overlapping 95 % intervals of the medians)."""
    inputs = experiment.spec.inputs
    fp32_preset = next(p for p in experiment.presets if p.name == FP32_PRESET)
    plan = plan_build(experiment.model, fp32_preset, builds, input_shapes=inputs.shapes, input_values=inputs.values,
                      input_seed=inputs.seed, input_dataset=experiment.dataset, preprocess=inputs.preprocess)
    fp32 = build(plan).record
    int8 = outcome.build.record
    samples, _ = run_samples(int8, RunSettings(seed=inputs.seed, samples=inputs.samples, dataset=experiment.dataset,
                                               values=inputs.values))
    runners = {"int8": plan.backend.load(int8.artifact_path), "fp32": plan.backend.load(fp32.artifact_path)}
    latencies: dict[str, list[float]] = {key: [] for key in runners}
    try:
        for _ in range(ROUNDS):
            for key, runner in runners.items():
                latencies[key] += measure(runner, samples, warmup=2, runs=5, min_duration_s=ROUND_S,
                                          min_runs=5).latencies_ms
    finally:
        for runner in runners.values():
            runner.close()
    stats = {key: summarize(values) for key, values in latencies.items()}
    mine, theirs = stats["int8"], stats["fp32"]
    assert mine.median_ci_ms is not None and theirs.median_ci_ms is not None
    verdict = interval_verdict(mine.median_ci_ms, theirs.median_ci_ms)
    return {"int8_median_ms": mine.median_ms, "int8_median_ci_ms": list(mine.median_ci_ms),
            "fp32_median_ms": theirs.median_ms, "fp32_median_ci_ms": list(theirs.median_ci_ms),
            "int8_runs": mine.samples, "fp32_runs": theirs.samples,
            "ratio": round(mine.median_ms / theirs.median_ms, 3), "speed": verdict}


def _diagnosis(experiment: Experiment, outcome: TuneOutcome) -> list[str]:
    record = outcome.build.record
    inputs = experiment.spec.inputs
    try:
        samples, _ = run_samples(record, RunSettings(seed=inputs.seed, samples=inputs.samples,
                                                     dataset=experiment.dataset, values=inputs.values))
        diagnosis, _ = diagnose_build(record.build_dir, samples)
    except ForgeError as exc:
        return [f"diagnosis not made: {' '.join(str(exc).split())}"]
    return summary_lines(diagnosis, limit=DIAGNOSIS_LINES)


def search_model(name: str, scratch: Path, builds: Path, max_trials: int, timeout_s: float) -> dict[str, Any]:
    """One model's row: the search's outcome, then the speed check (passing) or the diagnosis (failing)."""
    experiment = _experiment(name, scratch)
    inputs = experiment.spec.inputs
    preset = next(p for p in experiment.presets if p.name == PRESET)
    clock = time.monotonic()
    try:
        outcome = tune(TuneRequest(
            model=experiment.model, preset=preset, output_root=builds, max_trials=max_trials, timeout_s=timeout_s,
            dataset=experiment.dataset, samples=inputs.samples, input_shapes=inputs.shapes,
            input_values=inputs.values, progress=lambda line: print(f"  {name}: {line}", flush=True),
            calibration_dataset=experiment.calibration, preprocess=inputs.preprocess,
            output_checks=experiment.spec.accuracy.outputs, thresholds=experiment.spec.accuracy.override_for("int8"),
            seed=inputs.seed))
    except ForgeError as exc:
        return {"model": name, "outcome": "error", "summary": " ".join(str(exc).split()),
                "search_s": round(time.monotonic() - clock, 1)}
    selected = outcome.selected
    row: dict[str, Any] = {
        "model": name, "outcome": "passed" if outcome.passed else "no passing configuration",
        "summary": outcome.summary, "stopped": outcome.stopped, "trials": len(outcome.trials),
        "search_s": round(outcome.elapsed_s, 1), "selected_trial": selected.trial,
        "float_nodes": selected.float_nodes, "float_node_count": len(selected.float_nodes),
        "source_nodes": None, "quantized_compute_share": selected.quantized_compute_share,
        "build_options": selected.build_options, "parity": outcome.to_dict()["parity"],
        "trial_log": [{"trial": t.trial, "stage": t.stage, "change": t.change, "passed": bool(t.parity and t.parity.passed),
                       "min_cosine": t.parity.min_cosine if t.parity else None,
                       "min_channel_cosine": t.parity.min_channel_cosine if t.parity else None,
                       "median_ms": t.median_ms, "error": t.error} for t in outcome.trials],
    }
    import onnx

    row["source_nodes"] = len(onnx.load(str(experiment.model), load_external_data=False).graph.node)
    if outcome.passed:
        row.update(_speed(experiment, outcome, builds))
    else:
        row["diagnosis"] = _diagnosis(experiment, outcome)
    return row


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | outcome | float nodes | quantized compute | int8 / fp32 median | ratio | speed | trials | search |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["outcome"] == "passed":
            latency = f"{r['int8_median_ms']:.2f} / {r['fp32_median_ms']:.2f} ms"
            ratio, speed = f"{r['ratio']:.2f}", r["speed"]
        else:
            latency = ratio = speed = "-"
        floats = f"{r['float_node_count']} of {r['source_nodes']}" if "float_node_count" in r else "-"
        lines.append(f"| {r['model']} | {r['outcome']} | {floats} | {_pct(r.get('quantized_compute_share'))} | "
                     f"{latency} | {ratio} | {speed} | {r.get('trials', '-')} | {r['search_s']:.0f} s |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", metavar="MODEL", help=f"any of {', '.join(ZOO)} (default: all)")
    parser.add_argument("--max-trials", type=int, default=16)
    parser.add_argument("--timeout-s", type=float, default=300.0)
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"where the rows go (default: {RESULTS})")
    parser.add_argument("--builds", type=Path, default=None,
                        help="output root to build into and keep (default: a temporary directory)")
    args = parser.parse_args()
    unknown = sorted(set(args.models) - set(ZOO))
    if unknown:
        parser.error(f"unknown zoo model(s) {', '.join(unknown)}; choose from {', '.join(ZOO)}")
    previous = json.loads(args.results.read_text(encoding="utf-8")) if args.results.is_file() else {}
    rows = {row["model"]: row for row in previous.get("rows", [])}
    with tempfile.TemporaryDirectory() as scratch:
        builds = args.builds or Path(scratch) / "builds"
        for name in args.models or list(ZOO):
            print(f"{name}: searching {PRESET} (max_trials {args.max_trials}, timeout_s {args.timeout_s:g})", flush=True)
            try:
                rows[name] = {**search_model(name, Path(scratch) / name, builds, args.max_trials, args.timeout_s),
                              "budget": {"max_trials": args.max_trials, "timeout_s": args.timeout_s}}
            except ZooUnavailable as exc:
                raise SystemExit(f"zoo model {name} unavailable ({exc}): run python tests/zoo/fetch_zoo.py first") from exc
            print(f"{name}: {rows[name]['summary']}", flush=True)
            for line in rows[name].get("diagnosis", []):
                print(f"  diagnosis: {line}", flush=True)
            ordered = [rows[model] for model in ZOO if model in rows]
            result = {"onnxruntime": onnxruntime.__version__, "preset": PRESET,
                      "machine": f"{platform.machine()}, {cpu_model()}, {os.cpu_count()} logical CPUs, Python "
                                 f"{platform.python_version()}", "int8_dot_instructions": int8_dot_instructions(),
                      "speed_check": {"rounds": ROUNDS, "round_s": ROUND_S}, "rows": ordered}
            args.results.parent.mkdir(parents=True, exist_ok=True)
            args.results.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table([rows[model] for model in ZOO if model in rows]))


if __name__ == "__main__":
    main()
