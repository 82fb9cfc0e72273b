"""The diagnosis of an artifact whose toolkit analyses it layer by layer itself (``LayerAnalysable``,
backends/api.py: rknn-toolkit2's ``accuracy_analysis`` on its simulator), in the schema of every diagnosis.

The toolkit's figures are cosines (and euclidean distances), cumulative ("entire") and local ("single"), not SQNR:
a layer diverges when its cosine falls below the cosine ``threshold_db`` stands for (``cosine_threshold``).

A toolkit names a layer after the ONNX tensor it computes (rknn-toolkit2: ``/model.0/conv/Conv_output_0``) or the
node, or either with a suffix of its own for layers it inserts or splits (``output0_int8``, ``..._output_0-rs``,
``..._output_0_conv``). A name is matched exactly (a tensor, then a node), else after stripping up to two such
suffixes (a lowercase segment after ``_`` or ``-``); an unmatched layer is kept under the toolkit's name and counted
in the notes. Nothing else is guessed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

from pytest_inferedgeforge.backends.api import LayerAnalysable, LayerError
from pytest_inferedgeforge.engine.quantization.diagnose import _fused_nodes
from pytest_inferedgeforge.engine.quantization.figures import RANGE_MIXING_RATIO, SENSITIVE_OPS
from pytest_inferedgeforge.engine.quantization.pairing import SourceTensor, _load, source_tensors
from pytest_inferedgeforge.model.defaults import DEFAULT_THRESHOLD_DB
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.hashing import file_digest
from pytest_inferedgeforge.model.inputs import Sample, samples_sha256
from pytest_inferedgeforge.model.layout import format_instant, utc_now
from pytest_inferedgeforge.model.records.diagnosis import Diagnosis, TensorFigure

TOOLKIT_SUFFIX = re.compile(r"[-_][a-z][a-z0-9]*$")
MAX_SUFFIXES = 2
_TOOLKIT_OP = re.compile(r"^ex|\d+$")
"""rknn-toolkit2's own op names: ``exSoftmax13`` is Softmax, ``exSwish`` a fused Sigmoid and Mul."""


def cosine_threshold(threshold_db: float) -> float:
    """The cosine of a signal with noise ``10^(threshold_db/10)`` times weaker, uncorrelated: 14 dB -> 0.981."""
    ratio = 10.0 ** (threshold_db / 10.0)
    return round(math.sqrt(ratio / (1.0 + ratio)), 4)


def map_layer(name: str, by_tensor: dict[str, SourceTensor],
              by_node: dict[str, SourceTensor]) -> tuple[SourceTensor | None, bool]:
    """The source tensor a toolkit layer stands for, and whether a toolkit suffix was stripped to find it."""
    candidate = name
    for stripped in range(MAX_SUFFIXES + 1):
        found = by_tensor.get(candidate) or by_node.get(candidate)
        if found is not None:
            return found, stripped > 0
        shorter = TOOLKIT_SUFFIX.sub("", candidate)
        if shorter in ("", candidate):
            break
        candidate = shorter
    return None, False


def _causes(layer: LayerError, tensor: SourceTensor | None) -> list[str]:
    causes = []
    if layer.channel_ratio is not None and layer.channel_ratio > RANGE_MIXING_RATIO:
        causes.append("range_mixing")
    if (tensor is not None and tensor.op_type in SENSITIVE_OPS) or _TOOLKIT_OP.sub("", layer.op_type) in SENSITIVE_OPS:
        causes.append("sensitive_op")
    return causes


def diagnose_layers(backend: LayerAnalysable, source: Path, artifact: Path, samples: Sequence[Sample], *,
                    precision: str, threshold_db: float = DEFAULT_THRESHOLD_DB) -> Diagnosis:
    """Run the backend's own layer analysis and record it against the source model (see the module's docstring)."""
    if not samples:
        raise ForgeError("a diagnosis needs at least one input sample")
    analysis = backend.layer_analysis(source, artifact, samples)
    tensors = source_tensors(_load(source, "source model").graph)
    order = {tensor.tensor: index for index, tensor in enumerate(tensors)}
    by_tensor = {tensor.tensor: tensor for tensor in tensors}
    by_node = {tensor.node: tensor for tensor in reversed(tensors)}  # a node stands for its first output
    keyed, stripped, unmatched, key = [], [], [], -1
    for layer in analysis.layers:
        if layer.cosine is None and layer.local_cosine is None:
            continue  # fused by the toolkit into the next layer
        tensor, was_stripped = map_layer(layer.layer, by_tensor, by_node)
        key = order[tensor.tensor] if tensor is not None else key
        keyed.append((key, layer, tensor))
        if tensor is None:
            unmatched.append(layer.layer)
        elif was_stripped:
            stripped.append(layer.layer)
    keyed.sort(key=lambda entry: entry[0])  # stable: the toolkit's order among layers of one source tensor
    matched = {tensor.tensor for _, _, tensor in keyed if tensor is not None}
    fused = {tensor.tensor: tensor for tensor in tensors if tensor.tensor not in matched}
    figures = [_figure(layer, tensor, fused) for _, layer, tensor in keyed]
    limit = cosine_threshold(threshold_db)
    notes = list(analysis.notes)
    if stripped:
        notes.append(f"{len(stripped)} toolkit layer(s) matched a source tensor or node after stripping a toolkit "
                     f"suffix, e.g. {', '.join(stripped[:3])}")
    if unmatched:
        notes.append(f"{len(unmatched)} toolkit layer(s) match no source tensor or node and are recorded under the "
                     f"toolkit's name, e.g. {', '.join(unmatched[:3])}")
    notes.append("the toolkit's report does not say which layers it runs in int8: quantized is not set")
    local = [figure for figure in figures if figure.local_cosine is not None and figure.local_cosine < 1.0]
    return Diagnosis(
        created_at=format_instant(utc_now()), source_sha256=file_digest(source), artifact_sha256=file_digest(artifact),
        inputs_sha256=samples_sha256(list(samples)), samples=len(samples), evidence="simulator", precision=precision,
        threshold_db=threshold_db, cosine_threshold=limit, tensors=figures,
        first_divergent=next((f for f in figures if f.cosine is not None and f.cosine < limit), None),
        largest_drop=min(local, key=lambda f: f.local_cosine or 0.0, default=None),
        matched_tensors=len(matched), notes=notes)


def _figure(layer: LayerError, tensor: SourceTensor | None, fused: dict[str, SourceTensor]) -> TensorFigure:
    return TensorFigure(
        node=tensor.node if tensor is not None else layer.layer,
        op_type=tensor.op_type if tensor is not None else layer.op_type,
        tensor=tensor.tensor if tensor is not None else layer.layer,
        cosine=layer.cosine, local_cosine=layer.local_cosine, euclidean=layer.euclidean,
        local_euclidean=layer.local_euclidean, toolkit_layer=layer.layer, toolkit_op_type=layer.op_type,
        causes=_causes(layer, tensor), fused_nodes=_fused_nodes(tensor.parents, fused) if tensor is not None else [])
