"""Latency measurement of a loaded artifact.

Inputs are prepared before the clock starts and cycled through, the clock is
``perf_counter_ns`` around the runner call and nothing else, and the runner's
thread settings are recorded with the figures. Warm-up latencies are kept
apart from the timed ones. A run is either a count (``runs``) or a time budget
(``min_duration_s`` with at least ``min_runs``), like trtexec's ``--duration``.
``bench/`` shows the harness agrees with a bare ``session.run`` loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pytest_inferedgeforge.backends.api import Runner
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.inputs import Sample


@dataclass
class Measurement:
    latencies_ms: list[float]
    warmup_ms: list[float]
    duration_s: float
    """Wall time of the timed runs, clock reads included."""


def measure(runner: Runner, samples: list[Sample], *, warmup: int, runs: int, min_duration_s: float | None = None,
            min_runs: int = 1) -> Measurement:
    """Per-run latencies in milliseconds: ``runs`` of them, or as many as ``min_duration_s`` takes (≥ ``min_runs``)."""
    if not samples:
        raise ForgeError("benchmark needs at least one input sample")
    clock = time.perf_counter_ns
    warmup_ms: list[float] = []
    for index in range(warmup):
        start = clock()
        runner.run(samples[index % len(samples)])
        warmup_ms.append((clock() - start) / 1e6)
    latencies: list[float] = []
    deadline = None if min_duration_s is None else clock() + int(min_duration_s * 1e9)
    wanted = runs if deadline is None else min_runs
    began = clock()
    index = 0
    while index < wanted or (deadline is not None and clock() < deadline):
        feeds = samples[index % len(samples)]
        start = clock()
        runner.run(feeds)
        latencies.append((clock() - start) / 1e6)
        index += 1
    return Measurement(latencies, warmup_ms, (clock() - began) / 1e9)


PROBE_SIZE = 384
PROBE_REPEATS = 21
PROBE_WARMUP_S = 0.05
"""Spent on untimed products first: BLAS threads and the CPU clock take that long to settle."""


def speed_probe() -> float:
    """Median milliseconds of a fixed float32 matrix product: a control figure of how fast this host runs now.

    Taken before the artifact is loaded (a runtime's spinning worker threads would compete with it), after a
    short untimed burst, and recorded in the run's host state, so a comparison with a baseline can tell an
    artifact that got slower from a host that did (a busy neighbour, a lower clock).
    """
    import numpy as np

    matrix = np.random.default_rng(0).random((PROBE_SIZE, PROBE_SIZE), dtype=np.float32)
    settle = time.perf_counter() + PROBE_WARMUP_S
    while time.perf_counter() < settle:
        matrix @ matrix
    timings = []
    for _ in range(PROBE_REPEATS):
        start = time.perf_counter_ns()
        matrix @ matrix
        timings.append((time.perf_counter_ns() - start) / 1e6)
    return round(float(np.median(timings)), 6)
