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


class ForgeCheckFailed(Exception):
    """A failed Forge step or invariant; shown as its message alone, without a traceback."""


class CleanFailureItem(pytest.Item):
    """An item whose Forge failures (a failed check, a ForgeError) show as their message alone."""

    def repr_failure(self, excinfo: ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:
        if isinstance(excinfo.value, ForgeCheckFailed | ForgeError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)
