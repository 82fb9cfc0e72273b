from pathlib import Path

import onnx
import pytest

from pytest_inferedgeforge.model.errors import ForgeError, ModelError
from pytest_inferedgeforge.model.onnx_model import (
    inspect_model,
    parse_input_shape,
    primary_shape_context,
    resolve_input_shapes,
)

MODELS = Path(__file__).resolve().parent.parent / "models"


def test_reads_inputs_opset_and_shapes_of_the_shipped_model() -> None:
    info = inspect_model(MODELS / "tiny_cnn.onnx")
    assert info.opset == 17
    assert [(t.name, t.dims) for t in info.inputs] == [("input", (1, 3, 224, 224))]
    assert [t.name for t in info.outputs] == ["logits"]
    assert resolve_input_shapes(info, None) == {"input": [1, 3, 224, 224]}


def test_external_data_files_are_found() -> None:
    info = inspect_model(MODELS / "tiny_cnn_external.onnx")
    assert [p.name for p in info.external_data] == ["tiny_cnn_external.onnx.data"]


@pytest.mark.parametrize("content", [b"dummy onnx content\n", b"", b"\x08\x07\x12\x00garbage" * 50])
def test_a_file_that_is_not_onnx_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "fake.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError, match="is not a valid ONNX model"):
        inspect_model(path)


def test_external_data_escaping_the_model_directory_is_refused(tmp_path: Path) -> None:
    model = onnx.load(str(MODELS / "tiny_cnn_external.onnx"), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../../etc/passwd"
    onnx.save(model, tmp_path / "evil.onnx")
    with pytest.raises(ModelError, match="escapes"):
        inspect_model(tmp_path / "evil.onnx")


def test_dynamic_dims_need_a_shape_and_the_error_names_the_input(dynamic_model: Path) -> None:
    info = inspect_model(dynamic_model)
    with pytest.raises(ModelError) as excinfo:
        resolve_input_shapes(info, None)
    assert "pixel_values" in str(excinfo.value)
    assert "[batch, 3, height, width]" in str(excinfo.value)
    assert resolve_input_shapes(info, {"pixel_values": [2, 3, 96, 128]}) == {"pixel_values": [2, 3, 96, 128]}
    assert primary_shape_context({"pixel_values": [2, 3, 96, 128]}) == (2, 96, 128)


@pytest.mark.parametrize(("shape", "message"), [
    ({"pixel_values": [1, 3, 224]}, "rank 4"),
    ({"pixel_values": [1, 4, 224, 224]}, "dim 1 is fixed to 3"),
    ({"other": [1, 3, 224, 224]}, "unknown input"),
])
def test_given_shapes_must_fit_the_model(dynamic_model: Path, shape: dict, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        resolve_input_shapes(inspect_model(dynamic_model), shape)


def test_input_shape_argument_uses_the_trtexec_convention() -> None:
    assert parse_input_shape("input:1x3x224x224") == ("input", [1, 3, 224, 224])
    assert parse_input_shape("x:y:2x3") == ("x:y", [2, 3])
    for bad in ("input", "input:1x0x2", "input:axb"):
        with pytest.raises(ModelError):
            parse_input_shape(bad)


def test_image_dataset_is_decoded_resized_scaled_and_batched(tmp_path: Path, dynamic_model: Path) -> None:
    import numpy as np
    from PIL import Image

    from pytest_inferedgeforge.model.inputs import load_dataset

    for index in range(5):
        Image.new("RGB", (50, 40), color=(255, 0, 51 * index)).save(tmp_path / f"img_{index}.png")
    info = inspect_model(dynamic_model)
    samples = load_dataset(tmp_path, info, {"pixel_values": [2, 3, 32, 48]}, limit=None)
    assert len(samples) == 2  # 5 images fill two batches of 2
    batch = samples[0]["pixel_values"]
    assert batch.shape == (2, 3, 32, 48) and batch.dtype == np.float32
    assert np.allclose(batch[:, 0], 1.0) and np.allclose(batch[:, 1], 0.0)
    assert np.allclose(batch[1, 2], 51 / 255)
    (tmp_path / "img_9.png").write_bytes(b"not a png")
    with pytest.raises(ForgeError, match="cannot decode image"):
        load_dataset(tmp_path, info, {"pixel_values": [1, 3, 32, 48]}, limit=None)
