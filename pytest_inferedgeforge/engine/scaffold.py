"""``inferedgeforge init``: a project a new user can run at once, written without touching anything that exists.

It writes an ``experiments/`` spec for the user's model (or for a copy of the
example model the package carries) over every built-in ONNX Runtime preset, the
pytest settings that point Forge at its builds root, and ``.gitignore`` lines
for what Forge writes. A file that exists is kept as it is and reported; running
it twice changes nothing.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from pytest_inferedgeforge.engine.presets import list_presets
from pytest_inferedgeforge.model.containment import safe_component
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.onnx_model import ModelInfo, inspect_model
from pytest_inferedgeforge.model.project import DEFAULT_OUTPUT, example_model
from pytest_inferedgeforge.model.yamlio import dump_document

DEFAULT_BACKEND = "onnxruntime"
IGNORED = (f"{DEFAULT_OUTPUT}/", "compare/", "forge-report.json", ".pytest_cache/")
PYTEST_CONFIG_FILES = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")
DEFAULT_SPATIAL = 224
"""The size init writes for a dynamic height or width of an image input (rank 4): the common classifier size."""


@dataclass
class Scaffold:
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _write_new(path: Path, text: str, result: Scaffold, root: Path) -> None:
    name = path.relative_to(root).as_posix()
    if path.exists():
        result.kept.append(name)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("x", encoding="utf-8") as handle:  # never overwrite, even if it appeared meanwhile
        handle.write(text)
    result.created.append(name)


def _model(root: Path, given: Path | None, result: Scaffold) -> Path:
    if given is not None:
        return given.resolve()
    target = root / "models" / example_model().name
    if target.exists():
        result.kept.append(target.relative_to(root).as_posix())
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(example_model(), target)
        result.created.append(target.relative_to(root).as_posix())
    return target


def concrete_shapes(info: ModelInfo) -> dict[str, list[int]]:
    """A shape for every input with a dynamic dim, so that the written spec builds at once: the model's own size
    where it fixes one, 1 for the batch (axis 0) and any other symbolic dim, and :data:`DEFAULT_SPATIAL` for the
    height and width of an image input (rank 4, channels first or last)."""
    shapes: dict[str, list[int]] = {}
    for tensor in info.inputs:
        if tensor.is_static:
            continue
        channels_last = len(tensor.dims) == 4 and tensor.dims[3] in (1, 3, 4) and tensor.dims[1] not in (1, 3, 4)
        spatial = ((1, 2) if channels_last else (2, 3)) if len(tensor.dims) == 4 else ()
        shapes[tensor.name] = [dim if isinstance(dim, int) and dim > 0 else DEFAULT_SPATIAL if axis in spatial else 1
                               for axis, dim in enumerate(tensor.dims)]
    return shapes


def _spec(name: str, model: Path, experiments: Path, result: Scaffold) -> str:
    presets = [entry.preset_id for entry in list_presets(None) if entry.preset is not None
               and entry.preset.backend == DEFAULT_BACKEND]
    inputs: dict[str, object] = {"seed": 0, "samples": 8}
    info = inspect_model(model)
    shapes = concrete_shapes(info)
    if shapes:
        inputs["shapes"] = shapes
        dims = {tensor.name: tensor.describe_dims() for tensor in info.inputs}
        result.notes.extend(f"input '{name}' has dynamic dims {dims[name]}: the spec fixes it to {shape} "
                            "(inputs.shapes); change it to the size you deploy" for name, shape in shapes.items())
    document = {"name": name, "description": f"{model.name} on every built-in ONNX Runtime preset.",
                "model": Path(os.path.relpath(model, experiments)).as_posix(), "presets": presets,
                "inputs": inputs, "benchmark": {"warmup": 5, "runs": 30}}
    return ("# Written by `inferedgeforge init`. Schema and every key: docs/experiments.md.\n"
            "# Run: pytest  (or pytest experiments/ -m onnxruntime). Builds go to builds/.\n"
            + dump_document(document))


def _pytest_config(root: Path, result: Scaffold) -> None:
    existing = [name for name in PYTEST_CONFIG_FILES if (root / name).is_file()]
    if existing == ["pytest.ini"] or (existing and existing[0] == "pytest.ini"):
        result.kept.append("pytest.ini")
        return
    if existing:
        result.notes.append(f"{existing[0]} exists and was left alone; Forge's defaults apply (builds root "
                            f"'{DEFAULT_OUTPUT}', presets: ./presets, then built-in); set forge_output there to change them")
        return
    _write_new(root / "pytest.ini", f"[pytest]\ntestpaths = experiments\nforge_output = {DEFAULT_OUTPUT}\n", result, root)


def _gitignore(root: Path, result: Scaffold) -> None:
    path = root / ".gitignore"
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    missing = [entry for entry in IGNORED if entry not in lines]
    if not missing:
        result.kept.append(".gitignore")
        return
    with path.open("a", encoding="utf-8") as handle:
        if lines and lines[-1] != "":
            handle.write("\n")
        handle.write("# InferEdgeForge\n" + "".join(f"{entry}\n" for entry in missing))
    result.created.append(".gitignore" if not lines else f".gitignore (+{', '.join(missing)})")


def init_project(root: Path, model: Path | None = None) -> Scaffold:
    """Scaffold ``root`` (created if needed); nothing that exists is overwritten."""
    if root.exists() and not root.is_dir():
        raise ForgeError(f"{root} exists and is not a directory")
    if model is not None and not model.is_file():
        raise ForgeError(f"model file not found: {model}")
    if model is not None:
        inspect_model(model)  # refuse a file that is not a usable ONNX model before writing anything
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    result = Scaffold()
    source = _model(root, model, result)
    name = safe_component(source.stem, "model").replace("_", "-")
    experiments = root / "experiments"
    _write_new(experiments / f"{safe_component(source.stem, 'model')}.forge.yaml", _spec(name, source, experiments, result),
               result, root)
    _pytest_config(root, result)
    _gitignore(root, result)
    return result
