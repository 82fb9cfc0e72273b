"""Facts about the machine and the Forge install, recorded with every build and run."""

from __future__ import annotations

import functools
import json
import os
import platform
import socket
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.model.version import DISTRIBUTION, __version__

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def _git(directory: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=5,
                                check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _is_forge_checkout(root: Path) -> bool:
    """``root`` is this project's source tree: its pyproject names Forge's distribution and git says it is the
    top of a work tree (not a site-packages inside some other repository)."""
    try:
        project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8")).get("project", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    top = _git(root, "rev-parse", "--show-toplevel")
    return project.get("name") == DISTRIBUTION and top is not None and Path(top).resolve() == root


@functools.cache
def forge_git_commit() -> str | None:
    """The commit of the Forge checkout this package runs from, or None when it is installed (a package inside
    another project's repository must not record that repository's HEAD)."""
    root = PACKAGE_DIR.parent
    if not _is_forge_checkout(root):
        return None
    commit = _git(root, "rev-parse", "HEAD")
    return commit if commit and len(commit) == 40 else None


@functools.cache
def forge_install() -> dict[str, Any]:
    """How this Forge was installed: the distribution's version and, from PEP 610 ``direct_url.json``, the URL
    and VCS commit it was installed from (absent for an install from an index)."""
    facts: dict[str, Any] = {"distribution": DISTRIBUTION, "version": __version__}
    try:
        direct = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        direct = None
    try:
        data = json.loads(direct) if direct else {}
    except json.JSONDecodeError:
        data = {}
    if isinstance(data, dict) and data.get("url"):
        facts["url"] = str(data["url"])
        vcs: dict[str, Any] = data["vcs_info"] if isinstance(data.get("vcs_info"), dict) else {}
        if vcs.get("commit_id"):
            facts["vcs_commit"] = str(vcs["commit_id"])
        if isinstance(data.get("dir_info"), dict) and data["dir_info"].get("editable"):
            facts["editable"] = True
    return facts


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


def tool_facts(presets_root: str | None) -> dict[str, Any]:
    """The ``tool`` section of a manifest (``presets_root`` as the records state it)."""
    return {
        "inferedgeforge_version": __version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": socket.gethostname(),
        "forge_git_commit": forge_git_commit(),
        "forge_install": forge_install(),
        "presets_root": presets_root,
    }
