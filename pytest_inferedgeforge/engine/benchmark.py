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


PROBE_SIZE = 16384
"""float32 elements per operand: three arrays of 64 KiB, resident in one core's cache."""
PROBE_ROUNDS = 20
"""Rounds of multiply, add and square root per timed repeat: about 0.2 ms, well inside a scheduler time slice."""
PROBE_REPEATS = 21
PROBE_WARMUP_S = 0.02
"""Spent on the same ufuncs untimed first, so the core's clock has left its idle state."""


def speed_probe() -> float:
    """Median milliseconds of a fixed single-threaded numpy workload: a control figure of how fast this host runs now.

    Elementwise ufuncs over cache-resident arrays run on the calling thread alone (numpy never threads them, and
    no BLAS is involved), so the figure follows one core's clock and cache, not the contention among a library's
    own threads: under two busy neighbours on a 2-core host a multi-threaded matrix product swung x140-250 where a
    small model swung x1.2-2.4 and this workload at most x1.3 (docs/experiments.md). Taken just before the artifact
    is loaded and again once it is closed (a runtime's spinning worker threads would compete with it), recorded in
    the run's host state, so a comparison with a baseline can tell an artifact that got slower from a host that did.
    """
    import numpy as np

    rng = np.random.default_rng(0)
    left, right = rng.random(PROBE_SIZE, dtype=np.float32), rng.random(PROBE_SIZE, dtype=np.float32)
    out = np.empty_like(left)

    def workload(rounds: int) -> None:
        for _ in range(rounds):
            np.multiply(left, right, out=out)
            np.add(out, left, out=out)
            np.sqrt(out, out=out)

    settle = time.perf_counter() + PROBE_WARMUP_S
    while time.perf_counter() < settle:
        workload(1)
    timings = []
    for _ in range(PROBE_REPEATS):
        start = time.perf_counter_ns()
        workload(PROBE_ROUNDS)
        timings.append((time.perf_counter_ns() - start) / 1e6)
    return round(float(np.median(timings)), 6)
