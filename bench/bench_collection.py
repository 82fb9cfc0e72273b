"""Collection cost: 10,000 spec items vs pytest collecting 10,000 trivial parametrized tests. Run by hand.

    python bench/bench_collection.py [--specs 2500] [--rounds 3]

2,500 specs x 4 presets against 2,500 test files x 4 parameters, each collected
with ``pytest --collect-only -q`` in a fresh process, interleaved; the ratio of
median wall times is written to bench/results/collection.json. Goal: <= 2.0.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PRESETS = "onnxruntime/cpu_fp32, onnxruntime/cpu_fp16, onnxruntime/cpu_int8, onnxruntime/cpu_int8_dynamic"
SPEC = "model: ../models/tiny_cnn.onnx\npresets: [{presets}]\n"
TRIVIAL = "import pytest\n\n@pytest.mark.parametrize('case', range(4))\ndef test_case(case):\n    assert case >= 0\n"


def make_projects(root: Path, count: int) -> tuple[Path, Path]:
    forge, plain = root / "forge", root / "plain"
    for project in (forge, plain):
        project.mkdir()
        (project / "pytest.ini").write_text("[pytest]\n")
    shutil.copytree(REPO / "models", forge / "models")
    (forge / "experiments").mkdir()
    (plain / "tests").mkdir()
    for index in range(count):
        (forge / "experiments" / f"e{index:05d}.forge.yaml").write_text(SPEC.format(presets=PRESETS))
        (plain / "tests" / f"test_{index:05d}.py").write_text(TRIVIAL)
    return forge / "experiments", plain / "tests"


def collect(directory: Path, expected: int, *plugins: str) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           *plugins, str(directory)], cwd=directory.parent, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if f"{expected} tests collected" not in done.stdout:
        raise SystemExit(f"collection of {directory} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--specs", type=int, default=2500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        specs, tests = make_projects(Path(scratch), args.specs)
        expected = args.specs * 4
        forge_times, plain_times = [], []
        for _ in range(args.rounds):
            forge_times.append(collect(specs, expected))
            plain_times.append(collect(tests, expected))
    forge, plain = statistics.median(forge_times), statistics.median(plain_times)
    result = {"items": args.specs * 4, "rounds": args.rounds, "forge_s": round(forge, 3), "plain_s": round(plain, 3),
              "ratio": round(forge / plain, 3), "goal": 2.0, "forge_runs_s": forge_times, "plain_runs_s": plain_times}
    out = REPO / "bench" / "results" / "collection.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
