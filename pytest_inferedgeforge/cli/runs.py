"""``run-benchmark``: benchmark and parity-check a build, natively or through InferEdgeLab."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.cli.common import add_build_dir, add_command, metadata_path, print_json, status
from pytest_inferedgeforge.model.argtypes import count_at_least, positive_float


def cmd_run_benchmark(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.runs import RunSettings, run_native
    from pytest_inferedgeforge.engine.signing import load_signing_key
    from pytest_inferedgeforge.handoff.lab_run import run_via_lab

    build_dir = metadata_path(args).parent
    signer = load_signing_key(Path(args.sign_key)).signer if args.sign_key else None
    if args.via == "lab":
        with status("Running InferEdgeLab profile...", args):
            outcome = run_via_lab(build_dir, timeout_s=args.timeout, signer=signer)
        if outcome.summary.stdout:
            print(outcome.summary.stdout, file=sys.stderr, end="")
    else:
        settings = RunSettings(warmup=args.warmup, runs=args.runs, threads=args.threads, seed=args.seed,
                               samples=args.samples, dataset=Path(args.dataset) if args.dataset else None,
                               accuracy=not args.no_accuracy, min_duration_s=args.min_duration_s,
                               min_runs=args.min_runs, max_cv=args.max_cv)
        how = f"at least {args.min_duration_s:g} s" if args.min_duration_s else f"{args.runs} runs"
        with status(f"Benchmarking {build_dir.name} ({how})...", args):
            outcome = run_native(build_dir, settings, signer)
    view = outcome.summary.model_dump(mode="json", exclude_none=True,
                                      exclude={"latencies_ms", "warmup_latencies_ms", "stdout"})
    error = None
    if not outcome.completed:
        error = f"benchmark failed: {outcome.summary.error}; recorded in {outcome.summary_path}"
    elif outcome.parity is not None and not outcome.parity.passed:
        error = "parity below thresholds: " + "; ".join(outcome.parity.failures)
    if args.json and error:  # one JSON object on stdout: the run's record and the error
        view = {**view, "error": error}
    print_json(view)
    if error and not args.json:
        print(f"Error: {error}", file=sys.stderr)
    return 1 if error else 0


def register(sub: Any) -> None:
    from pytest_inferedgeforge.model.defaults import (
        DEFAULT_MAX_CV,
        DEFAULT_RUNS,
        DEFAULT_SAMPLES,
        DEFAULT_SEED,
        DEFAULT_WARMUP,
        LAB_TIMEOUT_S,
    )

    p = add_command(sub, "run-benchmark", cmd_run_benchmark, "benchmark a build and check parity; writes run_summary.json",
             "Native (default): verify the whole build, load the artifact here, measure latency and compare its\n"
             "outputs with the source model. Each run, failed ones included, writes its own runs/<run id>/\n"
             "(run_summary.json, structured_result.json, accuracy_evidence.json) under the build's lock;\n"
             "a completed run also becomes the build's run_summary.json. --via lab runs\n"
             "'python -m inferedgelab.cli profile' on the verified artifact instead.")
    add_build_dir(p)
    p.add_argument("--via", choices=("native", "lab"), default="native", help="who runs the benchmark (default: native)")
    p.add_argument("--warmup", type=count_at_least(0), default=DEFAULT_WARMUP,
                   help=f"warmup iterations (default {DEFAULT_WARMUP})")
    p.add_argument("--runs", type=count_at_least(1), default=DEFAULT_RUNS, help=f"measured iterations (default {DEFAULT_RUNS})")
    p.add_argument("--min-duration-s", type=positive_float, default=None, metavar="S",
                   help="a time budget instead of --runs: run at least S seconds (like trtexec --duration)")
    p.add_argument("--min-runs", type=count_at_least(1), default=1, metavar="N",
                   help="with --min-duration-s: at least N runs (default 1; 64 supports a p90, 662 a p99)")
    p.add_argument("--max-cv", type=positive_float, default=DEFAULT_MAX_CV, metavar="X",
                   help=f"coefficient of variation above which the run is flagged unstable (default {DEFAULT_MAX_CV})")
    p.add_argument("--threads", type=count_at_least(1), default=None, help="intra-op threads (default: runtime decides)")
    p.add_argument("--samples", type=count_at_least(1), default=DEFAULT_SAMPLES,
                   help=f"input samples for parity and benchmark (default {DEFAULT_SAMPLES})")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"seed of synthetic inputs (default {DEFAULT_SEED})")
    p.add_argument("--dataset", default=None, metavar="DIR",
                   help="directory of .npy/.npz, image or 16-bit PCM .wav inputs instead of synthetic ones (images "
                        "are prepared as the build recorded in its preprocess)")
    p.add_argument("--no-accuracy", action="store_true", help="skip the parity check against the source model")
    p.add_argument("--timeout", type=count_at_least(1), default=LAB_TIMEOUT_S, help="seconds before --via lab is stopped")
    p.add_argument("--sign-key", metavar="KEY", default=None,
                   help="seal the run: sign its records with this private key (runs/<id>/run.dsse.json), so "
                        "'verify --key' and the --forge-trust gate can trust its figures")
