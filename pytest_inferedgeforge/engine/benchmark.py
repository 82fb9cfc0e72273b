"""Latency measurement of a loaded artifact.

Inputs are prepared before the clock starts and cycled through, the clock is
``perf_counter_ns`` around the runner call and nothing else, and the runner's
thread settings are recorded with the figures. ``bench/`` shows the harness
agrees with a bare ``session.run`` loop.
"""

from __future__ import annotations

import time

from pytest_inferedgeforge.backends.api import Runner
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.inputs import Sample


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
