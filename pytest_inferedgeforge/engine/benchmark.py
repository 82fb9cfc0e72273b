"""Latency measurement of a loaded artifact.

Inputs are prepared before the clock starts and cycled through, the clock is
``perf_counter_ns`` around the runner call and nothing else, and the runner's
thread settings are recorded with the figures. ``bench/`` shows the harness
agrees with a bare ``session.run`` loop.
"""

from __future__ import annotations

import time

import numpy as np

from pytest_inferedgeforge.backends.api import Runner
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.inputs import Sample
from pytest_inferedgeforge.model.records.run import LatencyStats


def measure(runner: Runner, samples: list[Sample], *, warmup: int, runs: int) -> list[float]:
    """Per-run latencies in milliseconds."""
    if not samples:
        raise ForgeError("benchmark needs at least one input sample")
    for index in range(warmup):
        runner.run(samples[index % len(samples)])
    latencies: list[float] = []
    clock = time.perf_counter_ns
    for index in range(runs):
        feeds = samples[index % len(samples)]
        start = clock()
        runner.run(feeds)
        latencies.append((clock() - start) / 1e6)
    return latencies


def summarize(latencies_ms: list[float]) -> LatencyStats:
    values = np.asarray(latencies_ms, dtype=np.float64)
    p50, p90, p95, p99 = np.percentile(values, [50, 90, 95, 99])
    mean = float(values.mean())
    return LatencyStats(
        mean_ms=round(mean, 6), p50_ms=round(float(p50), 6), p90_ms=round(float(p90), 6),
        p95_ms=round(float(p95), 6), p99_ms=round(float(p99), 6), min_ms=round(float(values.min()), 6),
        max_ms=round(float(values.max()), 6), std_ms=round(float(values.std()), 6),
        fps=round(1000.0 / mean, 4) if mean > 0 else 0.0,
    )
