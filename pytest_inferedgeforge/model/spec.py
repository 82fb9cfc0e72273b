"""Experiment specs: one model, the presets to build it with, and how to check the results.

A spec is YAML (``*.forge.yaml``/``*.forge.yml``). Paths inside it are relative
to the spec file, so an experiment directory can be moved as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, field_validator

from pytest_inferedgeforge.model.defaults import DEFAULT_MAX_TRIALS, DEFAULT_RUNS, DEFAULT_SAMPLES, DEFAULT_SEED, DEFAULT_WARMUP
from pytest_inferedgeforge.model.errors import ForgeError, PresetError, SpecError, describe_validation_error
from pytest_inferedgeforge.model.inputs import ValueRule
from pytest_inferedgeforge.model.layout import spec_stem
from pytest_inferedgeforge.model.precision import Precision
from pytest_inferedgeforge.model.preprocess import Preprocess
from pytest_inferedgeforge.model.presets import BackendCatalog, Preset, load_preset
from pytest_inferedgeforge.model.regression import HOST_DRIFT_LIMIT, AccuracyMetric, LatencyMetric, Rule, parse_rule
from pytest_inferedgeforge.model.stats import DEFAULT_MAX_CV, DRIFT_ALPHA
from pytest_inferedgeforge.model.yamlio import load_document


class Thresholds(BaseModel):
    """Parity limits of an artifact against its source model; unset limits are reported, not enforced."""

    model_config = ConfigDict(extra="forbid")

    min_cosine: float | None = Field(None, ge=-1, le=1, description="Lowest cosine similarity of any output.")
    max_abs_error: float | None = Field(None, ge=0, description="Largest absolute difference of any output element.")
    min_top1_agreement: float | None = Field(None, ge=0, le=1, description="Share of samples with the same argmax.")
    min_channel_cosine: float | None = Field(None, ge=-1, le=1, description=(
        "Lowest cosine of any single channel (see accuracy.outputs.channel_axis). A channel that varies in the "
        "reference but is constant in the artifact fails whatever this says."))


class OutputCheck(BaseModel):
    """How to read one output for parity: where its channels and classes are, and its tolerances."""

    model_config = ConfigDict(extra="forbid")

    channel_axis: int | None = Field(None, description=(
        "Axis of per-channel figures; default: 1 for outputs of rank 3 and more (a rank-2 [N, C] output's "
        "classes are judged by class agreement instead); -1 counts from the end."))
    per_channel: bool = Field(True, description="Compute per-channel figures and the collapsed-channel check.")
    class_axis: int | None = Field(None, description=(
        "Axis of class scores for top-1/top-5 agreement; default: 1 for rank 2 and 4+, the last axis for rank 3."))
    score_channels: tuple[int, int] | None = Field(None, description=(
        "[start, stop) of the score entries along class_axis, e.g. [4, 84] for a YOLO head [N, 4+80, anchors]."))
    classes: bool = Field(True, description="Compute class agreement for this output at all.")
    min_score: float | None = Field(None, description=(
        "Judge class agreement only where the reference's top score reaches this, e.g. 0.25 for a detection head: "
        "on background anchors the class scores differ by less than the quantization noise, so their argmax says "
        "nothing about the task. Positions judged are recorded (class_positions); none reaching it leaves the "
        "agreement not established."))
    atol: float | None = Field(None, ge=0, description="Absolute tolerance (Polygraphy style); enforced when set.")
    rtol: float | None = Field(None, ge=0, description="Relative tolerance (Polygraphy style); enforced when set.")
    error_stat: Literal["elemwise", "max", "mean", "median", "quantile"] = Field("elemwise", description=(
        "elemwise: every element within atol or rtol; otherwise that statistic of the errors."))
    error_quantile: float = Field(0.99, gt=0, le=1, description="The quantile for error_stat: quantile.")


DEFAULT_THRESHOLDS: dict[str, Thresholds] = {
    "fp32": Thresholds(min_cosine=0.9999),
    "fp16": Thresholds(min_cosine=0.999, min_top1_agreement=0.95),
    "int8": Thresholds(min_cosine=0.99, min_top1_agreement=0.9),
}
"""Per-precision defaults, documented in docs/experiments.md. Cosine alone passes a classifier whose answer
changes on a third of its inputs, so fp16 and int8 also ask the task's own answer (top-1 class) to agree; that
default is enforced on real inputs only (see :func:`effective_thresholds`)."""


def effective_thresholds(precision: str, override: Thresholds | None,
                         input_source: Literal["synthetic", "dataset"]) -> tuple[Thresholds, list[str]]:
    """The thresholds a run is judged by, and what they leave unestablished.

    A spec's per-precision ``override`` is taken as written. The default ``min_top1_agreement`` is enforced on
    a dataset only: on synthetic inputs class scores sit in near-ties, so the argmax flips on noise and the
    figure says little about the task; it is then reported with a warning instead.
    """
    if override is not None:
        return override, []
    default = DEFAULT_THRESHOLDS[precision]
    if input_source == "dataset" or default.min_top1_agreement is None:
        return default, []
    return default.model_copy(update={"min_top1_agreement": None}), [
        f"top-1 agreement measured on synthetic inputs, where near-tied class scores make it noisy: the default "
        f"min_top1_agreement {default.min_top1_agreement} is not enforced; give real inputs (inputs.dataset or "
        f"--dataset) to enforce it, or set accuracy.thresholds.{precision}.min_top1_agreement"]




class InputsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shapes: dict[str, list[PositiveInt]] | None = Field(None, description="Concrete shapes for dynamic inputs.")
    seed: int = Field(DEFAULT_SEED, description="Seed of synthetic inputs (different from the calibration seed).")
    samples: PositiveInt = Field(DEFAULT_SAMPLES, description="How many inputs to compare and cycle through in the benchmark.")
    dataset: str | None = Field(None, description=(
        "Evaluation inputs (smoke run, parity, benchmark): a directory of .npy/.npz, image or 16-bit PCM .wav "
        "files, relative to the spec file."))
    calibration: str | None = Field(None, description=(
        "int8 calibration inputs: a directory like dataset's, relative to the spec file; default: the preset's "
        "calibration.dataset, else seeded synthetic inputs. Keep it apart from dataset: calibrating on the "
        "evaluation files is recorded as a warning."))
    preprocess: dict[str, Preprocess] | None = Field(None, description=(
        "Per image input: how dataset images become the tensor (resize, scale, mean, std, channel_order), the "
        "same for calibration and evaluation; recorded in the manifest and part of the build key."))
    values: dict[str, ValueRule] | None = Field(None, description=(
        "Per-input rules for synthetic values: {value: 16000}, {choice: [8000, 16000]}, {range: [0, 256]}, "
        "{dtype: int}. Also used for calibration, the smoke run and rebuild checks."))


class BenchmarkSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    warmup: int = Field(DEFAULT_WARMUP, ge=0)
    runs: PositiveInt = Field(DEFAULT_RUNS, description="Timed runs (ignored when min_duration_s is set).")
    threads: PositiveInt | None = Field(None, description="intra-op threads; default lets the runtime decide.")
    min_duration_s: float | None = Field(None, gt=0, description=(
        "A time budget instead of a count: run at least this many seconds (and at least min_runs times)."))
    min_runs: PositiveInt = Field(1, description="With min_duration_s: the fewest timed runs.")
    max_cv: float = Field(DEFAULT_MAX_CV, gt=0, description=(
        "Coefficient of variation above which the run is flagged unstable (default 0.05 on CPU)."))
    drift_alpha: float | None = Field(DRIFT_ALPHA, gt=0, lt=1, description=(
        "Significance of the first-half vs second-half rank test that flags drift; null turns the check off."))
    max_host_drift: float | None = Field(HOST_DRIFT_LIMIT, gt=0, description=(
        "How far the host's speed probe may move from the baseline run's and still widen an 'ok' (by at most "
        "this much); beyond it only a change larger than the host's own move is judged (regressed), anything "
        "else is not judged. null ignores the probe (judge on the intervals alone)."))
    budget: dict[LatencyMetric, str] = Field(default_factory=dict, description=(
        "Regression budget against the baseline, e.g. {median: '+10%', p99: '+20%'}; see docs/experiments.md#baselines."))
    require_faster_than_fp32: bool = Field(False, description=(
        "Fail an int8/fp16 item whose speed verdict is 'slower' than the fp32 run of the same model on this host "
        "(docs/experiments.md#speed-verdict); off, the verdict is reported only."))

    @field_validator("budget")
    @classmethod
    def _rules_parse(cls, budget: dict[str, str]) -> dict[str, str]:
        for metric, limit in budget.items():
            try:
                parse_rule(f"{metric}:{limit}", "benchmark.budget")
            except ForgeError as exc:
                raise ValueError(str(exc)) from exc
        return budget

    def rules(self) -> list[Rule]:
        return [parse_rule(f"{metric}:{limit}", "benchmark.budget") for metric, limit in self.budget.items()]


class AccuracySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    thresholds: dict[Precision, Thresholds] = Field(
        default_factory=dict, description="Per-precision overrides of the default thresholds.")
    outputs: dict[str, OutputCheck] = Field(default_factory=dict, description=(
        "Per-output parity settings by output name; outputs not named get the defaults."))
    budget: dict[AccuracyMetric, float] = Field(default_factory=dict, description=(
        "Allowed change against the baseline, e.g. {cosine: -0.001, max_abs_error: 0.01}."))
    diagnose: bool = Field(True, description=(
        "When an int8/fp16 item fails parity, diagnose its build on the run's inputs (inferedgeforge diagnose) "
        "and add the worst tensors to the failure; false skips that work."))

    def rules(self) -> list[Rule]:
        return [Rule(metric, limit, relative=False) for metric, limit in self.budget.items()]

    def override_for(self, precision: str) -> Thresholds | None:
        """The spec's own thresholds for ``precision``; None leaves the defaults (:func:`effective_thresholds`)."""
        return self.thresholds.get(precision)  # type: ignore[call-overload]




class SearchSpec(BaseModel):
    """The budget of the int8 search (``inferedgeforge tune``): it stops at whichever limit comes first."""

    model_config = ConfigDict(extra="forbid")

    max_trials: PositiveInt = Field(DEFAULT_MAX_TRIALS, description="Most trials (real builds) the search runs.")
    timeout_s: float | None = Field(None, gt=0, description=(
        "Wall-clock limit of the whole search, the resulting build included; null: only max_trials limits it."))


class QuantizationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    search: SearchSpec | None = Field(None, description=(
        "Search the spec's static int8 presets for an artifact that passes parity (docs/cli.md#tune); null: "
        "build the presets as they are."))


class ExperimentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="Experiment name; defaults to the file name without .forge.yaml.")
    model: str = Field(description="Source ONNX model, relative to the spec file.")
    presets: list[str] = Field(min_length=1, description="Preset ids, backend/name.")
    description: str | None = None
    inputs: InputsSpec = Field(default_factory=InputsSpec)
    benchmark: BenchmarkSpec = Field(default_factory=BenchmarkSpec)
    accuracy: AccuracySpec = Field(default_factory=AccuracySpec)
    quantization: QuantizationSpec = Field(default_factory=QuantizationSpec)


@dataclass(frozen=True)
class Experiment:
    """A validated spec with its paths resolved and its presets loaded."""

    name: str
    path: Path
    model: Path
    presets: list[Preset]
    spec: ExperimentSpec
    preset_errors: dict[str, str] = field(default_factory=dict)
    """Preset id -> why it could not be loaded; one broken preset never hides the spec's others."""

    @property
    def dataset(self) -> Path | None:
        return (self.path.parent / self.spec.inputs.dataset).resolve() if self.spec.inputs.dataset else None

    @property
    def calibration(self) -> Path | None:
        """``inputs.calibration`` resolved; None leaves calibration to the preset."""
        return (self.path.parent / self.spec.inputs.calibration).resolve() if self.spec.inputs.calibration else None


def load_experiment(path: Path, presets_root: Path | None, backends: BackendCatalog) -> Experiment:
    """Parse and check one spec; every problem is a one-line :class:`SpecError` with file and field."""
    data = load_document(path, "spec", SpecError)
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a spec must be a mapping with at least 'model' and 'presets'")
    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(describe_validation_error(exc, str(path), ExperimentSpec)) from exc
    model = (path.parent / spec.model).resolve()
    if not model.is_file():
        raise SpecError(f"{path}: field 'model': model file not found: {model}")
    if len(set(spec.presets)) != len(spec.presets):
        raise SpecError(f"{path}: field 'presets': a preset is listed twice")
    presets: list[Preset] = []
    errors: dict[str, str] = {}
    for index, preset_id in enumerate(spec.presets):
        try:
            presets.append(load_preset(preset_id, presets_root, backends))
        except PresetError as exc:
            errors[preset_id] = f"{path}: field 'presets.{index}': {exc}"
    for name, directory in (("dataset", spec.inputs.dataset), ("calibration", spec.inputs.calibration)):
        if directory and not (path.parent / directory).is_dir():
            raise SpecError(f"{path}: field 'inputs.{name}': directory not found: {path.parent / directory}")
    return Experiment(name=spec.name or spec_stem(path), path=path, model=model, presets=presets, spec=spec,
                      preset_errors=errors)
