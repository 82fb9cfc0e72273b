"""Forge's own pytest hooks: how a lab extends Forge from its ``conftest.py`` without patching it.

Registered through ``pytest_addhooks`` (plugin/__init__.py). Every hook is called
from the plugin layer only; the engine stays free of pytest and receives what a
hook decided as plain data. Item hooks are called through ``item.ihook``, so a
``conftest.py`` applies to the specs and tests beneath its directory, as pytest's
own hooks do. docs/hooks.md shows a conftest implementing every one of them.

Like every pytest module the plugin loads, this one imports only the standard
library and pytest at load; the types it names are imported for type checkers only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_inferedgeforge.engine.build import VerifiedBuild
    from pytest_inferedgeforge.engine.runs import RunOutcome
    from pytest_inferedgeforge.model.presets import Preset
    from pytest_inferedgeforge.model.spec import Experiment


@pytest.hookspec
def pytest_forge_update_host_state(config: pytest.Config, host_state: dict[str, Any]) -> None:
    """Add facts to the host state recorded with each run (``run_summary.json``'s ``host_state``).

    Called once per run, just before the run starts, with an empty dict to fill in place: a rack id, a
    board serial, a room temperature. Each implementation adds its keys; values must be JSON
    (str, number, bool, None, lists and mappings of them), else the item fails naming the key. The
    facts are recorded beside Forge's own, signed with the run record when runs are signed; on a
    clash Forge's own measured fact wins (a hook adds facts, it cannot rewrite the CPU model or the
    speed probe).
    """


@pytest.hookspec
def pytest_forge_build_finished(item: pytest.Item, build: VerifiedBuild) -> None:
    """After ``item``'s build is ready and passed Forge's own invariants: built here, reused from the output root
    or pulled from the shared cache (``build.source``: built, local, remote; ``build.cached``).

    ``build`` is the :class:`~pytest_inferedgeforge.engine.build.VerifiedBuild`: its ``record`` (paths,
    manifest, metadata) and the verification ``report`` it passed. Called before the site invariants of
    :func:`pytest_forge_invariants`, once per build (a test building several presets through the
    ``forge_build`` fixture gets one call each). Observe, log or upload; the build directory is
    read-only to the hook: changing a file breaks its record.
    """


@pytest.hookspec
def pytest_forge_invariants(item: pytest.Item, build: VerifiedBuild) -> list[str] | None:
    """Extra checks of a ready build: site rules on top of Forge's own invariants.

    Called after :func:`pytest_forge_build_finished`, before the item benchmarks the build. Return a list of
    violations, one message each (a lone string counts as one); every implementation is asked and their lists are
    joined. Each non-empty string fails the item with that message (one line per violation, no traceback);
    empty strings, an empty list or None mean the rule holds. The build stays published and cached: a site rule
    judges the item, not the record.
    """


@pytest.hookspec
def pytest_forge_run_finished(item: pytest.Item, run: RunOutcome) -> None:
    """After ``item``'s run is recorded: the run directory is published (and signed when a key is given).

    ``run`` is the engine's :class:`~pytest_inferedgeforge.engine.runs.RunOutcome`: the ``summary``
    (status, latency statistics, ``host_state``), ``summary_path``, ``parity`` and the paths of the
    structured result and accuracy evidence. Called for a failed run too (``run.completed`` is
    False), before Forge judges parity, the baseline and the speed verdict. Items that skip the
    benchmark (``--forge-no-benchmark``) record no run and get no call.
    """


@pytest.hookspec
def pytest_forge_update_report(config: pytest.Config, report: dict[str, Any]) -> None:
    """Change the ``--forge-report`` JSON in place before it is written (once per session, on the controller
    under pytest-xdist).

    ``report`` is the JSON form of the report (docs/schemas, ``inferedgeforge-report-v1``). Add keys
    (a top-level key named after your site, entries in ``environment`` or an item's ``properties``)
    or change values; afterwards the report is validated again against its model, so Forge's own
    keys keep their types. A report that no longer validates is not written and the session ends
    with a usage error naming this hook.
    """


@pytest.hookspec(firstresult=True)
def pytest_forge_select_presets(config: pytest.Config, experiment: Experiment,
                                presets: list[Preset]) -> list[Preset] | None:
    """Choose which of a spec's presets become items on this runner, when its spec file is collected.

    ``presets`` are the spec's loaded presets in spec order (each with ``backend``, ``target``,
    ``precision`` and ``name``, the id ``backend/name``). Return the presets to collect, drawn from
    ``presets``, or None to keep them all; the first implementation that returns a list decides.
    Dropped presets are not collected at all (unlike ``-m``, which deselects). A preset that failed
    to load is not offered: it still fails as its own item.
    """
