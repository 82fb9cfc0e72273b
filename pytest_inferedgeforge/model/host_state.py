"""The state of the host while a benchmark ran: what makes two latency figures comparable or not.

Read from ``/proc`` and ``/sys`` where the OS has them; a fact that cannot be
read is absent, never guessed. On a Jetson, ``nvpmodel -q`` names the power
mode (clocks decide Jetson latencies more than anything else).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "ORT_NUM_THREADS",
                    "CUDA_VISIBLE_DEVICES")
CPUFREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq")
NVPMODEL_TIMEOUT_S = 5
# CPU features that decide how int8 matrix products are computed: without a dot-product
# instruction (VNNI on x86, dotprod on Arm) ONNX Runtime's u8s8 kernels can saturate, so the
# same int8 artifact can be more or less accurate on another runner.
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip() or None
    except OSError:
        return None


def cpu_model() -> str | None:
    text = _read(Path("/proc/cpuinfo")) or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware"):
            return value.strip()
    return None


def int8_dot_instructions() -> list[str] | None:
    """The int8 dot-product instructions this CPU offers ([] when none), None when unknown."""
    text = _read(Path("/proc/cpuinfo"))
    if text is None:
        return None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return [flag for flag in INT8_DOT_FLAGS if flag in flags]


def _cpufreq() -> dict[str, Any]:
    facts: dict[str, Any] = {}
    governor = _read(CPUFREQ / "scaling_governor")
    if governor:
        facts["cpu_governor"] = governor
    for name, key in (("scaling_cur_freq", "cpu0_freq_khz"), ("scaling_max_freq", "cpu0_max_freq_khz")):
        value = _read(CPUFREQ / name)
        if value and value.isdigit():
            facts[key] = int(value)
    return facts


def _nvpmodel() -> str | None:
    binary = shutil.which("nvpmodel")
    if binary is None:
        return None
    try:
        done = subprocess.run([binary, "-q"], capture_output=True, text=True, timeout=NVPMODEL_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return " ".join(done.stdout.split()) or None if done.returncode == 0 else None


def host_state() -> dict[str, Any]:
    """CPU model and its int8 dot-product instructions, governor/frequency, load average, usable CPUs,
    thread variables; Jetson power mode if any."""
    state: dict[str, Any] = {"cpu_model": cpu_model(), "cpu_count_logical": os.cpu_count(),
                             "int8_dot_instructions": int8_dot_instructions()}
    if hasattr(os, "sched_getaffinity"):
        state["cpus_usable"] = len(os.sched_getaffinity(0))
    if hasattr(os, "getloadavg"):
        state["load_average"] = [round(value, 2) for value in os.getloadavg()]
    state.update(_cpufreq())
    state["thread_env"] = {name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ}
    power = _nvpmodel()
    if power:
        state["nvpmodel"] = power
    return {key: value for key, value in state.items() if value is not None}
