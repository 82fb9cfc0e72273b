"""The build plan: everything decided before a toolchain runs, and what ``build --dry-run`` prints.

Planning inspects the model, resolves shapes and checks the preset against its
backend; it raises before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pytest_inferedgeforge.backends.api import Backend
from pytest_inferedgeforge.backends.registry import check_preset, get_backend
from pytest_inferedgeforge.engine.inspection import inspect_source
from pytest_inferedgeforge.engine.quantization.prequantized import refuse_prequantized
from pytest_inferedgeforge.model.calibration import calibration_warnings, dataset_digest
from pytest_inferedgeforge.model.containment import contained
from pytest_inferedgeforge.model.inputs import Sample, ValueRule, check_sample_size, input_samples, samples_sha256
from pytest_inferedgeforge.model.layout import build_dir_name, shapes_tag
from pytest_inferedgeforge.model.onnx_model import ModelInfo, primary_shape_context, resolve_input_shapes
from pytest_inferedgeforge.model.preprocess import Pipelines, check_pipelines
from pytest_inferedgeforge.model.presets import CalibrationSpec, Preset
from pytest_inferedgeforge.model.records.build import Calibration, SmokeRecord
from pytest_inferedgeforge.model.records.paths import project_relative
from pytest_inferedgeforge.model.spec import DEFAULT_SEED


@dataclass
class BuildPlan:
    """Everything decided before the toolchain runs; also what ``build --dry-run`` prints."""

    source: Path
    model: ModelInfo
    preset: Preset
    output_root: Path
    input_shapes: dict[str, list[int]]
    backend: Backend
    input_values: dict[str, ValueRule] | None = None
    """Value rules of synthetic inputs (calibration, smoke run, parity); part of the build key."""
    input_seed: int = DEFAULT_SEED
    """Seed of the smoke run's synthetic input: the first of the parity inputs."""
    input_dataset: Path | None = None
    """When given, the smoke run feeds this dataset's first sample instead."""
    calibration_dataset: Path | None = None
    """int8 calibration data named by the spec (inputs.calibration) or --calibration-dataset; None: the preset's."""
    preprocess: Pipelines | None = None
    """How dataset images become input tensors, for calibration and evaluation alike; part of the build key."""
    model_checked: bool = True
    """False when ``model`` came from the inspection cache (engine/inspection.py): a fresh build re-checks it."""

    @property
    def build_dir(self) -> Path:
        """Inside the output root by construction: the name is sanitised and the result proven contained."""
        name = build_dir_name(self.source, self.preset.target, self.preset.backend, self.preset.name,
                              shapes_tag(self.model, self.input_shapes))
        return contained(self.output_root, name, "build directory")

    @property
    def shape_context(self) -> tuple[int, int, int]:
        return primary_shape_context(self.input_shapes)

    def calibration_spec(self) -> CalibrationSpec:
        return self.preset.calibration or CalibrationSpec()

    def calibration_dir(self) -> Path | None:
        """The calibration dataset: the one the spec or CLI named, else the preset's; None: synthetic."""
        return self.calibration_dataset or self.calibration_spec().dataset_dir()

    def calibration_samples(self) -> tuple[list[Sample], Calibration]:
        spec = self.calibration_spec()
        directory = self.calibration_dir()
        samples, source = input_samples(self.model, self.input_shapes, count=spec.samples, seed=spec.seed,
                                        dataset=directory, values=self.input_values, preprocess=self.preprocess)
        named: dict[str, object] = {"seed": spec.seed}
        if self.calibration_dataset is not None:
            named = {"dataset": project_relative(self.calibration_dataset, self.build_dir), "named_by": "inputs"}
        elif spec.dataset:
            named = {"dataset": spec.dataset, "named_by": "preset"}
        record = Calibration.model_validate({
            "source": source, "samples": len(samples), "sha256": samples_sha256(samples), **named,
            "dataset_sha256": dataset_digest(directory) if directory is not None else None,
            "warnings": calibration_warnings(source, directory, self.input_dataset) or None})
        return samples, record

    def smoke_sample(self) -> tuple[Sample, SmokeRecord]:
        """The smoke run's input: the first sample parity will use, and its record (runner filled in later)."""
        samples, source = input_samples(self.model, self.input_shapes, count=1, seed=self.input_seed,
                                        dataset=self.input_dataset, values=self.input_values,
                                        preprocess=self.preprocess)
        sample = samples[0]
        return sample, SmokeRecord(detail="not run", input_source=source, inputs_sha256=samples_sha256([sample]),
                                   dataset=project_relative(self.input_dataset, self.build_dir) if self.input_dataset
                                   else None)


def plan_build(
    model_path: Path,
    preset: Preset,
    output_root: Path,
    *,
    input_shapes: dict[str, list[int]] | None = None,
    input_values: dict[str, ValueRule] | None = None,
    input_seed: int = DEFAULT_SEED,
    input_dataset: Path | None = None,
    calibration_dataset: Path | None = None,
    preprocess: Pipelines | None = None,
) -> BuildPlan:
    """Inspect the model and resolve shapes; raises before anything is written."""
    check_preset(preset)
    model, checked = inspect_source(model_path, output_root)
    refuse_prequantized(model, preset, get_backend(preset.backend))
    requested = dict(preset.input_shapes or {})
    requested.update(input_shapes or {})
    shapes = resolve_input_shapes(model, requested)
    check_sample_size(model, shapes)
    check_pipelines(preprocess, [tensor.name for tensor in model.inputs])
    plan = BuildPlan(
        source=model_path.resolve(), model=model, preset=preset, output_root=output_root,
        input_shapes=shapes, backend=get_backend(preset.backend),
        input_values=input_values or None, input_seed=input_seed, input_dataset=input_dataset, model_checked=checked,
        calibration_dataset=calibration_dataset, preprocess=preprocess or None,
    )
    _ = plan.build_dir  # refuses a name that would leave the output root, before anything is written
    return plan
