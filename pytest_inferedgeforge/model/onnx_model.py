"""What Forge reads from an ONNX file: validity, inputs, opset and external data.

Builds, shapes and calibration all start from the model's real interface, so a
preset never has to restate what the file already says, and a file that is not
ONNX is refused before any toolchain sees it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:  # onnx is imported where it is used: commands that only read records never load it
    import onnx

from pytest_inferedgeforge.model.errors import ModelError, first_line
from pytest_inferedgeforge.model.quant_audit import quantized_op_counts


class InputRecordLike(Protocol):
    """Anything naming an input and its dtype string: a TensorInfo, or an InputRecord read from a manifest."""

    @property
    def name(self) -> str: ...

    @property
    def dtype(self) -> str: ...


Dim = int | str | None
"""A model dimension: a fixed size, a symbolic name, or unknown."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    dims: tuple[Dim, ...]

    @property
    def is_static(self) -> bool:
        return all(isinstance(dim, int) and dim > 0 for dim in self.dims)

    def describe_dims(self) -> str:
        return "[" + ", ".join("?" if dim is None else str(dim) for dim in self.dims) + "]"


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    opset: int
    ir_version: int
    producer: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    external_data: tuple[Path, ...]
    """External-data files, as resolved paths inside the model's directory."""
    quantized_ops: dict[str, int] = field(default_factory=dict)
    """Quantized ops the source already holds, by op type (QDQ, QLinear*, *Integer; model/quant_audit.py): a
    non-empty count marks an already-quantized model, which is built as it is or refused (docs/presets.md)."""


def _tensor_info(value: onnx.ValueInfoProto) -> TensorInfo:
    import onnx

    tensor_type = value.type.tensor_type
    dims: list[Dim] = []
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value") and dim.dim_value > 0:
            dims.append(int(dim.dim_value))
        elif dim.HasField("dim_param") and dim.dim_param:
            dims.append(dim.dim_param)
        else:
            dims.append(None)
    dtype = str(onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)) if tensor_type.elem_type else "unknown"
    return TensorInfo(name=value.name, dtype=dtype, dims=tuple(dims))


def _external_data_files(model: onnx.ModelProto, model_dir: Path) -> tuple[Path, ...]:
    """Resolve every external-data location and refuse any that leaves the model's directory."""
    from onnx.external_data_helper import uses_external_data

    root = model_dir.resolve()
    files: dict[Path, None] = {}
    for tensor in _all_initializers(model):
        if not uses_external_data(tensor):
            continue
        location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "")
        resolved = (root / location).resolve()
        if not location or not resolved.is_relative_to(root):
            raise ModelError(f"external data location '{location}' of tensor '{tensor.name}' escapes {root}")
        if not resolved.is_file():
            raise ModelError(f"external data file '{location}' of tensor '{tensor.name}' not found next to the model")
        files[resolved] = None
    return tuple(files)


def _all_initializers(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                tensors.append(attribute.t)
    return tensors


def inspect_model(path: Path) -> ModelInfo:
    """Load and check an ONNX file, or raise :class:`ModelError` saying why it is unusable."""
    import onnx

    if not path.exists():
        raise ModelError(f"Model file not found: {path}")
    if not path.is_file():
        raise ModelError(f"Model path is not a file: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several unrelated types for garbage bytes
        raise ModelError(f"{path} is not a valid ONNX model: {first_line(exc, 300)}") from exc
    if not model.graph.node or not model.opset_import:
        raise ModelError(f"{path} is not a valid ONNX model: it has no graph nodes or no opset import")
    external = _external_data_files(model, path.parent)
    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:
        raise ModelError(f"{path} is not a valid ONNX model: {first_line(exc, 300)}") from exc
    initializer_names = {tensor.name for tensor in model.graph.initializer}
    inputs = tuple(_tensor_info(value) for value in model.graph.input if value.name not in initializer_names)
    if not inputs:
        raise ModelError(f"{path} has no graph inputs to feed")
    opset = next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), 0)
    return ModelInfo(
        path=path,
        opset=int(opset),
        ir_version=int(model.ir_version),
        producer=f"{model.producer_name} {model.producer_version}".strip(),
        inputs=inputs,
        outputs=tuple(_tensor_info(value) for value in model.graph.output),
        external_data=external,
        quantized_ops=quantized_op_counts(model),
    )


_SHAPE_ARG = re.compile(r"^(?P<name>.+):(?P<dims>\d+(?:[x,]\d+)*)$")


def parse_input_shape(text: str) -> tuple[str, list[int]]:
    """Parse the trtexec ``--shapes`` convention: ``NAME:1x3x224x224``."""
    match = _SHAPE_ARG.match(text.strip())
    if not match:
        raise ModelError(f"--input-shape '{text}' must look like NAME:1x3x224x224")
    dims = [int(part) for part in re.split(r"[x,]", match["dims"])]
    if any(dim <= 0 for dim in dims):
        raise ModelError(f"--input-shape '{text}' has a dimension that is not positive")
    return match["name"], dims


def resolve_input_shapes(info: ModelInfo, requested: dict[str, list[int]] | None) -> dict[str, list[int]]:
    """The concrete shape of every input: requested where given, else the model's static shape.

    A requested shape must have the model's rank and agree with its fixed dims;
    a dynamic dim that nobody fixed is an error naming the input and its dims.
    """
    requested = dict(requested or {})
    known = {tensor.name for tensor in info.inputs}
    unknown = sorted(set(requested) - known)
    if unknown:
        raise ModelError(
            f"input shape given for unknown input(s) {', '.join(unknown)}; the model's inputs are {', '.join(sorted(known))}"
        )
    shapes: dict[str, list[int]] = {}
    for tensor in info.inputs:
        if tensor.name in requested:
            dims = requested[tensor.name]
            if len(dims) != len(tensor.dims):
                raise ModelError(
                    f"input '{tensor.name}' has rank {len(tensor.dims)} {tensor.describe_dims()}, "
                    f"but the shape given has rank {len(dims)} {dims}"
                )
            for axis, (model_dim, given) in enumerate(zip(tensor.dims, dims, strict=True)):
                if isinstance(model_dim, int) and model_dim != given:
                    raise ModelError(
                        f"input '{tensor.name}' dim {axis} is fixed to {model_dim} by the model, but {given} was given"
                    )
            shapes[tensor.name] = list(dims)
        elif tensor.is_static:
            shapes[tensor.name] = [int(dim) for dim in tensor.dims]  # type: ignore[arg-type]
        else:
            example = [dim if isinstance(dim, int) else 1 for dim in tensor.dims]
            raise ModelError(
                f"input '{tensor.name}' has dynamic dims {tensor.describe_dims()}; "
                f"give a shape with --input-shape {tensor.name}:"
                + "x".join(str(dim) if isinstance(dim, int) else "N" for dim in tensor.dims)
                + f" (in an experiment spec: inputs: {{shapes: {{{tensor.name}: {example}}}}}, with the real sizes)"
            )
    return shapes


def primary_shape_context(shapes: dict[str, list[int]]) -> tuple[int, int, int]:
    """(batch, height, width) of the first input, the keys Lab and Runtime compare on.

    For NCHW images this is N, H, W. Lower-rank inputs map their trailing dims
    and fill the rest with 1, so the context is always complete.
    """
    dims = next(iter(shapes.values()))
    batch = dims[0] if dims else 1
    height = dims[-2] if len(dims) >= 3 else 1
    width = dims[-1] if len(dims) >= 2 else 1
    return batch, height, width


def numpy_dtype(tensor: TensorInfo | InputRecordLike) -> np.dtype:
    """The NumPy dtype of a model input (float32 when the model does not say)."""
    if tensor.dtype == "unknown":
        return np.dtype(np.float32)
    return np.dtype(tensor.dtype)


def model_info_to_json(info: ModelInfo) -> dict[str, Any]:
    """A ModelInfo as JSON (external data relative to the model's directory), for the inspection cache."""
    def tensors(values: tuple[TensorInfo, ...]) -> list[dict[str, Any]]:
        return [{"name": value.name, "dtype": value.dtype, "dims": list(value.dims)} for value in values]
    return {"opset": info.opset, "ir_version": info.ir_version, "producer": info.producer,
            "inputs": tensors(info.inputs), "outputs": tensors(info.outputs),
            "external_data": [str(path.relative_to(info.path.parent.resolve())) for path in info.external_data],
            "quantized_ops": info.quantized_ops}


def model_info_from_json(path: Path, data: dict[str, Any]) -> ModelInfo:
    """The inverse of :func:`model_info_to_json` for the model at ``path``; :class:`ModelError` when malformed or when
    an external-data file is gone."""
    try:
        def tensors(values: list[dict[str, Any]]) -> tuple[TensorInfo, ...]:
            return tuple(TensorInfo(str(v["name"]), str(v["dtype"]), tuple(v["dims"])) for v in values)
        root = path.parent.resolve()
        external = tuple((root / str(name)).resolve() for name in data["external_data"])
        info = ModelInfo(path=path, opset=int(data["opset"]), ir_version=int(data["ir_version"]),
                         producer=str(data["producer"]), inputs=tensors(data["inputs"]),
                         outputs=tensors(data["outputs"]), external_data=external,
                         quantized_ops={str(op): int(count) for op, count in dict(data["quantized_ops"]).items()})
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"malformed inspection record: {exc}") from exc
    if not info.inputs or any(not file.is_relative_to(root) or not file.is_file() for file in external):
        raise ModelError("inspection record does not match the files beside the model")
    return info
