"""What having the plugin installed costs every pytest session: with it vs ``-p no:inferedgeforge``.

Two workloads, each run interleaved (plugin, no plugin, plugin, ...) in fresh
processes so both see the same machine state: ``pytest --help`` and a project of
one trivial test. The figure is the ratio of medians; the goal is <= 1.10.

    python bench/bench_startup.py [--rounds 15]   # writes bench/results/startup.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "startup.json"
GOAL = 1.10


def _time(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def measure(args: list[str], cwd: Path, rounds: int) -> dict[str, float]:
    pytest = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    with_plugin, without = [], []
    for _ in range(rounds):
        with_plugin.append(_time([*pytest, *args], cwd))
        without.append(_time([*pytest, "-p", "no:inferedgeforge", *args], cwd))
    plugin_s, bare_s = statistics.median(with_plugin), statistics.median(without)
    return {"with_plugin_median_s": round(plugin_s, 4), "without_plugin_median_s": round(bare_s, 4),
            "ratio": round(plugin_s / bare_s, 3), "rounds": rounds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        project = Path(scratch)
        (project / "test_one.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
        results = {"pytest --help": measure(["--help"], project, options.rounds),
                   "one-test project": measure(["-q"], project, options.rounds)}
    report = {"goal_ratio_at_most": GOAL, "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, "
              f"Python {platform.python_version()}", "results": results}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for name, figures in results.items():
        print(f"{name:<18} plugin {figures['with_plugin_median_s']:.3f} s, without {figures['without_plugin_median_s']:.3f} s,"
              f" ratio {figures['ratio']:.3f} (goal <= {GOAL})")
    return 0 if all(figures["ratio"] <= GOAL for figures in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
