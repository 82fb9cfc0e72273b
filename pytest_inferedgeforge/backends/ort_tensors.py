"""Every intermediate tensor of an ONNX model, run by ONNX Runtime: the capability diagnoses stand on.

The named tensors are added as graph outputs (as onnxruntime's ``qdq_loss_debug`` does, but keeping their shapes)
and the model is run one sample at a time, so only one sample's tensors are held at once. Exposing a tensor keeps
ONNX Runtime from fusing across it: an exposed QDQ graph runs op by op, in float between its quantizers.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pytest_inferedgeforge.backends.api import RunnerError, Sample, first_line

PROTOBUF_LIMIT = 2_000_000_000
"""Above this a model cannot be handed to ONNX Runtime as one serialized protobuf; it goes through a file."""


def _session(model: Any, scratch: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4
    # between runs the caller computes figures on this thread: pool threads spinning for work that is not coming
    # would take the cores it needs (about 1.8x slower on a busy 2-core host); results do not depend on it
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if model.ByteSize() < PROTOBUF_LIMIT:
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    import onnx

    path = scratch / "exposed.onnx"
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="exposed.onnx.data")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def intermediate_tensors(model_path: Path, names: Sequence[str], samples: Sequence[Sample],
                         errors: tuple[type[Exception], ...]) -> Iterator[dict[str, np.ndarray]]:
    """Per sample, the named tensors of the model at ``model_path`` (external data read from beside it); names that
    are not node outputs of its main graph are left out. A model that does not load or run (``errors``: the
    exceptions onnxruntime documents for that) is a ``RunnerError``."""
    import onnx

    try:
        model = onnx.load(str(model_path))
    except (OSError, ValueError, onnx.onnx_cpp2py_export.checker.ValidationError) as exc:  # type: ignore[attr-defined]
        raise RunnerError(f"{model_path.name} does not load as ONNX: {first_line(exc)}") from exc
    produced = {output for node in model.graph.node for output in node.output if output}
    present = {output.name for output in model.graph.output}
    for name in names:
        if name in produced and name not in present:
            model.graph.output.append(onnx.ValueInfoProto(name=name))
            present.add(name)
    wanted = set(names)
    with tempfile.TemporaryDirectory(prefix="forge-tensors-") as scratch:
        try:
            session = _session(model, Path(scratch))
        except errors as exc:
            raise RunnerError(f"onnxruntime cannot load {model_path.name} with its tensors exposed: "
                              f"{type(exc).__name__}: {first_line(exc)}") from exc
        outputs = [output.name for output in session.get_outputs()]
        inputs = {node.name for node in session.get_inputs()}
        for sample in samples:
            feeds = {name: value for name, value in sample.items() if name in inputs}
            try:
                values = session.run(outputs, feeds)
            except errors as exc:
                raise RunnerError(f"onnxruntime run of {model_path.name} failed: {type(exc).__name__}: "
                                  f"{first_line(exc)}") from exc
            found = {name: value for name, value in zip(outputs, values, strict=True) if name in wanted}
            found.update({name: value for name, value in feeds.items() if name in wanted})
            yield found
