"""Messages that suggest the fix: a typo in a preset id, a spec key, a CLI option or command, or a model stem is
answered with the closest correct spelling, and no user error shows a path inside the installed package."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from pytest_inferedgeforge.engine.presets import load_experiment, load_preset
from pytest_inferedgeforge.engine.scaffold import init_project
from pytest_inferedgeforge.model.errors import PresetError, SpecError
from pytest_inferedgeforge.model.project import builtin_presets_root

Cli = Callable[..., tuple[int, str, str]]


def test_preset_typo_suggests_the_closest_id() -> None:
    with pytest.raises(PresetError, match=r"did you mean 'onnxruntime/cpu_fp32'\?"):
        load_preset("onnxruntime/cpu_fp3", None)


def test_preset_not_found_names_no_path_inside_the_package() -> None:
    with pytest.raises(PresetError) as failure:
        load_preset("onnxruntime/cpu_fp3", None)
    assert str(builtin_presets_root()) not in str(failure.value) and "builtin_presets" not in str(failure.value)


def test_preset_far_from_every_id_gets_no_guess() -> None:
    with pytest.raises(PresetError) as failure:
        load_preset("onnxruntime/zzz", None)
    assert "did you mean" not in str(failure.value) and "`inferedgeforge presets` lists them" in str(failure.value)


def _spec_error(tmp_path: Path, document: dict[str, object]) -> str:
    (tmp_path / "m.onnx").write_bytes(b"")
    spec = tmp_path / "s.forge.yaml"
    spec.write_text(yaml.safe_dump({"model": "m.onnx", "presets": ["onnxruntime/cpu_fp32"], **document}))
    with pytest.raises(SpecError) as failure:
        load_experiment(spec, None)
    return str(failure.value)


def test_spec_key_typo_suggests_the_key(tmp_path: Path) -> None:
    message = _spec_error(tmp_path, {"benchmrk": {"runs": 3}})
    assert message.endswith("field 'benchmrk': unknown key (did you mean 'benchmark'?)")


def test_nested_spec_key_typo_suggests_a_key_of_that_section(tmp_path: Path) -> None:
    message = _spec_error(tmp_path, {"inputs": {"shape": {"x": [1]}}})
    assert message.endswith("field 'inputs.shape': unknown key (did you mean 'shapes'?)")


def test_cli_option_typo_suggests_the_option(cli: Cli) -> None:
    code, _, err = cli("list-builds", "--dir", "builds", "--jsn")
    assert code == 2 and "unrecognized arguments: --jsn (did you mean '--json'?)" in err


def test_cli_command_typo_suggests_the_command(cli: Cli) -> None:
    code, _, err = cli("list-build", "--dir", "builds")
    assert code == 2 and err.rstrip().endswith("(did you mean 'list-builds'?)")


def test_model_stem_selects_its_builds(workspace: Path, cli: Cli) -> None:
    code, _, err = cli("build", "--model", "models/tiny_cnn.onnx", "--output", "builds", "--preset", "onnxruntime/cpu_fp32")
    assert code == 0, err
    by_path = cli("list-builds", "--dir", "builds", "--model", "models/tiny_cnn.onnx", "--json")[1]
    assert cli("list-builds", "--dir", "builds", "--model", "tiny_cnn", "--json")[1] == by_path != "[]\n"


def test_model_stem_typo_suggests_the_stem(workspace: Path, cli: Cli) -> None:
    cli("build", "--model", "models/tiny_cnn.onnx", "--output", "builds", "--preset", "onnxruntime/cpu_fp32")
    code, _, err = cli("list-builds", "--dir", "builds", "--model", "tiny_cn")
    assert code == 1 and "no builds of model 'tiny_cn' (did you mean 'tiny_cnn'?)" in err


def test_init_on_a_dynamic_model_fixes_its_shape_and_says_so(tmp_path: Path, dynamic_model: Path) -> None:
    result = init_project(tmp_path / "project", dynamic_model)
    spec = yaml.safe_load((tmp_path / "project/experiments/exported_dynamic.forge.yaml").read_text())
    assert spec["inputs"]["shapes"] == {"pixel_values": [1, 3, 224, 224]}
    assert any("'pixel_values' has dynamic dims" in note and "[1, 3, 224, 224]" in note for note in result.notes)


def test_init_on_a_dynamic_model_gives_a_spec_whose_fp32_item_passes(pytester: pytest.Pytester, dynamic_model: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGE_TOOLCHAINS_DIR", str(pytester.path / "no-toolchains"))
    init_project(pytester.path, dynamic_model)
    result = pytester.runpytest("-k", "cpu_fp32", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
