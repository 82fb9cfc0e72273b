"""The item property keys that more than one plugin module writes or reads, named once.

An item's ``user_properties`` carry them to the summary table, the JSON report (reporting.py), JUnit XML and
pytest-html (html_report.py); the wire names are kept as they are, since reports and JUnit consumers read them.
Standard library only: the plugin modules that import nothing else at load can import it.
"""

from __future__ import annotations

KIND = "forge.kind"
"""``build`` (a spec or fixture item) or ``manifest`` (the gate); an item without it is no Forge item."""
EXPERIMENT = "forge.experiment"
SPEC = "forge.spec"
MODEL = "forge.model"
PRESET = "forge.preset"
BACKEND = "forge.backend"
TARGET = "forge.target"
PRECISION = "forge.precision"
ITEM_FIELDS = (KIND, EXPERIMENT, SPEC, PRESET, BACKEND, TARGET, PRECISION)
"""The properties the JSON report's item carries as its own fields."""

BUILD_DIR = "build_dir"
CACHE_HIT = "cache_hit"
BUILD_SOURCE = "build_source"
RUN_SUMMARY_PATH = "run_summary_path"
SPEED_VS_FP32 = "speed_vs_fp32"
P99_STATUS = "p99_status"
