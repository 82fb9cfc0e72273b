"""Start-up as a user meets it, each pair in fresh processes, interleaved so both see the same machine state.

- plugin: what having the plugin installed costs every pytest session, with it vs ``-p no:inferedgeforge``:
  ``pytest --help`` and a project of one trivial test; goal ratio <= 1.10.
- cli: ``inferedgeforge --help`` and ``inferedgeforge list-presets`` vs ``python -c "import pytest"``; goals
  <= 1.5 and <= 2.0 (issue 26).
- build: a fresh ``inferedgeforge build`` of the zoo's yolov8n (fp32, 12 MB) as a whole process vs a bare
  Python process making the same toolchain calls: an ONNX Runtime session at the preset's optimization level
  (extended) that saves the optimized model, then a sha256 of the source and of the artifact; goal <= 1.35.
  ``smoke_bare_s`` adds what Forge's smoke run does on top (load the artifact, one inference), for reference.

The figure is the ratio of medians. Each command runs once untimed first, and every process writes and reads
bytecode under one ``PYTHONPYCACHEPREFIX`` for the session (``PYTHONDONTWRITEBYTECODE`` is dropped): a user's
installed Forge has its ``.pyc`` files as the bare side's site-packages do, so neither side pays compiling sources.

    python bench/bench_startup.py [plugin|cli|build ...] [--rounds 15]   # updates bench/results/startup.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "startup.json"
GOAL = 1.10
CLI_GOALS = {"inferedgeforge --help": 1.5, "inferedgeforge list-presets": 2.0}
BUILD_GOAL = 1.35
MODEL = Path.home() / ".cache" / "inferedgeforge" / "zoo" / "models" / "yolov8n_320.onnx"
BARE_BUILD = """
import hashlib, sys
import onnxruntime as ort
source, artifact, smoke = sys.argv[1], sys.argv[2], sys.argv[3] == "smoke"
options = ort.SessionOptions()
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
options.optimized_model_filepath = artifact
ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
if smoke:
    import numpy as np
    session = ort.InferenceSession(artifact, providers=["CPUExecutionProvider"])
    session.run(None, {"images": np.random.default_rng(1234).random((1, 3, 320, 320), dtype=np.float32)})
for path in (source, artifact):
    with open(path, "rb") as handle:
        hashlib.file_digest(handle, "sha256")
"""


PYCACHE = tempfile.TemporaryDirectory(prefix="forge-bench-pycache-")
ENV = {**{key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"},
       "PYTHONPYCACHEPREFIX": PYCACHE.name}


def _time(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    return time.perf_counter() - started


def measure(args: list[str], cwd: Path, rounds: int) -> dict[str, float]:
    pytest = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    with_plugin, without = [], []
    for _ in range(rounds):
        with_plugin.append(_time([*pytest, *args], cwd))
        without.append(_time([*pytest, "-p", "no:inferedgeforge", *args], cwd))
    plugin_s, bare_s = statistics.median(with_plugin), statistics.median(without)
    return {"with_plugin_median_s": round(plugin_s, 4), "without_plugin_median_s": round(bare_s, 4),
            "ratio": round(plugin_s / bare_s, 3), "rounds": rounds}


def _pair(rounds: int, forge: Callable[[int], list[str]], bare: Callable[[int], list[str]], cwd: Path,
          goal: float) -> dict[str, Any]:
    """Medians of two commands run alternately in fresh processes; each callable gives round i's argv."""
    forge_s, bare_s = [], []
    for warm_up in (forge(-1), bare(-1)):  # untimed: bytecode written, files in the page cache
        _time(warm_up, cwd)
    for index in range(rounds):
        forge_s.append(_time(forge(index), cwd))
        bare_s.append(_time(bare(index), cwd))
    ratio = statistics.median(forge_s) / statistics.median(bare_s)
    return {"forge_median_s": round(statistics.median(forge_s), 4), "bare_median_s": round(statistics.median(bare_s), 4),
            "ratio": round(ratio, 3), "goal": goal, "met": ratio <= goal, "rounds": rounds}


def plugin(rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        project = Path(scratch)
        (project / "test_one.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
        results = {"pytest --help": measure(["--help"], project, rounds),
                   "one-test project": measure(["-q"], project, rounds)}
    for name, figures in results.items():
        figures.update(goal=GOAL, met=figures["ratio"] <= GOAL)
        print(f"{name:<18} plugin {figures['with_plugin_median_s']:.3f} s, without {figures['without_plugin_median_s']:.3f} s,"
              f" ratio {figures['ratio']:.3f} (goal <= {GOAL})")
    return results


def cli(rounds: int) -> dict[str, Any]:
    script = Path(sys.executable).parent / "inferedgeforge"  # the entry point a user runs, where installed
    forge = [str(script)] if script.is_file() else [sys.executable, "-m", "pytest_inferedgeforge.cli.main"]
    import_pytest = [sys.executable, "-c", "import pytest"]
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, args in (("inferedgeforge --help", ["--help"]), ("inferedgeforge list-presets", ["list-presets"])):
            results[name] = _pair(rounds, lambda _, a=args: [*forge, *a], lambda _: import_pytest, Path(scratch),
                                  CLI_GOALS[name])
            print(f"{name:<28} {results[name]['forge_median_s']:.3f} s vs import pytest "
                  f"{results[name]['bare_median_s']:.3f} s, ratio {results[name]['ratio']:.3f} (goal <= {CLI_GOALS[name]})")
    return results


def build(rounds: int) -> dict[str, Any]:
    if not MODEL.is_file():
        raise SystemExit(f"{MODEL} missing: run python tests/zoo/fetch_zoo.py first")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        forge = [sys.executable, "-m", "pytest_inferedgeforge.cli.main", "build", "--model", str(MODEL), "--preset",
                 "onnxruntime/cpu_fp32", "--input-shape", "images:1x3x320x320", "-q", "--output"]
        results = _pair(rounds, lambda i: [*forge, str(root / f"builds{i}")],
                        lambda i: [sys.executable, "-c", BARE_BUILD, str(MODEL), str(root / f"bare{i}.onnx"), "-"],
                        root, BUILD_GOAL)
        smoke = [_time([sys.executable, "-c", BARE_BUILD, str(MODEL), str(root / f"smoke{i}.onnx"), "smoke"], root)
                 for i in range(rounds)]
    results.update(model=MODEL.name, model_mb=round(MODEL.stat().st_size / 1e6, 1),
                   smoke_bare_s=round(statistics.median(smoke), 4),
                   ratio_to_smoke_bare=round(results["forge_median_s"] / statistics.median(smoke), 3))
    print(f"fresh build {results['forge_median_s']:.3f} s vs bare {results['bare_median_s']:.3f} s, ratio "
          f"{results['ratio']:.3f} (goal <= {BUILD_GOAL}); bare with smoke run {results['smoke_bare_s']:.3f} s")
    return results


SECTIONS = {"plugin": plugin, "cli": cli, "build": build}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sections", nargs="*", metavar="SECTION", help=f"any of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--rounds", type=int, default=15)
    options = parser.parse_args()
    options.sections = options.sections or list(SECTIONS)
    if unknown := set(options.sections) - set(SECTIONS):
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    report = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    if "results" in report:  # the file's shape when it held the plugin figures only
        report["plugin"] = {name: {**figures, "goal": GOAL, "met": figures["ratio"] <= GOAL}
                            for name, figures in report.pop("results").items()}
        report.pop("goal_ratio_at_most", None)
    report["machine"] = f"{platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}"
    for section in options.sections:
        report[section] = SECTIONS[section](options.rounds)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    figures = [report[section] for section in options.sections]
    verdicts = [entry["met"] for found in figures for entry in (found.values() if "met" not in found else [found])]
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
