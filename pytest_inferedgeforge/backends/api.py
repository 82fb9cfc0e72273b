"""The Backend/Runner API: the one small protocol every toolchain implements.

A backend declares what it produces (name, artifact format, precisions, an
options model, the help of its pytest marker) and answers three questions: can
it run here (and if not, exactly why), how to turn a source model into an
artifact, and how to load an artifact for inference. Everything else (hashing,
records, caching, checks) belongs to the engine.

A third-party backend is a package: it implements :class:`Backend` and names
its class in the ``inferedgeforge.backends`` entry-point group (see
``registry.py`` and docs/architecture.md#adding-a-backend).

This module is the one surface a backend imports from Forge: ``__all__`` lists it (the protocols, the records a
build returns, the errors a backend raises, the helpers it may use, the ONNX Runtime reference runner). Forge's own
backends and the stand-in test backend import nothing else of Forge outside their own modules
(tests/test_architecture.py checks it), and the engine and handoff name no concrete backend (import-linter).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from pytest_inferedgeforge.model.errors import (
    BuildFailed,
    ForgeError,
    ModelError,
    PresetError,
    RunnerError,
    ToolchainUnavailable,
    describe_validation_error,
    first_line,
)
from pytest_inferedgeforge.model.hashing import file_digest
from pytest_inferedgeforge.model.precision import PRECISIONS, Precision
from pytest_inferedgeforge.model.presets import Preset
from pytest_inferedgeforge.model.records.build import Calibration, ToolCall, ToolchainComponent
from pytest_inferedgeforge.model.records.paths import locate_source, source_reference

if TYPE_CHECKING:
    import numpy as np

    from pytest_inferedgeforge.model.inputs import Sample
    from pytest_inferedgeforge.model.onnx_model import ModelInfo
    from pytest_inferedgeforge.model.provenance import python_component
    from pytest_inferedgeforge.model.quant_audit import (
        QUANTIZED_OP_TYPES,
        audit_quantization,
        constants_to_initializers,
        float16_overflows,
    )

_LAZY = {
    "Sample": "pytest_inferedgeforge.model.inputs",
    "ModelInfo": "pytest_inferedgeforge.model.onnx_model",
    "python_component": "pytest_inferedgeforge.model.provenance",
    "QUANTIZED_OP_TYPES": "pytest_inferedgeforge.model.quant_audit",
    "audit_quantization": "pytest_inferedgeforge.model.quant_audit",
    "constants_to_initializers": "pytest_inferedgeforge.model.quant_audit",
    "float16_overflows": "pytest_inferedgeforge.model.quant_audit",
}
"""Names of the surface whose modules import numpy or the provenance models: loaded on first use, so reading the
backend catalog (``list-presets``, preset validation) imports no numpy (bench/bench_startup.py cli). A backend
imports them inside the function that uses them, or under ``TYPE_CHECKING`` for annotations."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "PRECISIONS", "QUANTIZED_OP_TYPES", "Availability", "Backend", "BuildFailed", "BuildOutput", "BuildRequest",
    "BuildsPrequantized", "Calibration", "Diagnosable", "ForgeError", "InstallableBackend", "LayerAnalysable",
    "LayerAnalysis", "LayerError", "ModelError", "ModelInfo", "Precision", "PreparesReference", "Preset",
    "PresetError", "ReferenceRunner", "Runner", "RunnerError", "Sample", "ToolCall", "ToolchainComponent",
    "ToolchainUnavailable", "audit_quantization", "constants_to_initializers", "file_digest", "first_line",
    "float16_overflows", "locate_source", "parse_options", "prequantized_precisions", "python_component",
    "reference_runner", "source_reference",
]


@dataclass(frozen=True)
class Availability:
    ok: bool
    versions: dict[str, str] = field(default_factory=dict)
    components: dict[str, ToolchainComponent] = field(default_factory=dict)
    """What each ``versions`` entry is (a Python distribution, a system toolchain, a host fact, a location), for the
    provenance; an entry without one is named in no dependency (docs/provenance.md)."""
    reason: str | None = None
    """Why the toolchain cannot run here, precise enough to fix; None when ok."""
    location: str | None = None
    """Where the toolchain lives (a venv, a binary), for ``toolchain list``; None: this environment."""


@dataclass
class BuildRequest:
    source: Path
    model: ModelInfo
    preset: Preset
    input_shapes: dict[str, list[int]]
    work_dir: Path
    """Where the backend writes its artifact(s); the core moves the directory into place."""
    calibration_samples: Callable[[], tuple[list[Sample], Calibration]]
    """Calibration inputs, produced on demand so backends that do not quantize never pay for them."""
    log: Callable[[str], None]


@dataclass
class BuildOutput:
    artifacts: list[Path]
    calls: list[ToolCall]
    calibration: Calibration | None = None
    details: dict[str, Any] = field(default_factory=dict)
    quantization: dict[str, Any] | None = None
    """The artifact's quantization audit (int8 builds): see model/quant_audit.py."""
    warnings: list[str] = field(default_factory=list)
    """What the toolchain did silently that a reviewer must know, e.g. clamped fp16 weights."""


class Runner(Protocol):
    """A loaded artifact, ready to run. Whoever loads one closes it (fixtures and runs do)."""

    description: str
    """Where it runs, e.g. "onnxruntime CPUExecutionProvider" or "rknn simulator"."""
    settings: dict[str, Any]
    """Thread and provider settings, recorded with every benchmark."""
    evidence: str
    """What the figures are measured on: "artifact" (its bytes), or a label saying what else, such as a
    simulator's re-conversion of the recorded recipe; recorded with every run and parity check."""

    def run(self, feeds: Sample) -> list[np.ndarray]: ...

    def close(self) -> None:
        """Release the session or worker process; safe to call twice."""


@runtime_checkable
class PreparesReference(Protocol):
    """A runner whose toolchain preprocesses inputs itself (RKNN's mean/std): parity feeds the source model the
    same data by passing each sample through ``prepare_reference`` first (engine/runs.py)."""

    def prepare_reference(self, sample: Sample) -> Sample: ...


class ReferenceRunner(Runner, Protocol):
    """The source model run by ONNX Runtime on CPU, which every parity check compares an artifact with."""

    def output_names(self) -> list[str]:
        """The model's output names, in the order ``run`` returns them."""
        ...


def reference_runner(model: Path, threads: int | None = None) -> ReferenceRunner:
    """``model`` loaded as the parity reference (ONNX Runtime, CPU); raises ``RunnerError`` when it does not load.
    A backend whose artifact is an ONNX model ORT runs as it is (the stand-in) may return it from ``load``."""
    from pytest_inferedgeforge.backends.ort_runner import OrtRunner

    return OrtRunner(model, threads)


class Backend(Protocol):
    name: str
    """The preset ``backend`` value and the pytest marker."""
    artifact_filename: str
    artifact_format: str
    """The preset ``artifact_format`` value this backend writes."""
    precisions: tuple[str, ...]
    """Precisions it can produce; presets asking for another are refused, not faked."""
    options_model: type[BaseModel]
    """The pydantic model of its preset ``build_options`` (``precision`` included)."""
    marker_help: str
    """Help text of its pytest marker (``pytest --markers``)."""

    def available(self) -> Availability: ...

    def build(self, request: BuildRequest) -> BuildOutput: ...

    def load(self, artifact: Path, *, threads: int | None = None) -> Runner: ...


@runtime_checkable
class BuildsPrequantized(Protocol):
    """A backend that builds an already-quantized source (QDQ/QLinear ops inside) itself, for the precisions it
    names; other reduced-precision presets of such a source are refused at plan time
    (engine/quantization/prequantized.py)."""

    prequantized_precisions: tuple[str, ...]


def prequantized_precisions(backend: Backend) -> tuple[str, ...]:
    """The precisions ``backend`` builds an already-quantized source in; none unless it is :class:`BuildsPrequantized`."""
    return tuple(backend.prequantized_precisions) if isinstance(backend, BuildsPrequantized) else ()


@runtime_checkable
class InstallableBackend(Protocol):
    """A backend whose toolchain Forge installs itself (``inferedgeforge toolchain install NAME``)."""

    def install(self, progress: Callable[[str], None]) -> Availability: ...


@runtime_checkable
class Diagnosable(Protocol):
    """A backend that can expose every intermediate tensor of a model it runs (the source or its artifact), so the
    engine can pair them and say which layer of an artifact departs from its source (engine/quantization/)."""

    def intermediate_tensors(self, model: Path, names: Sequence[str],
                             samples: Sequence[Sample]) -> Iterator[dict[str, np.ndarray]]:
        """For each sample in turn, the named tensors of ``model`` run on it (names it cannot expose are left out);
        raise ``RunnerError`` when the model does not load or run."""
        ...


@dataclass(frozen=True)
class LayerError:
    """One layer of a toolkit's own accuracy analysis, named as the toolkit names it: its output against the float
    model's, cumulative (every layer up to here) and local (this layer alone, fed the float model's inputs)."""

    layer: str
    op_type: str
    """The toolkit's op type (often a fused one, such as rknn's exSwish)."""
    cosine: float | None
    euclidean: float | None
    local_cosine: float | None
    local_euclidean: float | None
    channel_ratio: float | None = None
    """Widest over narrowest channel range (axis 1) of the float output, where the toolkit dumps it."""


@dataclass
class LayerAnalysis:
    layers: list[LayerError]
    """In the toolkit's execution order; layers it fused into the next one have no figures."""
    evidence: str
    """"simulator" where the toolkit simulated the model rather than ran the artifact's bytes."""
    notes: list[str] = field(default_factory=list)


@runtime_checkable
class LayerAnalysable(Protocol):
    """A backend whose toolkit analyses a quantized model layer by layer itself (rknn-toolkit2's
    ``accuracy_analysis``), where its tensors cannot be exposed to the engine; the engine maps the layers back to
    the source model's nodes (engine/quantization/layers.py)."""

    def layer_analysis(self, source: Path, artifact: Path, samples: Sequence[Sample]) -> LayerAnalysis:
        """Per-layer figures averaged over ``samples``; raise ``RunnerError`` when the toolkit fails."""
        ...


OptionsT = TypeVar("OptionsT", bound=BaseModel)


def parse_options(model: type[OptionsT], preset: Preset) -> OptionsT:
    """A preset's ``build_options`` as the backend's options model; a bad key is a one-line :class:`PresetError`."""
    try:
        return model.model_validate(preset.build_options)
    except ValidationError as exc:
        raise PresetError(describe_validation_error(exc, f"preset {preset.name} build_options")) from exc
