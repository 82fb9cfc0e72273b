"""``diagnose``: which tensor of an int8 or fp16 artifact departs from its source model, and why.

Every float tensor of the source and its counterpart in the artifact (engine/quantization/pairing.py) are exposed
by a backend that can (``Diagnosable``, backends/api.py) and run on the same inputs; figures.py turns them into
per-tensor figures and cause tags. The ranking (``worst_nodes``) is what the mixed-precision search keeps in float.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import zip_longest
from pathlib import Path

from pytest_inferedgeforge.backends.api import Diagnosable
from pytest_inferedgeforge.backends.registry import get_backend
from pytest_inferedgeforge.engine.quantization.figures import TensorStats
from pytest_inferedgeforge.engine.quantization.pairing import SourceTensor, pair_models
from pytest_inferedgeforge.model.defaults import DEFAULT_THRESHOLD_DB
from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.model.hashing import file_digest
from pytest_inferedgeforge.model.inputs import Sample, samples_sha256
from pytest_inferedgeforge.model.layout import format_instant, utc_now
from pytest_inferedgeforge.model.records.diagnosis import Diagnosis, TensorFigure

REFERENCE_CAP_DB = 60.0
"""A tensor read from exact (or near-exact) inputs is judged against 60 dB, about a clean fp16 cast, so the first
layer is not charged with the whole distance from an exact input in ``largest_drop``."""


def diagnose_onnxruntime(source: Path, artifact: Path, samples: list[Sample], *,
                         threshold_db: float = DEFAULT_THRESHOLD_DB) -> Diagnosis:
    """Diagnose an ONNX artifact against its ONNX source, both run by ONNX Runtime on ``samples``."""
    backend = get_backend("onnxruntime")
    if not isinstance(backend, Diagnosable):  # pragma: no cover - the embedded backend implements it
        raise ForgeError("the onnxruntime backend cannot expose intermediate tensors")
    return diagnose_onnx(backend, source, artifact, samples, threshold_db=threshold_db)


def diagnose_onnx(backend: Diagnosable, source: Path, artifact: Path, samples: Sequence[Sample], *,
                  threshold_db: float = DEFAULT_THRESHOLD_DB) -> Diagnosis:
    """Diagnose any ONNX artifact whose backend can expose its tensors (see the module's docstring)."""
    if not samples:
        raise ForgeError("a diagnosis needs at least one input sample")
    pairing = pair_models(source, artifact)
    stats = [TensorStats(pair) for pair in pairing.pairs]
    source_names = [pair.source.tensor for pair in pairing.pairs]
    artifact_names = [pair.counterpart for pair in pairing.pairs]
    for source_values, artifact_values in zip(backend.intermediate_tensors(source, source_names, samples),
                                              backend.intermediate_tensors(artifact, artifact_names, samples),
                                              strict=True):
        for stat in stats:
            x, y = source_values.get(stat.pair.source.tensor), artifact_values.get(stat.pair.counterpart)
            if x is not None and y is not None and x.dtype.kind == "f":
                stat.add(x, y)
    fused = {tensor.tensor: tensor for tensor in pairing.unmatched}
    figures, quantized, notes = _figures(stats, threshold_db, fused)
    figures = _with_drops(figures, {p.source.tensor: p.source.parents for p in pairing.pairs})
    if pairing.unmatched:
        notes.append(f"{len(pairing.unmatched)} source tensor(s) have no counterpart in the artifact (fused or "
                     f"renamed by the toolchain), e.g. {', '.join(t.tensor for t in pairing.unmatched[:3])}")
    notes.extend(pairing.notes)
    return Diagnosis(
        created_at=format_instant(utc_now()), source_sha256=file_digest(source), artifact_sha256=file_digest(artifact),
        inputs_sha256=samples_sha256(list(samples)), samples=len(samples), precision=_precision(stats),
        threshold_db=threshold_db, tensors=figures,
        first_divergent=next((f for f in figures if f.sqnr_db is not None and f.sqnr_db < threshold_db), None),
        largest_drop=max((f for f in figures if (f.sqnr_drop_db or 0.0) > 0), key=lambda f: f.sqnr_drop_db or 0.0,
                         default=None),
        matched_tensors=len(figures), quantized_tensors=quantized, notes=notes)


def _fused_nodes(parents: tuple[str, ...], fused: dict[str, SourceTensor]) -> list[str]:
    """The nodes of unmatched tensors feeding ``parents``, through chains of them, nearest first."""
    found: list[str] = []
    pending = [name for name in parents if name in fused]
    while pending:
        tensor = fused[pending.pop(0)]
        if tensor.node not in found and tensor.op_type != "Input":
            found.append(tensor.node)
            pending.extend(name for name in tensor.parents if name in fused)
    return found


def _figures(stats: list[TensorStats], threshold_db: float,
             fused: dict[str, SourceTensor]) -> tuple[list[TensorFigure], int, list[str]]:
    figures, quantized, problems = [], 0, []
    for stat in stats:
        if stat.problems:
            problems.append(f"{stat.pair.source.tensor}: {stat.problems[0]}")
            continue
        if stat.signal is None:  # not a float tensor, or not exposed
            continue
        quantized += stat.quantized
        source = stat.pair.source
        figures.append(TensorFigure(
            node=source.node, op_type=source.op_type, tensor=source.tensor, sqnr_db=_round(stat.sqnr_db()),
            local_sqnr_db=_round(stat.local_sqnr_db()), cosine=stat.cosine(),
            max_abs_error=None if stat.non_finite else stat.max_abs_error,
            causes=stat.causes(source.op_type, threshold_db), quantized=stat.quantized,
            fused_nodes=_fused_nodes(source.parents, fused)))
    notes = [f"{len(problems)} paired tensor(s) could not be compared, e.g. {problems[0]}"] if problems else []
    return figures, quantized, notes


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3) + 0.0  # + 0.0: no "-0.0" in the record


def _precision(stats: list[TensorStats]) -> str:
    if any(stat.pair.quantizer is not None for stat in stats):
        return "int8"
    return "fp16" if any(stat.half for stat in stats) else "fp32"


def _with_drops(figures: list[TensorFigure], parents: dict[str, tuple[str, ...]]) -> list[TensorFigure]:
    """Each figure with ``sqnr_drop_db``: how far its SQNR falls below the worst of the tensors it is computed from."""
    by_tensor = {figure.tensor: figure for figure in figures}
    dropped = []
    for figure in figures:
        if figure.sqnr_db is not None:
            known = [by_tensor[p].sqnr_db for p in parents.get(figure.tensor, ()) if p in by_tensor]
            reference = min([REFERENCE_CAP_DB, *(value for value in known if value is not None)])
            figure = figure.model_copy(update={"sqnr_drop_db": _round(reference - figure.sqnr_db)})
        dropped.append(figure)
    return dropped


def _badness(figure: TensorFigure) -> tuple[float, float]:
    """Sort key, worst first: the quantizer's own error where it could be measured, else the cumulative error
    (a graph output whose quantizer cannot be paired is judged by what it delivers, never ranked last)."""
    inf = float("inf")
    cumulative = figure.sqnr_db if figure.sqnr_db is not None else inf
    return (figure.local_sqnr_db if figure.local_sqnr_db is not None else cumulative, cumulative)


def worst_nodes(diagnosis: Diagnosis) -> list[str]:
    """Source-model node names, worst first: the nodes whose output is quantized or diverges, ranked two ways and
    taken alternately, as neither is always right: by the error their own quantizer adds (:func:`_badness`), and
    by how much error enters the network there (``sqnr_drop_db``; on PP-OCRv4's detector the largest drop, 11 dB
    at its second depthwise conv, is where keeping tensors in float helps most, while the worst local quantizers
    sit in squeeze-excitation branches that barely matter). Graph inputs and unnamed nodes are left out: no node
    filter could name them."""
    candidates = [figure for figure in diagnosis.tensors
                  if figure.op_type != "Input"
                  and (figure.quantized
                       or (figure.sqnr_db is not None and figure.sqnr_db < diagnosis.threshold_db))]
    by_local = sorted(candidates, key=_badness)
    by_drop = sorted((f for f in candidates if (f.sqnr_drop_db or 0.0) > 0), key=lambda f: -(f.sqnr_drop_db or 0.0))
    alternating = [figure for pair in zip_longest(by_local, by_drop) for figure in pair if figure is not None]
    return list(dict.fromkeys(node for figure in alternating for node in (figure.node, *figure.fused_nodes)
                              if not node.startswith("(")))


def range_mixing_nodes(diagnosis: Diagnosis) -> list[str]:
    """The source nodes whose output diverges (below the threshold) with ``range_mixing``: one activation scale over
    channels of very different ranges, as a detection head's Concat of pixel boxes and [0, 1] scores, or the Sigmoid
    whose rare-class scores round to zero. Keeping one of them in float only moves the shared scale to its neighbour,
    so the search keeps them in float together, in one trial."""
    return list(dict.fromkeys(
        figure.node for figure in diagnosis.tensors
        if "range_mixing" in figure.causes and figure.op_type != "Input" and not figure.node.startswith("(")
        and figure.sqnr_db is not None and figure.sqnr_db < diagnosis.threshold_db))
