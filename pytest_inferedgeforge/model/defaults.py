"""The defaults a command line shows in its help, in a module that imports nothing.

``inferedgeforge --help`` and every command's own help print these numbers and choices; keeping them apart
from the pydantic models, numpy and onnx that use them lets the CLI build its parser without loading any of
those (docs/performance.md, start-up). model/spec.py, model/stats.py, handoff/lab_run.py and handoff/agent.py
import them from here, so each value still has one home.
"""

from __future__ import annotations

DEFAULT_WARMUP = 5
DEFAULT_RUNS = 30
DEFAULT_SEED = 1234
"""Seed of synthetic run inputs; the smoke run's input is the first of them."""
DEFAULT_SAMPLES = 8
"""The one home of run defaults: specs, ``run-benchmark`` options and the engine's RunSettings use these."""
DEFAULT_MAX_TRIALS = 16
"""Trials of an int8 search (``tune``, ``quantization.search``) when none is given."""
DEFAULT_THRESHOLD_DB = 14.0
"""Below 14 dB SQNR the quantization noise is more than ~4 % of the signal's power: the usual line where int8
tensors stop carrying their float counterpart's information (``diagnose``, its record, the search)."""
DEFAULT_DIAGNOSIS_SAMPLES = 8
"""Inputs ``diagnose`` compares the source model and the artifact on when none are given."""
DEFAULT_MAX_CV = 0.05
"""A CPU benchmark whose coefficient of variation is above 5 % is flagged unstable (trtexec warns above 1 %)."""
LAB_TIMEOUT_S = 1800
"""Seconds before ``run-benchmark --via lab`` stops InferEdgeLab."""
TELEMETRY_VERSION = "inferedge-agent-telemetry-v1"
AGENT_TYPES = ("vision", "voice", "safety", "utility")
FALLBACK_MODES = ("none", "drop_stale", "degrade_backend", "skip_low_priority", "notify_only")
