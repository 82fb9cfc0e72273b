"""Facts about the machine and the Forge install, recorded with every build and run."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.model.version import __version__


@functools.cache
def forge_git_commit() -> str | None:
    """The git commit of the Forge source tree, when Forge runs from a checkout."""
    package_dir = Path(__file__).resolve().parent.parent
    try:
        result = subprocess.run(
            ["git", "-C", str(package_dir), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and len(commit) == 40 else None


def host_facts() -> dict[str, Any]:
    return {
        "os": platform.system(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count_logical": os.cpu_count(),
        "hostname": socket.gethostname(),
    }


def tool_facts(presets_root: Path | None) -> dict[str, Any]:
    """The ``tool`` section of a manifest."""
    return {
        "inferedgeforge_version": __version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": socket.gethostname(),
        "forge_git_commit": forge_git_commit(),
        "presets_root": str(presets_root.resolve()) if presets_root else None,
    }
