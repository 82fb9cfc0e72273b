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
