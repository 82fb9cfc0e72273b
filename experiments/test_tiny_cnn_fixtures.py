"""A Python experiment: the same model through the fixtures, with checks a YAML spec cannot express."""

import numpy as np
import pytest

from pytest_inferedgeforge.engine.record import BuildRecord


@pytest.mark.forge(model="../models/tiny_cnn.onnx", presets=["onnxruntime/cpu_fp32", "onnxruntime/cpu_int8"])
def test_artifact_is_smaller_or_equal_and_runs(forge_record: BuildRecord, forge_runner, forge_preset) -> None:
    source_size = forge_record.manifest.source_model.size_bytes
    artifact_size = forge_record.manifest.artifact.size_bytes
    assert artifact_size is not None and source_size is not None
    if forge_preset.precision == "int8":
        assert artifact_size < source_size / 2, "int8 weights should take well under half the fp32 bytes"
    batch = np.random.default_rng(7).random((1, 3, 224, 224), dtype=np.float32)
    (logits,) = forge_runner.run({"input": batch})
    assert logits.shape == (1, 1000)
    assert np.isfinite(logits).all()
