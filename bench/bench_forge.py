"""Forge against the raw toolchain, as ratios. Run by hand; never part of the test suite.

    python bench/bench_forge.py [--runs 300] [--rounds 5]

1. Benchmark harness overhead: Forge's ``measure()`` with the ONNX Runtime
   runner vs a bare ``session.run`` loop on the same model, inputs and thread
   settings, interleaved over several rounds. Target: means within 5 %.
2. Build overhead: a fresh ``inferedgeforge build`` (hashing, smoke run,
   records, atomic publish) vs the bare ONNX Runtime call that makes the same
   artifact, each in its own process: wall time and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from pytest_inferedgeforge.backends.onnxruntime import OrtRunner
from pytest_inferedgeforge.engine.benchmark import measure

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "models" / "tiny_cnn.onnx"

RAW_BUILD = """
import onnxruntime as ort, resource, sys, time
start = time.perf_counter()
options = ort.SessionOptions()
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
options.optimized_model_filepath = sys.argv[2]
ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
FORGE_BUILD = """
import resource, sys, time
from pathlib import Path
from pytest_inferedgeforge.engine.build import build
from pytest_inferedgeforge.engine.plan import plan_build
from pytest_inferedgeforge.engine.presets import load_preset
start = time.perf_counter()
preset = load_preset("onnxruntime/cpu_fp32", Path(sys.argv[3]))
build(plan_build(Path(sys.argv[1]), preset, Path(sys.argv[2])), force=True)
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def bare_loop(session: ort.InferenceSession, feeds: dict, runs: int) -> list[float]:
    latencies = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        session.run(None, feeds)
        latencies.append((time.perf_counter_ns() - start) / 1e6)
    return latencies


def harness_overhead(runs: int, rounds: int) -> dict:
    feeds = {"input": np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)}
    runner = OrtRunner(MODEL, threads=1)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(MODEL), options, providers=["CPUExecutionProvider"])
    bare_loop(session, feeds, 20)
    measure(runner, [feeds], warmup=20, runs=1)
    bare_means, forge_means = [], []
    for _ in range(rounds):
        bare_means.append(statistics.fmean(bare_loop(session, feeds, runs)))
        forge_means.append(statistics.fmean(measure(runner, [feeds], warmup=0, runs=runs)))
    bare, forge = statistics.median(bare_means), statistics.median(forge_means)
    return {"bare_mean_ms": round(bare, 4), "forge_mean_ms": round(forge, 4), "ratio": round(forge / bare, 4)}


def _run(script: str, *args: str) -> tuple[float, int]:
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True).stdout
    seconds, rss = out.split()
    return float(seconds), int(rss)


def build_overhead(rounds: int) -> dict:
    raw, forge = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(rounds):
            raw.append(_run(RAW_BUILD, str(MODEL), f"{scratch}/raw{index}.onnx"))
            forge.append(_run(FORGE_BUILD, str(MODEL), f"{scratch}/builds", str(REPO / "presets")))
    raw_s, forge_s = statistics.median(r[0] for r in raw), statistics.median(f[0] for f in forge)
    raw_kb, forge_kb = max(r[1] for r in raw), max(f[1] for f in forge)
    return {"raw_build_s": round(raw_s, 4), "forge_build_s": round(forge_s, 4), "time_ratio": round(forge_s / raw_s, 3),
            "raw_peak_rss_mb": round(raw_kb / 1024, 1), "forge_peak_rss_mb": round(forge_kb / 1024, 1),
            "rss_ratio": round(forge_kb / raw_kb, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps({"harness": harness_overhead(args.runs, args.rounds), "build": build_overhead(args.rounds)},
                     indent=2))


if __name__ == "__main__":
    main()
