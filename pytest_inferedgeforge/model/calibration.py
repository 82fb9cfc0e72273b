"""Where int8 calibration data came from, and what a reviewer must be told about it.

Calibration picks the activation ranges an int8 artifact keeps forever. Ranges
taken from uniform noise, or from the very files parity is then measured on,
make a build look better (or differently bad) than it is on real inputs, so
both are recorded as warnings in the build's calibration record.
"""

from __future__ import annotations

from pathlib import Path

from pytest_inferedgeforge.model.containment import data_files
from pytest_inferedgeforge.model.hashing import file_digest, sha256_json
from pytest_inferedgeforge.model.inputs import DATASET_SUFFIXES, InputSource

SYNTHETIC_WARNING = (
    "int8 calibrated on seeded synthetic inputs, not real data: the activation ranges may not be the ones the "
    "model sees; give real calibration data (spec inputs.calibration, build --calibration-dataset, or the "
    "preset's calibration.dataset)")


def file_digests(directory: Path, what: str) -> dict[str, str]:
    """File name -> sha256 of every dataset file of ``directory`` (the files a dataset is read from)."""
    return {path.name: file_digest(path) for path in data_files(directory, DATASET_SUFFIXES, what)}


def dataset_digest(directory: Path) -> str:
    """The calibration dataset's digest as the build key and the records state it: names and contents."""
    return sha256_json(list(file_digests(directory, "calibration dataset").items()))


def calibration_warnings(source: InputSource, calibration: Path | None, evaluation: Path | None) -> list[str]:
    """Synthetic calibration, and calibration files that are also evaluation files (same sha256)."""
    if source == "synthetic" or calibration is None:
        return [SYNTHETIC_WARNING]
    if evaluation is None:
        return []
    calibrated = set(file_digests(calibration, "calibration dataset").values())
    evaluated = file_digests(evaluation, "dataset")
    shared = [name for name, digest in evaluated.items() if digest in calibrated]
    if not shared:
        return []
    return [f"calibrated on {len(shared)} of the {len(evaluated)} evaluation dataset files (same sha256, e.g. "
            f"{shared[0]}): parity on them overstates int8 accuracy; keep inputs.calibration and inputs.dataset "
            "apart"]
