"""The RKNN side of the int8 search (engine/quantization/tune.py): what differs when the preset is rknn int8.

rknn-toolkit2 keeps layers in float16 through hybrid quantization (``hybrid_quantization_step1/2`` with the
quantization config's ``custom_quantize_layers``, backends/rknn/worker.py); the backend does that for any build
whose ``build_options.float_layers`` is non-empty, so a trial, and the resulting build, is an ordinary build of the
preset with ``float_layers`` set, and ``rebuild-from-manifest`` reproduces it with no search.

The ranking is the toolkit's own ``accuracy_analysis`` (``LayerAnalysable``, what ``diagnose`` reports), by toolkit
layer name, which is also the name ``custom_quantize_layers`` takes: layers whose widest channel range is more than
2^7 times their narrowest (``range_mixing``: a pooled cosine hides channels that collapsed beside a loud one)
first, the widest spread first, then the lowest "single" (local) cosine, then the lowest "entire" cosine. There
is no calibration stage: the search goes from the preset as is straight to layers kept in float, then the revert
pass.

Every figure comes from the toolkit's simulator on x86 (a re-conversion of the recorded recipe: rknn-toolkit2's
output is not byte-deterministic), so the outcome says "on the simulator", the trials' latencies are the
simulator's (no fp32 comparison), and among passing trials the one with the fewest float layers wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_inferedgeforge.backends.api import LayerAnalysable, LayerError, parse_options
from pytest_inferedgeforge.backends.rknn.backend import RknnOptions
from pytest_inferedgeforge.engine.quantization.figures import RANGE_MIXING_RATIO
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.inputs import Sample
from pytest_inferedgeforge.model.presets import Preset

BACKEND = "rknn"
FLOAT_OPTION = "float_layers"
WHERE = " on the simulator"
"""What the outcome line says of every RKNN figure on x86."""
TOOLKIT_ONLY_OPS = frozenset({"Input", "exDataConvert"})
"""Toolkit layers no hybrid configuration keeps in float: the graph input and the toolkit's own dtype conversions."""


def is_rknn(preset: Preset) -> bool:
    return preset.backend == BACKEND


def float_option(preset: Preset) -> str:
    """The build option that names what a trial keeps in float: rknn ``float_layers``, else ``nodes_to_exclude``."""
    return FLOAT_OPTION if is_rknn(preset) else "nodes_to_exclude"


def rknn_base_options(preset: Preset) -> dict[str, Any]:
    """The preset's build options when the search applies to it: rknn int8 with the toolkit's identity mean/std
    (the search compares the artifact with the source model fed the same tensors)."""
    if preset.precision != "int8":
        raise ForgeError(f"tune searches int8 presets; {preset.name} is rknn {preset.precision}: try --preset "
                         "rknn/rk3588_int8")
    options = parse_options(RknnOptions, preset)
    for key, given, identity in (("mean_values", options.mean_values, 0.0), ("std_values", options.std_values, 1.0)):
        if given is not None and any(value != identity for values in given for value in values):
            raise ForgeError(f"tune compares the RKNN artifact with the source model on the same inputs; {preset.name} "
                             f"sets build_options.{key}: put the normalisation in the model, or tune a preset without it")
    return dict(preset.build_options)


def _badness(layer: LayerError) -> tuple[float, float, float]:
    ratio = layer.channel_ratio or 0.0
    local = layer.local_cosine if layer.local_cosine is not None else 1.0
    entire = layer.cosine if layer.cosine is not None else 1.0
    return (-ratio if ratio > RANGE_MIXING_RATIO else 0.0, local, entire)


def rank_layers(backend: object, source: Path, artifact: Path, samples: Sequence[Sample]) -> list[str]:
    """Toolkit layer names of ``artifact``, worst first (see the module's docstring), from the toolkit's analysis."""
    if not isinstance(backend, LayerAnalysable):
        raise ForgeError(f"the {getattr(backend, 'name', '?')} backend has no layer analysis to rank layers by")
    analysis = backend.layer_analysis(source, artifact, samples)
    candidates = [layer for layer in analysis.layers if layer.op_type not in TOOLKIT_ONLY_OPS
                  and (layer.cosine is not None or layer.local_cosine is not None)]  # no figures: fused away
    candidates.sort(key=_badness)
    return list(dict.fromkeys(layer.layer for layer in candidates))
