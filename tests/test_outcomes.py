"""How a Forge item's outcome reads outside Forge's own table: JUnit properties under reruns, skip reasons."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter

import pytest

FLAKY_CONFTEST = """
import pytest

attempts = {}

@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    attempts[item.nodeid] = attempts.get(item.nodeid, 0) + 1
    if attempts[item.nodeid] == 1:
        raise AssertionError("flaky: fails the first time, after Forge recorded its properties")
    return result
"""


def test_a_rerun_item_carries_each_property_once_in_junit(two_preset_project: pytest.Pytester) -> None:
    pytest.importorskip("pytest_rerunfailures")
    two_preset_project.makeconftest(FLAKY_CONFTEST)
    result = two_preset_project.runpytest("-p", "no:cacheprovider", "--reruns", "1", "-k", "cpu_fp32",
                                          "--junitxml=junit.xml")
    assert result.parseoutcomes().get("rerun") == 1 and result.parseoutcomes().get("passed") == 1
    testcases = ET.parse(two_preset_project.path / "junit.xml").getroot().iter("testcase")
    names = [Counter(p.get("name") for p in case.iter("property")) for case in testcases]
    assert names and all(names), names
    assert all(count == 1 for counter in names for count in counter.values()), names


SKIPPING_SPEC = """\
name: edge
model: models/tiny_cnn.onnx
presets: [tensorrt/jetson_fp16]
"""


def test_a_skip_points_at_the_spec_not_at_forge(two_preset_project: pytest.Pytester) -> None:
    two_preset_project.makefile(".forge.yaml", edge=SKIPPING_SPEC)
    result = two_preset_project.runpytest("-p", "no:cacheprovider", "-rs", "edge.forge.yaml")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] edge.forge.yaml: tensorrt unavailable: *"])
    assert "plugin/items.py" not in result.stdout.str()


def test_a_skip_reads_as_its_reason_in_other_reports(two_preset_project: pytest.Pytester) -> None:
    two_preset_project.makefile(".forge.yaml", edge=SKIPPING_SPEC)
    two_preset_project.makeconftest("""
        def pytest_runtest_logreport(report):
            if report.skipped:
                print("TEXT", repr(report.longreprtext))
    """)
    result = two_preset_project.runpytest("-p", "no:cacheprovider", "-s", "edge.forge.yaml")
    result.stdout.fnmatch_lines(["*TEXT 'tensorrt unavailable: *'"])
