"""``tune``: search a static int8 preset's settings and float nodes for an artifact that passes parity and is fast
(engine/quantization/tune.py); the result is an ordinary build with its trial ledger."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.cli.build import (
    add_dataset_options,
    add_input_options,
    dataset_options,
    parse_input_shapes,
    parse_input_values,
)
from pytest_inferedgeforge.cli.common import add_command, add_presets_root, output_root, presets_root, print_json
from pytest_inferedgeforge.model.argtypes import count_at_least, positive_float
from pytest_inferedgeforge.model.defaults import DEFAULT_MAX_TRIALS, DEFAULT_SAMPLES


def cmd_tune(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.presets import load_preset
    from pytest_inferedgeforge.engine.quantization.tune import TuneRequest, tune
    from pytest_inferedgeforge.model.errors import ForgeError

    dataset, calibration = dataset_options(args)
    for option, directory in (("--dataset", dataset), ("--calibration-dataset", calibration)):
        if directory is not None and not directory.is_dir():
            raise ForgeError(f"{option} {directory}: directory not found")

    def progress(message: str) -> None:
        if not args.quiet:
            print(f"tune: {message}", file=sys.stderr, flush=True)

    request = TuneRequest(
        model=Path(args.model), preset=load_preset(args.preset, presets_root(args)),
        output_root=output_root(args, "output"), max_trials=args.max_trials, timeout_s=args.timeout_s,
        dataset=dataset, calibration_dataset=calibration, samples=args.samples, input_shapes=parse_input_shapes(args.input_shape),
        input_values=parse_input_values(args.input_value), progress=progress)
    outcome = tune(request)
    if args.json:
        print_json(outcome.to_dict())
    else:
        record = outcome.build.record
        print(outcome.summary)
        print(f"Trials   : {len(outcome.trials)} in {outcome.elapsed_s:.1f}s (stopped: {outcome.stopped})")
        print(f"Selected : trial {outcome.selected.trial} ({outcome.selected.change})")
        print(f"Float    : {', '.join(outcome.selected.float_nodes) or 'none'}")
        print(f"Build    : {record.build_dir}")
        print(f"Ledger   : {outcome.ledger}")
        for note in outcome.notes:
            print(f"Note     : {note}")
    return 0 if outcome.passed else 1


def register(sub: Any) -> None:
    p = add_command(sub, "tune", cmd_tune, "search int8 settings and float nodes for a passing, fast artifact",
                    "Build MODEL with a static int8 PRESET again and again, a real build per trial: the preset as\n"
                    "is (with a known quantizer failure worked around), the structural variants its ops call for\n"
                    "(only matrix ops quantized, dynamic int8 of recurrent ops, slow depthwise convs in float),\n"
                    "each calibration setting, then keeping in float the tensors of the nodes a diagnosis ranks\n"
                    "worst until parity passes, then re-quantizing each kept node that is not needed. The fastest\n"
                    "passing trial (else the best one) becomes an ordinary build in OUTPUT, with every trial in\n"
                    "tuning/trials.jsonl. On an rknn int8 PRESET: no structural or calibration stage, toolkit\n"
                    "layers kept in float16 (float_layers, hybrid quantization) as the toolkit's own analysis\n"
                    "ranks them, every figure on the simulator. Exit 0 when a trial passed parity, 1 when none\n"
                    "did within the budget.")
    p.add_argument("--model", required=True, help="source ONNX model")
    p.add_argument("--preset", required=True, help="static int8 preset id, e.g. onnxruntime/cpu_int8 or rknn/rk3588_int8")
    p.add_argument("--output", "--dir", dest="output", default=None, metavar="DIR",
                   help="output root for the resulting build (default: the project's forge_output, else ./builds)")
    p.add_argument("--max-trials", type=count_at_least(1), default=DEFAULT_MAX_TRIALS, metavar="N",
                   help=f"most trials, each a real build (default {DEFAULT_MAX_TRIALS})")
    p.add_argument("--timeout-s", type=positive_float, default=None, metavar="S",
                   help="wall-clock limit of the whole search, the resulting build included (default: none)")
    add_dataset_options(p)
    p.add_argument("--samples", type=count_at_least(1), default=DEFAULT_SAMPLES, metavar="N",
                   help=f"evaluation samples (default {DEFAULT_SAMPLES})")
    add_input_options(p)
    add_presets_root(p)
