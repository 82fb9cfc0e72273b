"""The build directory's layout: its name and the names of the files in it (docs/contract.md#build-directory).

``<output>/<stem>__<target>__<backend>__<preset suffix>/`` holds the artifact,
``metadata.json``, ``manifest.json``, ``build.log`` and, after runs,
``run_summary.json``, ``accuracy_evidence.json`` and ``results/``.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

METADATA_FILE = "metadata.json"
MANIFEST_FILE = "manifest.json"
LOG_FILE = "build.log"
RUN_SUMMARY_FILE = "run_summary.json"
ACCURACY_EVIDENCE_FILE = "accuracy_evidence.json"
RESULTS_DIR = "results"
REPRODUCIBILITY_FILE = "reproducibility.json"


def build_dir_suffix(preset_name: str) -> str:
    """The original's sanitised suffix: the preset name's last segment, unsafe characters as ``_``."""
    suffix = re.sub(r"[^A-Za-z0-9._-]+", "_", preset_name.rsplit("/", 1)[-1]).strip("_")
    return suffix or "preset"


def build_dir_name(model_path: Path, target: str, backend: str, preset_name: str) -> str:
    return f"{model_path.stem}__{target}__{backend}__{build_dir_suffix(preset_name)}"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def format_timestamp(moment: dt.datetime) -> str:
    """The original's timestamp style, ``2026-01-02T03:04:05Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
