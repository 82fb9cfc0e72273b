"""A spec item's int8/fp16 work beyond the plain build: the diagnosis a failed parity check adds to its message, and
the spec's int8 search (``quantization.search``) run in place of the plain build.

Imported by items.py, which reaches the engine; the diagnosis and the search themselves are engine work
(engine/quantization/diagnoses.py, engine/quantization/tune.py).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

import pytest

from pytest_inferedgeforge.engine.quantization.diagnoses import DIAGNOSED_PRECISIONS, diagnose_build, summary_lines
from pytest_inferedgeforge.engine.quantization.tune import TuneOutcome, TuneRequest, tunable, tune
from pytest_inferedgeforge.engine.record import BuildRecord
from pytest_inferedgeforge.engine.runs import RunSettings, run_samples
from pytest_inferedgeforge.model.errors import ForgeError, first_line
from pytest_inferedgeforge.model.presets import Preset
from pytest_inferedgeforge.model.spec import Experiment
from pytest_inferedgeforge.plugin.settings import ForgeSettings
from pytest_inferedgeforge.plugin.sharing import signer

LOGGER = logging.getLogger("inferedgeforge.plugin")
DIAGNOSIS_LINES = 3
"""The worst tensors a failure message names; the whole diagnosis is in the file ``diagnosis_path`` names."""


def diagnosis_lines(item: pytest.Item, record: BuildRecord, settings: RunSettings) -> list[str]:
    """Diagnose a build whose parity failed, on the inputs its run took, and record where (``diagnosis_path``);
    the lines a failure message adds, each prefixed ``diagnosis:``. Only int8 and fp16 builds are diagnosed. A
    diagnosis that cannot be made (a backend without one, an error) says why in one line: the parity failure
    stays the verdict, never masked by the diagnosis."""
    if str(record.manifest.runtime.precision) not in DIAGNOSED_PRECISIONS:
        return []
    try:
        samples, _ = run_samples(record, settings)
        diagnosis, path = diagnose_build(record.build_dir, samples)
    except ForgeError as exc:
        return [f"diagnosis not made: {first_line(exc)}"]
    except Exception as exc:  # a bug in the diagnosis must not hide the parity failure; its traceback is logged
        LOGGER.exception("diagnosis of %s failed", record.build_dir)
        return [f"diagnosis not made: internal error: {type(exc).__name__}: {first_line(exc)}"]
    lines = summary_lines(diagnosis, limit=DIAGNOSIS_LINES)
    item.user_properties.extend([("diagnosis_path", str(path)), ("diagnosis", lines[0])])
    return [f"diagnosis: {'worst: ' + line.strip() if line.startswith(' ') else line}" for line in lines] + \
        [f"diagnosis: recorded in {path}"]


def searches(experiment: Experiment, preset: Preset) -> bool:
    """Whether the item runs the int8 search: the spec asks for one and the preset is static QDQ int8 on ONNX
    Runtime; fp32, fp16, dynamic int8 and other backends build as they are."""
    return experiment.spec.quantization.search is not None and tunable(preset)


def _progress(phase: Callable[[str], None] | None) -> Callable[[str], None]:
    """One line per trial on stderr (captured with the item, shown with its failure or with ``-s``), and the
    item's live phase line."""
    def say(message: str) -> None:
        print(f"tune: {message}", file=sys.stderr, flush=True)
        if phase is not None:
            phase(f"int8 search: {message}")
    return say


def search_build(item: pytest.Item, experiment: Experiment, preset: Preset, settings: ForgeSettings,
                 phase: Callable[[str], None] | None = None) -> TuneOutcome:
    """Run the spec's int8 search for ``preset`` into the session's output root, judged as the item judges (the
    spec's evaluation and calibration inputs, preprocessing, output checks and int8 thresholds), and record its
    outcome as item properties."""
    spec = experiment.spec
    search = spec.quantization.search
    assert search is not None  # searches() said so
    inputs = spec.inputs
    key = signer(item.config)
    outcome = tune(TuneRequest(
        model=experiment.model, preset=preset, output_root=settings.output_root, max_trials=search.max_trials,
        timeout_s=search.timeout_s, dataset=experiment.dataset, samples=inputs.samples, input_shapes=inputs.shapes,
        input_values=inputs.values, progress=_progress(phase), calibration_dataset=experiment.calibration,
        preprocess=inputs.preprocess, output_checks=spec.accuracy.outputs,
        thresholds=spec.accuracy.override_for(str(preset.precision)), seed=inputs.seed, signer=key))
    item.user_properties.extend([
        ("tune_summary", outcome.summary), ("tune_trials", len(outcome.trials)), ("tune_stopped", outcome.stopped),
        ("tune_ledger", str(outcome.ledger)), ("tune_float_nodes", ", ".join(outcome.selected.float_nodes)),
    ])
    return outcome
