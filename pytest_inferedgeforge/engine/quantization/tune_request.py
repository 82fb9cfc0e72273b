"""What the int8 search (engine/quantization/tune.py) is asked, and what it answers: the request, and the outcome
with its one-line summary and its JSON form (``tune --json``, a spec item's report)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.engine.build import VerifiedBuild
from pytest_inferedgeforge.engine.quantization.speed import interval_verdict
from pytest_inferedgeforge.engine.quantization.tune_score import describe
from pytest_inferedgeforge.engine.quantization.tune_score import ms as _ms
from pytest_inferedgeforge.engine.quantization.tune_trial import Timing
from pytest_inferedgeforge.engine.signing import SigningKey
from pytest_inferedgeforge.model.inputs import ValueRule
from pytest_inferedgeforge.model.preprocess import Pipelines
from pytest_inferedgeforge.model.presets import Preset
from pytest_inferedgeforge.model.records.tuning import TUNING_LEDGER, TuningTrial
from pytest_inferedgeforge.model.spec import DEFAULT_MAX_TRIALS, DEFAULT_SAMPLES, DEFAULT_SEED, OutputCheck, Thresholds

Progress = Callable[[str], None]


@dataclass
class TuneRequest:
    model: Path
    preset: Preset
    output_root: Path
    max_trials: int = DEFAULT_MAX_TRIALS
    timeout_s: float | None = None
    dataset: Path | None = None
    """Evaluation inputs (parity, benchmark, diagnosis); None: seeded synthetic ones."""
    samples: int = DEFAULT_SAMPLES
    input_shapes: dict[str, list[int]] | None = None
    input_values: dict[str, ValueRule] | None = None
    progress: Progress | None = None
    calibration_dataset: Path | None = None
    """int8 calibration inputs (a spec's inputs.calibration, --calibration-dataset); None: the preset's."""
    preprocess: Pipelines | None = None
    """How dataset images become tensors, for calibration and evaluation alike (a spec's inputs.preprocess)."""
    output_checks: dict[str, OutputCheck] = field(default_factory=dict)
    """Per-output parity settings (a spec's accuracy.outputs): the search judges what the item judges."""
    thresholds: Thresholds | None = None
    """The spec's int8 thresholds; None: the int8 default."""
    seed: int = DEFAULT_SEED
    """Seed of synthetic evaluation inputs (a spec's inputs.seed)."""
    signer: SigningKey | None = None
    """Signs the resulting build, as the item's and the CLI's builds are signed."""


@dataclass
class TuneOutcome:
    passed: bool
    selected: TuningTrial
    trials: list[TuningTrial]
    build: VerifiedBuild
    fp32: Timing | None
    """The fp32 build's short benchmark, measured like every trial's (None on a simulator)."""
    median_ms: float | None
    """The resulting build's median, measured like the fp32 build's."""
    elapsed_s: float
    stopped: str
    """Why the search ended: passed, max_trials, timeout, or exhausted (nothing left to try)."""
    notes: list[str] = field(default_factory=list)
    where: str = ""
    """Where the figures were measured, as the summary says it (rknn: " on the simulator")."""

    @property
    def ledger(self) -> Path:
        return self.build.record.build_dir / TUNING_LEDGER

    @property
    def summary(self) -> str:
        trial = self.selected
        if self.passed:
            share = trial.quantized_compute_share
            quantized = f"{share * 100:.1f} % of compute quantized" if share is not None else "quantized share unknown"
            line = (f"passed{self.where} with {len(trial.float_nodes)} float node(s) ({quantized}), median "
                    f"{_ms(self.median_ms)} vs fp32 {_ms(self.fp32_median_ms)}")
            return line + self._speed()
        return f"no passing configuration{self.where} within budget; best trial {trial.trial} ({describe(trial)})"

    @property
    def fp32_median_ms(self) -> float | None:
        return self.fp32.median_ms if self.fp32 else None

    def _speed(self) -> str:
        """Slower or faster than fp32 only when the two medians' 95 % intervals do not overlap (the speed verdict's
        rule, engine/quantization/speed.py); without intervals, the medians alone, said as such."""
        if not self.median_ms or self.fp32 is None:
            return ""
        ratio = f"{self.median_ms / self.fp32.median_ms:.2f}x"
        mine, theirs = self.selected.median_ci_ms, self.fp32.median_ci_ms
        if mine is None or theirs is None:
            above = self.median_ms > self.fp32.median_ms
            return f": median above fp32's ({ratio}; too few runs for an interval)" if above else ""
        verdict = interval_verdict(mine, theirs)
        if verdict == "no_clear_difference":
            return f": no clear difference from fp32 ({ratio}; the medians' 95 % intervals overlap)"
        return f": {verdict} than fp32 ({ratio})"

    def to_dict(self) -> dict[str, Any]:
        record = self.build.record
        return {
            "passed": self.passed, "summary": self.summary, "stopped": self.stopped,
            "build_dir": str(record.build_dir), "ledger": str(self.ledger),
            "artifact_sha256": record.manifest.artifact.sha256, "selected_trial": self.selected.trial,
            "trials": len(self.trials), "float_nodes": self.selected.float_nodes,
            "quantized_compute_share": self.selected.quantized_compute_share,
            "build_options": self.selected.build_options, "parity": _dump(self.selected.parity),
            "median_ms": self.median_ms, "median_ci_ms": self.selected.median_ci_ms,
            "fp32_median_ms": self.fp32_median_ms,
            "fp32_median_ci_ms": list(self.fp32.median_ci_ms) if self.fp32 and self.fp32.median_ci_ms else None,
            "fp32_ratio": round(self.median_ms / self.fp32_median_ms, 4)
            if self.median_ms and self.fp32_median_ms else None,
            "search_s": round(self.elapsed_s, 3), "notes": self.notes,
        }


def _dump(value: Any) -> Any:
    return value.model_dump(mode="json", exclude_none=True) if value is not None else None

