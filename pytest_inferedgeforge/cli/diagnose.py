"""``diagnose``: which layer of an int8 or fp16 build departs from its source model, and why."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.cli.common import add_build_dir, add_command, build_arg, print_json
from pytest_inferedgeforge.model.argtypes import count_at_least
from pytest_inferedgeforge.model.defaults import DEFAULT_DIAGNOSIS_SAMPLES, DEFAULT_THRESHOLD_DB

TABLE_ROWS = 10


def _db(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _cosine(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def cmd_diagnose(args: argparse.Namespace) -> int:
    from pytest_inferedgeforge.engine.quantization.diagnoses import diagnose_build, ranked, summary_lines

    diagnosis, path = diagnose_build(build_arg(args), dataset=Path(args.dataset) if args.dataset else None,
                                     count=args.samples, threshold_db=args.threshold_db)
    if args.json:
        print_json(diagnosis.model_dump(mode="json"))
        return 0
    simulator = diagnosis.evidence == "simulator"  # a toolkit's own analysis: cosines, no SQNR
    rows = [(f.node + (f" (+{', '.join(f.fused_nodes)})" if f.fused_nodes else "")
             + (f" [toolkit: {f.toolkit_layer}]" if f.toolkit_layer not in (None, f.tensor) else ""), f.op_type,
             *((_cosine(f.cosine), _cosine(f.local_cosine)) if simulator else (_db(f.sqnr_db), _db(f.local_sqnr_db))),
             ", ".join(f.causes) or "-") for f in ranked(diagnosis)[:TABLE_ROWS]]
    header = ("node", "op", *(("cosine", "local cos") if simulator else ("SQNR dB", "local dB")), "causes")
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    print(f"Diagnosis: {diagnosis.precision} {diagnosis.evidence} vs source on {diagnosis.samples} "
          f"{diagnosis.input_source} sample(s): {diagnosis.matched_tensors} tensor(s) matched, "
          f"{diagnosis.quantized_tensors} quantized")
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    for line in summary_lines(diagnosis, limit=0):
        print(line)
    for note in diagnosis.notes:
        print(f"Note: {note}")
    print(f"Record: {path}")
    return 0


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of dB") from None
    if not -100.0 < value < 200.0:
        raise argparse.ArgumentTypeError(f"{value} dB is outside (-100, 200)")
    return value


def register(sub: Any) -> None:
    p = add_command(sub, "diagnose", cmd_diagnose, "find which layer of an int8/fp16 build breaks, and why",
                    "Run the source model and the artifact on the same inputs with every tensor exposed and compare "
                    "them tensor by tensor (SQNR, cosine, causes: range_mixing, saturation, sensitive_op; fp16: "
                    "overflow, precision_loss). RKNN builds: rknn-toolkit2's own accuracy_analysis on its simulator "
                    "(per layer cosines, mapped back to the source's nodes). The record goes to "
                    "BUILD_DIR/diagnoses/<id>/diagnosis.json.")
    add_build_dir(p)
    p.add_argument("--dataset", default=None, metavar="DIR",
                   help="evaluation inputs (.npy/.npz or images); default: the seeded synthetic inputs of a run")
    p.add_argument("--samples", type=count_at_least(1), default=DEFAULT_DIAGNOSIS_SAMPLES, metavar="N",
                   help=f"how many inputs (default {DEFAULT_DIAGNOSIS_SAMPLES})")
    p.add_argument("--threshold-db", type=_threshold, default=DEFAULT_THRESHOLD_DB, metavar="DB",
                   help=f"SQNR below which a tensor counts as divergent (default {DEFAULT_THRESHOLD_DB:g}; RKNN: the "
                        "cosine it stands for, 0.981 at 14)")
