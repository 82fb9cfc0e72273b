"""The HTML pages as a person opens them: compare --html and the --forge-html session report, in headless Chromium
at 1400 px (no sideways scroll, every figure loaded, a table with headers), offline, with a screenshot of each."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

BUILD = ("build", "--model", "models/tiny_cnn.onnx", "--output", "builds", "--preset")
PRESETS = ("onnxruntime/cpu_fp32", "onnxruntime/cpu_int8_dynamic")
WIDTH = 1400
EXTERNAL = re.compile(r"""\b(src|href)\s*=\s*(?!["']?(data:|#))""", re.IGNORECASE)
"""Any src/href that is not a data URI or an in-page anchor would fetch something."""


@pytest.fixture(scope="module")
def chromium() -> str:
    """The system's Chromium; a test that needs it skips without it, unless FORGE_BROWSER_REQUIRED=1 (CI)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    reason = "no Chromium found (chromium, chromium-browser, google-chrome); install it: apt-get install chromium"
    if os.environ.get("FORGE_BROWSER_REQUIRED") == "1":
        pytest.fail(f"FORGE_BROWSER_REQUIRED=1 but {reason}")
    pytest.skip(reason)


def _chromium(browser: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={WIDTH},900",
            "--hide-scrollbars", "--virtual-time-budget=5000", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def layout(browser: str, page: Path) -> dict[str, int]:
    """What the page's own layout check measured in the browser (the script runs only with ?layout-check)."""
    done = _chromium(browser, "--dump-dom", f"{page.as_uri()}?layout-check")
    found = re.search(r"LAYOUT (\{.*?\})", done.stdout)
    assert found, f"no layout line in the dumped DOM; stderr: {done.stderr[-2000:]}"
    return json.loads(found.group(1))


def screenshot(browser: str, page: Path, png: Path) -> Path:
    done = _chromium(browser, f"--screenshot={png}", page.as_uri())
    assert png.is_file(), done.stderr[-2000:]
    return png


@pytest.fixture
def compare_page(workspace: Path, cli) -> Path:
    """compare --html over fp32 and int8_dynamic builds of the shipped model, benchmarked alike."""
    for preset in PRESETS:
        assert cli(*BUILD, preset)[0] == 0
        name = preset.split("/")[1]
        code, _, err = cli("run-benchmark", f"builds/tiny_cnn__cpu__onnxruntime__{name}", "--warmup", "1", "--runs", "20")
        assert code == 0, err
    code, out, err = cli("compare", "--dir", "builds", "--model", "models/tiny_cnn.onnx", "--html")
    assert code == 0, err
    return Path(re.search(r"^HTML: (.+)$", out, re.MULTILINE).group(1))  # type: ignore[union-attr]


@pytest.fixture
def session_page(forge_project: pytest.Pytester) -> Path:
    """A pytest session's --forge-html page: fp32 and int8_dynamic pass; fp16 fails a cosine of 1.0 and is
    diagnosed."""
    pytester = forge_project
    pytester.makefile(".forge.yaml", tiny="name: tiny\nmodel: models/tiny_cnn.onnx\npresets: [onnxruntime/cpu_fp32, "
                      "onnxruntime/cpu_int8_dynamic, onnxruntime/cpu_fp16]\nbenchmark: {warmup: 1, runs: 20}\n"
                      "accuracy: {thresholds: {fp16: {min_cosine: 1.0}}}\n")
    result = pytester.runpytest_subprocess("--forge-html=report/session.html", "-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["Forge HTML report: *session.html"])
    return pytester.path / "report" / "session.html"


def test_compare_page_fits_1400px_with_every_figure_loaded(chromium: str, compare_page: Path, tmp_path: Path) -> None:
    measured = layout(chromium, compare_page)
    assert measured["scrollWidth"] <= measured["innerWidth"] == WIDTH, measured
    assert measured["images"] >= 1 and measured["imagesLoaded"] == measured["images"], measured
    assert measured["headers"] >= 10, measured
    assert screenshot(chromium, compare_page, tmp_path / "compare.png").stat().st_size > 20_000


def test_session_report_fits_1400px_with_every_figure_loaded(chromium: str, session_page: Path, tmp_path: Path) -> None:
    measured = layout(chromium, session_page)
    assert measured["scrollWidth"] <= measured["innerWidth"] == WIDTH, measured
    assert measured["images"] >= 1 and measured["imagesLoaded"] == measured["images"], measured
    assert measured["headers"] >= 10, measured
    assert screenshot(chromium, session_page, tmp_path / "session.png").stat().st_size > 20_000


def test_compare_page_fetches_nothing_and_carries_the_lab_command_to_copy(compare_page: Path) -> None:
    text = compare_page.read_text()
    assert not EXTERNAL.search(text), EXTERNAL.search(text)
    assert re.search(r"<pre><code>python -m inferedgelab\.cli compare .+</code></pre><button", text)
    assert "needs 662 samples (has 20)" in text and "baseline" in text


def test_compare_page_shows_digests_short_with_the_full_value_on_hover(compare_page: Path) -> None:
    build = json.loads(next((compare_page.parent.parent / "builds").glob("*cpu_fp32/metadata.json")).read_text())
    key = build["build"]["build_key"]
    assert f'title="{key}">{key[:12]}</td>' in compare_page.read_text()


def test_session_report_lists_the_failed_build_and_its_diagnosis(session_page: Path) -> None:
    text = session_page.read_text()
    assert not EXTERNAL.search(text)
    assert "<strong>onnxruntime/cpu_fp16</strong>" in text and "Diagnosis: onnxruntime/cpu_fp16" in text
    assert "diagnosis.json" in text
