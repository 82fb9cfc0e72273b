"""How a Forge item's outcome reads outside Forge's own table: JUnit properties and skip reasons.

- A rerun (pytest-rerunfailures ``--reruns``) runs the same item again, and pytest keeps its ``user_properties``
  list, so every property Forge recorded would be written twice into the JUnit testcase. Each run of a Forge item
  starts from the properties it had when collected.
- A skip's location is where ``pytest.skip`` was called, a line inside Forge that tells a user nothing; it points
  at the item (the spec) instead. pytest-html prints a skip as the text of its report, which for a skip is a
  ``(path, line, reason)`` tuple: a Forge item's skip reads as its reason.

Only the standard library and pytest are imported here: the plugin registers :class:`ForgeOutcomes` in every
session.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

from pytest_inferedgeforge.plugin.properties import KIND

_COLLECTED = pytest.StashKey[list[tuple[str, object]]]()
"""The item's properties before its first run (those its collector gave it)."""


class SkipReason(tuple[str, int | None, str]):
    """pytest's ``(path, line, reason)`` skip tuple (the ``-rs`` summary reads it by index) whose text is the
    reason alone, for any report that prints ``str(report.longrepr)``."""

    def __str__(self) -> str:
        return self[2].removeprefix("Skipped: ")


def _is_forge(properties: list[tuple[str, object]]) -> bool:
    return any(name == KIND for name, _ in properties)


class ForgeOutcomes:
    """Registered once per session by the plugin."""

    def __init__(self, config: pytest.Config) -> None:
        self.is_worker = hasattr(config, "workerinput")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if _COLLECTED not in item.stash:
            item.stash[_COLLECTED] = list(item.user_properties)
        elif _is_forge(item.user_properties):  # a rerun: the last run's properties go, this run records its own
            collected = item.stash[_COLLECTED]
            item.user_properties[:] = collected

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]
                                  ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.skipped and isinstance(report.longrepr, tuple) and _is_forge(item.user_properties):
            path, line, _ = item.reportinfo()
            # a spec item has no line: pytest's skip summary prints the file alone for None, as typing does not say
            location = (os.fspath(path), None if line is None else line + 1, report.longrepr[2])
            report.longrepr = location  # type: ignore[assignment]
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Before any other reporter reads it; not on an xdist worker, whose reports travel as plain tuples (the
        controller runs this hook again on what arrives)."""
        if not self.is_worker and report.skipped and isinstance(report.longrepr, tuple) \
                and not isinstance(report.longrepr, SkipReason) and _is_forge(list(report.user_properties)):
            report.longrepr = SkipReason(report.longrepr)  # type: ignore[assignment]  # its line may be None
