"""Forge's parity verdicts against Polygraphy's on the real-model zoo (issue 22). Run by hand.

    python bench/polygraphy_agreement.py [MODEL ...] [--builds DIR]   # writes bench/results/polygraphy_agreement.json

For each zoo model (tests/zoo/zoo.yaml; ``python tests/zoo/fetch_zoo.py`` first) and each ONNX Runtime fp16 or
int8 preset its table lists, Forge builds the artifact (engine API, as the zoo's pytest run does), and ONNX Runtime
runs the source model and the artifact on the inputs the zoo uses (the spec's shapes, value rules, seed and sample
count; its real calibration and evaluation data, tests/zoo/zoo_data.py). Each check in CHECKS then judges the same arrays twice:
Forge's ``check_parity`` with ``Thresholds()`` (the tolerance alone; the collapsed-channel check, which Polygraphy
has no peer for, off) and Polygraphy as ``polygraphy run --validate`` does (NaN/inf validation, then
``Comparator.compare_accuracy`` with ``SimpleCompareFunc``, each inference on its own). Both verdict functions are
the ones tests/test_polygraphy_peer.py holds to each other.

The checks: atol = rtol = T on the elementwise, mean and median error, for T = 1e-3, 1e-2 and 1e-1 (nine checks;
every preset judged by all). 1e-2 alone is informative as a verdict (on the zoo 6/24 artifacts pass elementwise,
11/24 on the mean, 18/24 on the median) but no model's pooled and per-inference statistics straddle it, so it
cannot show whether Forge judges each inference; the decades either side of it can (ppocr_cls's cpu_fp16 artifact at
1e-3, its cpu_int8 one at 1e-1, on the mean and the median). The elementwise checks judge every element of every
inference either way, so they test the atol-or-rtol rule, the relative difference and NaN/inf handling. Presets:
every ``onnxruntime/*`` preset of the model's zoo.yaml row that is not fp32 (cpu_fp16, cpu_int8,
cpu_int8_dynamic, and cpu_fp16_keep_bn and cpu_int8_float_concat where listed).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import onnxruntime
import polygraphy
import yaml

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "polygraphy_agreement.json"
ZOO_DIR = REPO / "tests" / "zoo"
sys.path[:0] = [str(ZOO_DIR), str(REPO / "tests")]

from fetch_zoo import ZooUnavailable, fetch, load_zoo  # noqa: E402
from test_polygraphy_peer import forge_parity, polygraphy_verdict  # noqa: E402
from zoo_data import write_model_data, write_spec  # noqa: E402

from pytest_inferedgeforge.backends.onnxruntime import OrtRunner  # noqa: E402
from pytest_inferedgeforge.engine.build import build  # noqa: E402
from pytest_inferedgeforge.engine.parity import run_all  # noqa: E402
from pytest_inferedgeforge.engine.plan import plan_build  # noqa: E402
from pytest_inferedgeforge.engine.presets import load_experiment  # noqa: E402
from pytest_inferedgeforge.engine.runs import RunSettings, run_samples  # noqa: E402
from pytest_inferedgeforge.model.errors import ForgeError  # noqa: E402
from pytest_inferedgeforge.model.spec import Experiment, OutputCheck  # noqa: E402

ZOO = yaml.safe_load((ZOO_DIR / "zoo.yaml").read_text(encoding="utf-8"))["models"]
CHECKS = {f"{stat} {tolerance:g}": OutputCheck(atol=tolerance, rtol=tolerance, error_stat=stat, per_channel=False)
          for stat in ("elemwise", "mean", "median") for tolerance in (1e-3, 1e-2, 1e-1)}


def _experiment(name: str, scratch: Path) -> Experiment:
    """The model's spec as tests/zoo/test_zoo.py writes it, with its ONNX Runtime presets only."""
    entry = ZOO[name]
    presets = [preset for preset in entry["expect"] if preset.startswith("onnxruntime/")]
    spec_path = write_spec(name, entry, fetch(load_zoo()[name]), presets, write_model_data(entry["data"], scratch),
                           scratch)
    return load_experiment(spec_path, scratch / "presets")


def _outputs(runner: OrtRunner, samples: list[Any]) -> list[list[Any]]:
    try:
        return run_all(runner, samples)
    finally:
        runner.close()


def compare_model(name: str, scratch: Path, builds: Path) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """(one row per preset x check, the presets not compared and why)."""
    experiment = _experiment(name, scratch)
    inputs = experiment.spec.inputs
    rows, skipped = [], []
    for preset in (p for p in experiment.presets if str(p.precision) != "fp32"):
        where = {"model": name, "preset": preset.name}
        try:
            record = build(plan_build(experiment.model, preset, builds, input_shapes=inputs.shapes,
                                      input_values=inputs.values, input_seed=inputs.seed,
                                      input_dataset=experiment.dataset, calibration_dataset=experiment.calibration,
                                      preprocess=inputs.preprocess)).record
            samples, _ = run_samples(record, RunSettings(seed=inputs.seed, samples=inputs.samples,
                                                         dataset=experiment.dataset, values=inputs.values))
            source = OrtRunner(record.source_file, None)
            names = [output.name for output in source.session.get_outputs()]
            reference = _outputs(source, samples)
            candidate = _outputs(OrtRunner(record.artifact_path, None), samples)
        except ForgeError as exc:
            skipped.append({**where, "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"})
            continue
        for check_name, check in CHECKS.items():
            forge = forge_parity(reference, candidate, names, check, None)
            polygraphy = polygraphy_verdict(reference, candidate, names, check, None)
            rows.append({**where, "check": check_name, "inferences": len(samples), "forge": forge.passed,
                         "polygraphy": polygraphy.passed, "agree": forge.passed == polygraphy.passed,
                         "polygraphy_finite": polygraphy.finite,
                         "polygraphy_failed_inferences": polygraphy.failed_inferences,
                         "forge_failures": forge.failures})
    return rows, skipped


def _verdict(passed: bool) -> str:
    return "pass" if passed else "FAIL"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'model':<16} {'preset':<34} {'check':<14} {'forge':<6} {'polygraphy':<11} agree"]
    lines += [f"{r['model']:<16} {r['preset']:<34} {r['check']:<14} {_verdict(r['forge']):<6} "
              f"{_verdict(r['polygraphy']):<11} {'yes' if r['agree'] else 'NO'}" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", metavar="MODEL", help=f"any of {', '.join(ZOO)} (default: all)")
    parser.add_argument("--builds", type=Path, default=None,
                        help="output root to build into and reuse across runs (default: a temporary directory)")
    args = parser.parse_args()
    unknown = sorted(set(args.models) - set(ZOO))
    if unknown:
        parser.error(f"unknown zoo model(s) {', '.join(unknown)}; choose from {', '.join(ZOO)}")
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory() as scratch:
        builds = args.builds or Path(scratch) / "builds"
        for name in args.models or list(ZOO):
            try:
                found, not_compared = compare_model(name, Path(scratch) / name, builds)
            except ZooUnavailable as exc:
                raise SystemExit(f"zoo model {name} unavailable ({exc}): run python tests/zoo/fetch_zoo.py first") from exc
            rows += found
            skipped += not_compared
    agree = sum(row["agree"] for row in rows)
    result = {"polygraphy": polygraphy.__version__, "onnxruntime": onnxruntime.__version__,
              "machine": f"{platform.machine()}, Python {platform.python_version()}",
              "checks": {name: check.model_dump(include={"atol", "rtol", "error_stat"}) for name, check in CHECKS.items()},
              "agreement": {"agree": agree, "compared": len(rows)}, "rows": rows, "not_compared": skipped}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table(rows))
    for entry in skipped:
        print(f"not compared: {entry['model']} x {entry['preset']}: {entry['reason']}")
    print(f"agreement: {agree}/{len(rows)}")


if __name__ == "__main__":
    main()
