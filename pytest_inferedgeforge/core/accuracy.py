"""Accuracy parity: does the artifact compute what the source model computes?

The reference is the source ONNX run in fp32 by ONNX Runtime on CPU. Both see
the same inputs. Per output Forge reports cosine similarity, max and mean
absolute error and, for class-score outputs (rank 2, at least two classes),
top-1 agreement (same argmax) and top-5 agreement (the reference's top-1 is in
the artifact's top 5). Thresholds decide pass or fail; every figure is kept.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from ..backends.base import Runner
from .inputs import Sample
from .spec import Thresholds

ACCURACY_EVIDENCE_SCHEMA_VERSION = "inferedgeforge-accuracy-evidence-v1"
REFERENCE_DESCRIPTION = "source model, fp32, onnxruntime CPUExecutionProvider"


class OutputParity(BaseModel):
    name: str
    shape: list[int]
    cosine: float
    max_abs_error: float
    mean_abs_error: float
    top1_agreement: float | None = None
    top5_agreement: float | None = None


class ParityResult(BaseModel):
    samples: int
    input_source: Literal["synthetic", "dataset"]
    inputs_sha256: str
    reference: str = REFERENCE_DESCRIPTION
    candidate: str
    outputs: list[OutputParity]
    min_cosine: float
    max_abs_error: float
    top1_agreement: float | None = None
    thresholds: Thresholds
    passed: bool
    failures: list[str] = Field(default_factory=list)


class AccuracyEvidence(BaseModel):
    """``accuracy_evidence.json``: parity figures bound to the exact artifact they describe."""

    schema_version: str = ACCURACY_EVIDENCE_SCHEMA_VERSION
    build_id: str
    build_key: str | None = None
    preset_name: str
    precision: str
    source_sha256: str | None
    artifact_sha256: str
    created_at: str
    parity: ParityResult


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    norm = np.linalg.norm(a64) * np.linalg.norm(b64)
    if norm == 0:
        return 1.0 if np.array_equal(a64, b64) else 0.0
    return float(np.dot(a64, b64) / norm)


def compare_outputs(name: str, reference: list[np.ndarray], candidate: list[np.ndarray]) -> OutputParity:
    ref = np.concatenate([np.asarray(r, dtype=np.float64).reshape(1, -1) if r.ndim == 0 else r for r in reference])
    got = np.concatenate([np.asarray(c, dtype=np.float64).reshape(1, -1) if c.ndim == 0 else c for c in candidate])
    if ref.shape != got.shape:
        raise ValueError(f"output '{name}' has shape {list(got.shape)} but the source model gives {list(ref.shape)}")
    diff = np.abs(ref.astype(np.float64) - got.astype(np.float64))
    parity = OutputParity(
        name=name, shape=list(reference[0].shape), cosine=round(_cosine(ref, got), 8),
        max_abs_error=float(diff.max()) if diff.size else 0.0, mean_abs_error=float(diff.mean()) if diff.size else 0.0,
    )
    if ref.ndim == 2 and ref.shape[1] >= 2:
        ref_top1 = ref.argmax(axis=1)
        parity.top1_agreement = float(np.mean(ref_top1 == got.argmax(axis=1)))
        k = min(5, ref.shape[1])
        top5 = np.argsort(-got, axis=1)[:, :k]
        parity.top5_agreement = float(np.mean([ref_top1[i] in top5[i] for i in range(len(ref_top1))]))
    return parity


def judge(outputs: list[OutputParity], thresholds: Thresholds) -> list[str]:
    failures = []
    for output in outputs:
        if thresholds.min_cosine is not None and output.cosine < thresholds.min_cosine:
            failures.append(f"output '{output.name}': cosine {output.cosine:.6f} < min_cosine {thresholds.min_cosine}")
        if thresholds.max_abs_error is not None and output.max_abs_error > thresholds.max_abs_error:
            failures.append(f"output '{output.name}': max_abs_error {output.max_abs_error:.6g} > "
                            f"max_abs_error {thresholds.max_abs_error}")
        if (thresholds.min_top1_agreement is not None and output.top1_agreement is not None
                and output.top1_agreement < thresholds.min_top1_agreement):
            failures.append(f"output '{output.name}': top-1 agreement {output.top1_agreement:.3f} < "
                            f"min_top1_agreement {thresholds.min_top1_agreement}")
    return failures


def check_parity(
    reference_outputs: list[list[np.ndarray]],
    candidate_outputs: list[list[np.ndarray]],
    output_names: list[str],
    *,
    thresholds: Thresholds,
    input_source: Literal["synthetic", "dataset"],
    inputs_sha256: str,
    candidate: str,
) -> ParityResult:
    """Compare per-sample outputs of the reference and the candidate, output by output."""
    outputs = [
        compare_outputs(name, [sample[index] for sample in reference_outputs],
                        [sample[index] for sample in candidate_outputs])
        for index, name in enumerate(output_names)
    ]
    failures = judge(outputs, thresholds)
    top1 = [o.top1_agreement for o in outputs if o.top1_agreement is not None]
    return ParityResult(
        samples=len(reference_outputs), input_source=input_source, inputs_sha256=inputs_sha256, candidate=candidate,
        outputs=outputs, min_cosine=min(o.cosine for o in outputs),
        max_abs_error=max(o.max_abs_error for o in outputs), top1_agreement=min(top1) if top1 else None,
        thresholds=thresholds, passed=not failures, failures=failures,
    )


def run_all(runner: Runner, samples: list[Sample]) -> list[list[np.ndarray]]:
    return [runner.run(sample) for sample in samples]
