"""Isolated toolchain environments.

rknn-toolkit2 pins old numpy, onnx, protobuf and torch, so it cannot share
Forge's environment. It lives in its own venv, driven through a worker script
(JSON over stdin/stdout). ``inferedgeforge toolchain install rknn`` makes it.

Location: ``$FORGE_RKNN_ENV``, else ``$FORGE_TOOLCHAINS_DIR/rknn``, else
``<user cache dir>/inferedgeforge/toolchains/rknn``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import venv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import platformdirs

from pytest_inferedgeforge.backends.api import ForgeError

RKNN_REQUIREMENT = "rknn-toolkit2==2.5.0"
MARKER = "forge-toolchain.json"
WORKER_SCRIPT = Path(__file__).resolve().parent / "worker.py"


def toolchains_dir() -> Path:
    override = os.environ.get("FORGE_TOOLCHAINS_DIR")
    return Path(override) if override else Path(platformdirs.user_cache_dir("inferedgeforge")) / "toolchains"


def rknn_env_dir() -> Path:
    override = os.environ.get("FORGE_RKNN_ENV")
    return Path(override) if override else toolchains_dir() / "rknn"


def env_python(env_dir: Path) -> Path:
    return env_dir / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def rknn_install_hint() -> str:
    return "run `inferedgeforge toolchain install rknn` to create it"


def read_marker(env_dir: Path) -> dict[str, Any] | None:
    """What the last successful install recorded, or None when the env is absent or unfinished."""
    marker = env_dir / MARKER
    if not marker.is_file() or not env_python(env_dir).exists():
        return None
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def ask_worker(python: Path, request: dict[str, Any], *, timeout_s: float, cwd: Path | None = None) -> dict[str, Any]:
    """Run one worker request; the worker's reply is its last stdout line."""
    try:
        result = subprocess.run([str(python), "-P", str(WORKER_SCRIPT)], input=json.dumps(request), text=True,
                                capture_output=True, timeout=timeout_s, cwd=cwd, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ForgeError(f"rknn worker timed out after {timeout_s:.0f}s on '{request.get('op')}'") from exc
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    try:
        reply = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        reply = None
    if not isinstance(reply, dict):
        tail = " | ".join(result.stderr.strip().splitlines()[-5:])
        raise ForgeError(f"rknn worker gave no reply (exit {result.returncode}): {tail}")
    reply["_stderr"] = result.stderr
    return reply


def install_rknn(progress: Callable[[str], None]) -> dict[str, Any]:
    env_dir = rknn_env_dir()
    started = time.perf_counter()
    if not env_python(env_dir).exists():
        progress(f"creating venv {env_dir}")
        venv.EnvBuilder(with_pip=True, clear=False).create(env_dir)
    progress(f"pip install {RKNN_REQUIREMENT} (about 5.6 GB with torch; minutes)")
    process = subprocess.Popen([str(env_python(env_dir)), "-m", "pip", "install", "--disable-pip-version-check",
                                "--progress-bar", "off", RKNN_REQUIREMENT],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    tail: list[str] = []
    for line in process.stdout:
        line = line.strip()
        if line and not line.startswith("WARNING: Location"):
            tail = [*tail[-4:], line]
            progress(f"pip: {line[:100]}")
    if process.wait() != 0:
        raise ForgeError(f"pip install {RKNN_REQUIREMENT} failed in {env_dir}: {' | '.join(tail)}")
    progress("checking the toolkit imports")
    reply = ask_worker(env_python(env_dir), {"op": "version"}, timeout_s=600)
    if not reply.get("ok"):
        raise ForgeError(f"rknn-toolkit2 installed but does not import: {reply.get('error')}")
    marker = {"requirement": RKNN_REQUIREMENT, "versions": reply["versions"], "python": str(env_python(env_dir)),
              "install_seconds": round(time.perf_counter() - started, 1)}
    (env_dir / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
    return marker
