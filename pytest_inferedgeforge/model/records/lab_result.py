"""The structured result InferEdgeLab's ``compare`` reads (see shared lab-result-format.md).

One flat JSON object per run. It carries ``system`` and ``run_config`` so Lab
does not flag it as a legacy result, and ``compare_key``/``backend_key`` so
``compare-runtime-dir`` can group it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class StructuredResult(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(description="Source model file name, e.g. resnet18.onnx")
    engine: str
    device: str
    precision: str
    batch: int
    height: int
    width: int
    mean_ms: float | None
    p99_ms: float | None
    timestamp: str
    source_report_path: str | None = None
    system: dict[str, Any]
    run_config: dict[str, Any]
    accuracy: dict[str, Any] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)
    runtime_role: str = "runtime-result"
    compare_key: str | None = None
    backend_key: str | None = None
    engine_backend: str | None = None
    device_name: str | None = None
    status: str | None = None
    success: bool | None = None
    fps_value: float | None = None


def result_file_name(model: str, engine: str, device: str, precision: str, batch: int, height: int, width: int,
                     stamp: str) -> str:
    """Lab's naming: ``<model>__<engine>__<device>__<precision>__b1__h224w224__<YYYYMMDD-HHMMSS>.json``."""
    return f"{model}__{engine}__{device}__{precision}__b{batch}__h{height}w{width}__{stamp}.json"
