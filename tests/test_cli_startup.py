"""The CLI starts fast: its parser loads no engine, and commands that only read records never load onnx or
onnxruntime (issue 26; docs/performance.md, start-up). Each command runs in a fresh interpreter, as a user runs
it, and reports which modules it loaded."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_inferedgeforge.cli.main import COMMAND_GROUPS, build_parser

REPO = Path(__file__).resolve().parent.parent
TOOLCHAIN = ("onnx", "onnxruntime")
WATCHED = (*TOOLCHAIN, "numpy", "pydantic", "jsonschema", "pytest_inferedgeforge.engine")
WRAPPER = f"""
import json, sys
from pytest_inferedgeforge.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({{"code": code, "loaded": [name for name in {WATCHED!r} if name in sys.modules]}}), file=sys.stderr)
"""


def run_cli(cwd: Path, *args: str) -> tuple[int, list[str]]:
    """Run ``inferedgeforge args`` in a fresh interpreter; its exit code and which watched modules it loaded."""
    done = subprocess.run([sys.executable, "-c", WRAPPER, *args], cwd=cwd, capture_output=True, text=True, check=False)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], report["loaded"]


def _loaded_toolchain(loaded: list[str]) -> list[str]:
    return [name for name in loaded if name in TOOLCHAIN]


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real fp32 build of the example model, made by the CLI itself, for the commands that read records."""
    root = tmp_path_factory.mktemp("startup") / "builds"
    subprocess.run([sys.executable, "-m", "pytest_inferedgeforge.cli.main", "build", "--model",
                    str(REPO / "models" / "tiny_cnn.onnx"), "--preset", "onnxruntime/cpu_fp32", "--output", str(root),
                    "-q"], check=True, capture_output=True)
    return root


def test_help_loads_neither_engine_nor_toolchain_nor_numpy(tmp_path: Path) -> None:
    code, loaded = run_cli(tmp_path, "--help")
    assert code == 0
    assert loaded == []


def test_list_presets_never_loads_the_toolchain(tmp_path: Path) -> None:
    code, loaded = run_cli(tmp_path, "list-presets")
    assert code == 0
    assert _loaded_toolchain(loaded) == []


def test_list_presets_loads_no_numpy(tmp_path: Path) -> None:
    """The backend catalog it checks presets against comes from the backend classes, whose numpy-backed API
    names load on first use (backends/api.py)."""
    code, loaded = run_cli(tmp_path, "list-presets")
    assert code == 0
    assert "numpy" not in loaded


def test_show_preset_never_loads_the_toolchain(tmp_path: Path) -> None:
    code, loaded = run_cli(tmp_path, "show-preset", "onnxruntime/cpu_fp32")
    assert code == 0
    assert _loaded_toolchain(loaded) == []


def test_schema_never_loads_the_toolchain(tmp_path: Path) -> None:
    code, loaded = run_cli(tmp_path, "schema")
    assert code == 0
    assert _loaded_toolchain(loaded) == []


def test_verify_of_a_real_build_never_loads_the_toolchain(builds: Path) -> None:
    code, loaded = run_cli(builds, "verify", str(builds / "tiny_cnn__cpu__onnxruntime__cpu_fp32"))
    assert code == 0
    assert _loaded_toolchain(loaded) == []


def test_list_builds_never_loads_the_toolchain(builds: Path) -> None:
    code, loaded = run_cli(builds, "list-builds", "--dir", str(builds))
    assert code == 0
    assert _loaded_toolchain(loaded) == []


def test_history_never_loads_the_toolchain(builds: Path) -> None:
    code, loaded = run_cli(builds, "history", "--dir", str(builds))
    assert code == 0
    assert _loaded_toolchain(loaded) == []


@pytest.mark.parametrize("group", list(COMMAND_GROUPS))
def test_command_groups_name_exactly_what_each_module_registers(group: str) -> None:
    """main.py registers a group by the commands it lists for it; a command added to a module must be listed."""
    sub = argparse.ArgumentParser().add_subparsers()
    importlib.import_module(f"pytest_inferedgeforge.cli.{group}").register(sub)
    assert tuple(sub.choices) == COMMAND_GROUPS[group]


def test_a_named_command_registers_only_its_group() -> None:
    (commands,) = [action.choices for action in build_parser("show-preset")._actions
                   if isinstance(action, argparse._SubParsersAction)]
    assert tuple(commands) == COMMAND_GROUPS["presets"]


def test_an_unknown_command_is_refused_with_every_command_listed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser("biuld").parse_args(["biuld"])
    assert exited.value.code == 2
    assert "invalid choice: 'biuld'" in capsys.readouterr().err
    listed = build_parser("biuld").format_help()
    assert all(command in listed for commands in COMMAND_GROUPS.values() for command in commands)
