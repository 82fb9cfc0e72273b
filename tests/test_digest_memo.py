"""Each file is hashed at most once per item (build check, invariants, benchmark, parity, readiness),
counted through the digest memo; and the memo never serves a digest for a file that changed."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from pytest_inferedgeforge.model.hashing import digest_memo, file_digest

REPO = Path(__file__).resolve().parent.parent
COUNTING_CONFTEST = """\
import json
import os
import time
import pytest
from pytest_inferedgeforge.model.hashing import digest_memo

@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    with digest_memo() as memo:
        result = yield
    with open("reads.jsonl", "a") as handle:
        handle.write(json.dumps({"item": item.nodeid, "reads": dict(memo.reads)}) + "\\n")
    return result
"""


@pytest.mark.parametrize("runs", [1, 2], ids=["fresh build", "cache hit"])
def test_an_item_hashes_each_file_once(pytester: pytest.Pytester, runs: int) -> None:
    shutil.copytree(REPO / "presets", pytester.path / "presets")
    shutil.copytree(REPO / "models", pytester.path / "models")
    pytester.makeconftest(COUNTING_CONFTEST)
    time.sleep(0.05)  # a model copied this instant is "racy" (hashing.py) and rightly hashed again; this one rests
    pytester.makefile(".forge.yaml", tiny="name: tiny\nmodel: models/tiny_cnn.onnx\npresets: [onnxruntime/cpu_int8]\n"
                      "benchmark: {warmup: 0, runs: 2}\ninputs: {samples: 2}\n")
    for _ in range(runs):
        (pytester.path / "reads.jsonl").unlink(missing_ok=True)
        pytester.runpytest_subprocess("tiny.forge.yaml", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    (line,) = (pytester.path / "reads.jsonl").read_text().splitlines()
    reads = json.loads(line)["reads"]
    names = {Path(path).name for path in reads}
    assert {"tiny_cnn.onnx", "model.onnx"} <= names, reads  # the memo saw the source and the artifact
    at_rest = reads if runs == 2 else {path: count for path, count in reads.items() if path.endswith("tiny_cnn.onnx")}
    assert max(at_rest.values()) == 1, reads
    # a file the build itself wrote may be hashed within a clock tick of its last change, when the memo rightly
    # does not trust its ctime yet (hashing.py); it is then read once more, never more
    assert max(reads.values()) <= 2, reads


def test_a_rewritten_file_is_hashed_again(tmp_path: Path) -> None:
    target = tmp_path / "artifact.bin"
    target.write_bytes(b"a" * 64)
    with digest_memo() as memo:
        first = file_digest(target)
        target.write_bytes(b"b" * 80)
        second = file_digest(target)
    assert first != second and memo.reads[str(target.resolve())] == 2


def test_a_rewrite_with_size_and_mtime_restored_is_hashed_again(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    target.write_bytes(b"a" * 64)
    time.sleep(0.05)  # older than the racy window, so the memo keeps the first digest
    before = target.stat()
    with digest_memo() as memo:
        first = file_digest(target)
        target.write_bytes(b"b" * 64)  # same size, same inode
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime restored
        second = file_digest(target)
    assert target.stat().st_mtime_ns == before.st_mtime_ns and target.stat().st_size == before.st_size
    assert first != second and memo.reads[str(target.resolve())] == 2


def test_an_unchanged_file_is_read_once(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    target.write_bytes(b"a" * 64)
    time.sleep(0.05)
    with digest_memo() as memo:
        assert file_digest(target) == file_digest(target)
    assert memo.reads[str(target.resolve())] == 1
