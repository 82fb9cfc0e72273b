"""``merge-reports`` on hostile or huge reports: linear in its input, every runner kept, paths and counts checked.

The reports are written here, not by pytest runs: each test shapes exactly the report an attacker (or a very big
fleet) would hand the merge.
"""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

EXPERIMENT = "tiny"
SETTINGS = {"via": "native", "warmup": 1, "amount": "3 runs", "threads": None}
CAVEATS = ["p99: insufficient (3 of 662 samples needed)"]


def _result(root: Path, preset: str) -> Path:
    return root / f"tiny_cnn__{preset.replace('/', '__')}" / "runs" / "r1" / "structured_result.json"


def _report(path: Path, host: str, root: Path, presets: dict[str, str], *, make_files: bool = True,
            results: dict[str, str] | None = None, summary: dict[str, Any] | None = None) -> Path:
    """A runner's report: ``presets`` (preset -> precision) ready in one experiment, their results under ``root``
    (created there unless ``make_files`` is false: the runner's files are not visible to the merge)."""
    paths = results or {preset: str(_result(root, preset)) for preset in presets}
    if make_files:
        for preset in presets:
            _result(root, preset).parent.mkdir(parents=True, exist_ok=True)
            _result(root, preset).write_text("{}")
    items = [{"nodeid": f"tiny.forge.yaml::tiny[{preset}]", "kind": "build", "experiment": EXPERIMENT,
              "preset": preset, "precision": precision, "outcome": "passed", "duration_s": 0.5, "host": host,
              "measured_on": "device", "properties": {}} for preset, precision in presets.items()]
    handoff = {"experiment": EXPERIMENT, "model": "models/tiny_cnn.onnx", "ready": sorted(presets), "results": paths,
               "settings": {preset: SETTINGS for preset in presets}, "caveats": {preset: CAVEATS for preset in presets},
               "not_ready": {}, "pairs": []}
    path.write_text(json.dumps({"created_at": "2025-01-01T00:00:00Z", "forge_version": "0.2.0",
                                "environment": {"hostname": host, "output_root": str(root)},
                                "summary": summary or {"passed": len(presets)}, "items": items,
                                "compare": [handoff]}))
    return path


def _merge(cli: Any, out: Path, *reports: Path) -> tuple[int, str, str]:
    return cli("merge-reports", *(str(report) for report in reports), "-o", str(out))


def _many(count: int) -> dict[str, str]:
    return {f"onnxruntime/p{index:05d}": "fp32" if index == count // 2 else "int8" for index in range(count)}


def test_a_3000_preset_report_merges_into_one_pair_per_preset(tmp_path: Path, cli: Any) -> None:
    """Every pair of 3,000 presets was 4.5 million pairs and a MemoryError; each preset against the baseline is
    3,000 pairs, the output a few times the input, and the merge's memory a few tens of MB."""
    remote = Path("/ci/runner-a/out")  # the runners' files are not visible here: only the paths are checked
    big = _report(tmp_path / "a.json", "a", remote, _many(3000), make_files=False)
    small = _report(tmp_path / "b.json", "b", Path("/ci/runner-b/out"), {"onnxruntime/zz": "int8"}, make_files=False)
    tracemalloc.start()
    try:
        code, _, err = _merge(cli, tmp_path / "merged.json", big, small)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 0, err
    (handoff,) = json.loads((tmp_path / "merged.json").read_text())["compare"]
    assert len(handoff["ready"]) == 3001 and len(handoff["pairs"]) == 3000
    assert (tmp_path / "merged.json").stat().st_size < 5 * (big.stat().st_size + small.stat().st_size)
    assert peak < 100 * 1024 * 1024


def test_the_merged_output_grows_linearly_with_the_presets(tmp_path: Path, cli: Any) -> None:
    sizes = []
    for count in (750, 1500):
        root = tmp_path / str(count)
        root.mkdir()
        reports = (_report(root / "a.json", "a", Path("/ci/a"), _many(count), make_files=False),
                   _report(root / "b.json", "b", Path("/ci/b"), {"onnxruntime/zz": "int8"}, make_files=False))
        assert _merge(cli, root / "merged.json", *reports)[0] == 0
        sizes.append((root / "merged.json").stat().st_size)
    assert sizes[1] < 2.1 * sizes[0]


def test_every_pair_compares_a_preset_with_the_fp32_baseline(tmp_path: Path, cli: Any) -> None:
    a = _report(tmp_path / "a.json", "a", tmp_path / "root_a", {"x/int8": "int8", "y/fp32": "fp32"})
    b = _report(tmp_path / "b.json", "b", tmp_path / "root_b", {"z/fp16": "fp16"})
    assert _merge(cli, tmp_path / "merged.json", a, b)[0] == 0
    (handoff,) = json.loads((tmp_path / "merged.json").read_text())["compare"]
    assert [(pair["left"], pair["right"]) for pair in handoff["pairs"]] == [("y/fp32", "x/int8"), ("y/fp32", "z/fp16")]


def test_runners_on_hosts_vm_vm_and_vm_1_keep_every_result(tmp_path: Path, cli: Any) -> None:
    roots = [tmp_path / f"root_{index}" for index in range(3)]
    reports = [_report(tmp_path / f"{index}.json", host, roots[index], {"p/fp32": "fp32"})
               for index, host in enumerate(("vm", "vm", "vm-1"))]
    code, _, err = _merge(cli, tmp_path / "merged.json", *reports)
    assert code == 0, err
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert merged["compare"][0]["results"] == {f"p/fp32@{label}": str(_result(root, "p/fp32"))
                                               for label, root in zip(("vm", "vm-2", "vm-1"), roots, strict=True)}
    assert [runner["label"] for runner in merged["environment"]["merged_from"]] == ["vm", "vm-2", "vm-1"]


def test_a_preset_ready_twice_in_one_report_is_one_clear_error(tmp_path: Path, cli: Any) -> None:
    a = _report(tmp_path / "a.json", "a", tmp_path / "root_a", {"p/fp32": "fp32"})
    data = json.loads(a.read_text())
    data["compare"].append(data["compare"][0])
    a.write_text(json.dumps(data))
    b = _report(tmp_path / "b.json", "b", tmp_path / "root_b", {"q/int8": "int8"})
    code, _, err = _merge(cli, tmp_path / "merged.json", a, b)
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"Error: {a}: field 'compare.1.ready': p/fp32@a is ready twice")


@pytest.mark.parametrize("hostile", ["../../../../etc/passwd", "/etc/passwd", "{root}/../root_b/x.json"])
def test_a_result_outside_its_runners_output_root_is_refused(tmp_path: Path, cli: Any, hostile: str) -> None:
    root = tmp_path / "root_a"
    a = _report(tmp_path / "a.json", "a", root, {"p/fp32": "fp32"}, results={"p/fp32": hostile.format(root=root)})
    b = _report(tmp_path / "b.json", "b", tmp_path / "root_b", {"q/int8": "int8"})
    code, out, err = _merge(cli, tmp_path / "merged.json", a, b)
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith(f"Error: {a}: field 'compare.0.results.p/fp32': ") and "outside" in err
    assert not (tmp_path / "merged.json").exists()


def test_a_result_linked_out_of_its_output_root_is_refused(tmp_path: Path, cli: Any) -> None:
    root = tmp_path / "root_a"
    a = _report(tmp_path / "a.json", "a", root, {"p/fp32": "fp32"})
    _result(root, "p/fp32").unlink()
    (tmp_path / "secret.json").write_text("{}")
    os.symlink(tmp_path / "secret.json", _result(root, "p/fp32"))
    b = _report(tmp_path / "b.json", "b", tmp_path / "root_b", {"q/int8": "int8"})
    code, _, err = _merge(cli, tmp_path / "merged.json", a, b)
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"Error: {a}: field 'compare.0.results.p/fp32': ") and "outside" in err


def test_a_result_missing_from_a_visible_output_root_is_refused(tmp_path: Path, cli: Any) -> None:
    root = tmp_path / "root_a"
    a = _report(tmp_path / "a.json", "a", root, {"p/fp32": "fp32"})
    _result(root, "p/fp32").unlink()
    b = _report(tmp_path / "b.json", "b", tmp_path / "root_b", {"q/int8": "int8"})
    code, _, err = _merge(cli, tmp_path / "merged.json", a, b)
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"Error: {a}: field 'compare.0.results.p/fp32': ") and "not found" in err


def test_a_result_that_is_not_a_json_file_is_refused_even_under_a_root_of_slash(tmp_path: Path, cli: Any) -> None:
    """A report names its own root; a root of ``/`` would contain anything, so a result must be a JSON file too."""
    a = _report(tmp_path / "a.json", "a", Path("/"), {"p/fp32": "fp32"}, results={"p/fp32": "/etc/passwd"})
    b = _report(tmp_path / "b.json", "b", tmp_path / "root_b", {"q/int8": "int8"})
    code, _, err = _merge(cli, tmp_path / "merged.json", a, b)
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"Error: {a}: field 'compare.0.results.p/fp32': ") and "JSON" in err


def test_a_report_with_results_but_no_output_root_is_refused(tmp_path: Path, cli: Any) -> None:
    a = _report(tmp_path / "a.json", "a", tmp_path / "root_a", {"p/fp32": "fp32"})
    data = json.loads(a.read_text())
    del data["environment"]["output_root"]
    a.write_text(json.dumps(data))
    b = _report(tmp_path / "b.json", "b", tmp_path / "root_b", {"q/int8": "int8"})
    code, _, err = _merge(cli, tmp_path / "merged.json", a, b)
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"Error: {a}: field 'environment.output_root': ")


def test_a_ready_preset_that_no_result_names_is_refused(tmp_path: Path, cli: Any) -> None:
    a = _report(tmp_path / "a.json", "a", tmp_path / "root_a", {"p/fp32": "fp32"}, results={"other": "x.json"})
    b = _report(tmp_path / "b.json", "b", tmp_path / "root_b", {"q/int8": "int8"})
    code, _, err = _merge(cli, tmp_path / "merged.json", a, b)
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"Error: {a}: field 'compare.0.ready': preset p/fp32 is listed ready but no result names it")


def test_a_preset_with_oversized_caveats_is_refused(tmp_path: Path, cli: Any) -> None:
    """The baseline's caveats are repeated in every pair: a preset's facts are bounded so the output stays linear."""
    a = _report(tmp_path / "a.json", "a", tmp_path / "root_a", {"p/fp32": "fp32"})
    data = json.loads(a.read_text())
    data["compare"][0]["caveats"]["p/fp32"] = ["x" * 1000] * 100
    a.write_text(json.dumps(data))
    b = _report(tmp_path / "b.json", "b", tmp_path / "root_b", {"q/int8": "int8"})
    code, _, err = _merge(cli, tmp_path / "merged.json", a, b)
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"Error: {a}: field 'compare.0.caveats.p/fp32': ")


@pytest.mark.parametrize("count", [-1, 1e18, 1e30])
def test_a_negative_or_absurd_count_is_refused(tmp_path: Path, cli: Any, count: float) -> None:
    a = _report(tmp_path / "a.json", "a", tmp_path / "root_a", {"p/fp32": "fp32"}, summary={"passed": count})
    b = _report(tmp_path / "b.json", "b", tmp_path / "root_b", {"q/int8": "int8"})
    code, _, err = _merge(cli, tmp_path / "merged.json", a, b)
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"Error: not a Forge report: {a}: field 'summary.passed'")


def test_counts_whose_sum_exceeds_the_bound_are_refused(tmp_path: Path, cli: Any) -> None:
    from pytest_inferedgeforge.model.records.report import MAX_COUNT

    a = _report(tmp_path / "a.json", "a", tmp_path / "root_a", {"p/fp32": "fp32"}, summary={"passed": MAX_COUNT})
    b = _report(tmp_path / "b.json", "b", tmp_path / "root_b", {"q/int8": "int8"}, summary={"passed": MAX_COUNT})
    code, _, err = _merge(cli, tmp_path / "merged.json", a, b)
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("Error: the merged summary count 'passed'")
