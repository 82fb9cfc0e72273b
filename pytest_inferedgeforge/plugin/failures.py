"""The plugin's failure types, shared by the build items (items.py), the baseline check (baseline.py) and the
check-only gate (gate.py).

They live apart so that the gate, which only reads records, does not load the build engine through items.py, and
baseline.py needs no function-level import of items.py to raise them (the two would import each other).
"""

from __future__ import annotations

from typing import Any

import pytest
from _pytest._code.code import ExceptionInfo, TerminalRepr

from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.plugin.settings import SETTINGS_KEY


class ForgeCheckFailed(Exception):
    """A failed Forge step or invariant; shown as its message alone, without a traceback."""


class CleanFailureItem(pytest.Item):
    """An item whose Forge failures (a failed check, a ForgeError) show as their message alone; with
    ``--forge-debug`` (ini ``forge_debug``) the message is followed by Forge's traceback, as tavern offers."""

    def repr_failure(self, excinfo: ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:
        if isinstance(excinfo.value, ForgeCheckFailed | ForgeError):
            settings = self.config.stash.get(SETTINGS_KEY, None)
            if settings is None or not settings.debug:
                return str(excinfo.value)
            forge_frames = excinfo.traceback.filter(lambda entry: "pytest_inferedgeforge" in str(entry.path))
            excinfo.traceback = forge_frames or excinfo.traceback  # Forge's frames, not pytest's own
            trace = excinfo.getrepr(style="long", funcargs=False, chain=True)
            return f"{excinfo.value}\n\nForge's traceback (--forge-debug):\n{trace}"
        return super().repr_failure(excinfo, style)
