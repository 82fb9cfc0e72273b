"""Real data in: image preprocessing, .wav datasets, and where int8 calibration data came from."""

import json
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pytest_inferedgeforge.engine.build import build
from pytest_inferedgeforge.engine.build_key import describe_change, fingerprint
from pytest_inferedgeforge.engine.plan import plan_build
from pytest_inferedgeforge.engine.presets import load_experiment, load_preset
from pytest_inferedgeforge.engine.reproduce import rebuild_from_manifest
from pytest_inferedgeforge.engine.runs import RunSettings, run_samples
from pytest_inferedgeforge.model.calibration import SYNTHETIC_WARNING
from pytest_inferedgeforge.model.errors import ForgeError, SpecError
from pytest_inferedgeforge.model.inputs import load_dataset, samples_sha256
from pytest_inferedgeforge.model.onnx_model import TensorInfo
from pytest_inferedgeforge.model.preprocess import Preprocess

IMAGE = [TensorInfo("image", "float32", (1, 3, 32, 32))]
SHAPE = {"image": [1, 3, 32, 32]}


def _photo(path: Path, width: int = 64, height: int = 32) -> Path:
    """A PNG whose left quarter is red, right quarter blue, middle a green gradient: crops and pads show."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, : width // 4, 0] = 255
    pixels[:, 3 * width // 4:, 2] = 255
    pixels[:, width // 4: 3 * width // 4, 1] = np.linspace(0, 255, width // 2, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _load(directory: Path, pipeline: Preprocess | None, inputs: list[TensorInfo] = IMAGE,
          shapes: dict[str, list[int]] = SHAPE) -> np.ndarray:
    return load_dataset(directory, inputs, shapes, limit=None,
                        preprocess={inputs[0].name: pipeline} if pipeline else None)[0][inputs[0].name][0]


def test_letterbox_keeps_the_aspect_ratio_and_pads_top_and_bottom(tmp_path: Path) -> None:
    _photo(tmp_path / "photo.png")
    image = _load(tmp_path, Preprocess(resize="letterbox", pad_value=0))
    assert image.shape == (3, 32, 32)
    assert np.all(image[:, :8] == 0) and np.all(image[:, 24:] == 0)  # a 2:1 photo fills rows 8-23 only
    assert image[0, 16, 2] == pytest.approx(1.0) and image[2, 16, 29] == pytest.approx(1.0)  # red left, blue right


def test_letterbox_pads_with_114_grey_by_default_and_records_it(tmp_path: Path) -> None:
    _photo(tmp_path / "photo.png")
    pipeline = Preprocess(resize="letterbox")
    assert pipeline.pad_value == 114
    assert _load(tmp_path, pipeline)[1, 0, 0] == pytest.approx(114 / 255)


def test_stretch_is_the_default_and_fills_every_row(tmp_path: Path) -> None:
    _photo(tmp_path / "photo.png")
    default, stretched = _load(tmp_path, None), _load(tmp_path, Preprocess(resize="stretch"))
    assert np.array_equal(default, stretched) and default.shape == (3, 32, 32)
    assert default[0, 0, 0] == pytest.approx(1.0) and default[0, 31, 0] == pytest.approx(1.0)  # red down the edge
    assert float(default.max()) <= 1.0 and float(default.min()) >= 0.0


def test_center_crop_cuts_the_sides_off(tmp_path: Path) -> None:
    _photo(tmp_path / "photo.png")
    image = _load(tmp_path, Preprocess(resize="center_crop"))
    assert image.shape == (3, 32, 32)
    assert float(image[0].max()) == 0.0 and float(image[2].max()) == 0.0  # red and blue quarters cropped away
    assert image[1, 10, 0] < image[1, 10, 31]  # the green gradient remains, left to right


def test_mean_std_and_bgr_are_applied_after_scaling(tmp_path: Path) -> None:
    _photo(tmp_path / "photo.png")
    plain = _load(tmp_path, None)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    image = _load(tmp_path, Preprocess(channel_order="bgr", mean=mean, std=std))
    expected = (plain[::-1] - np.array(mean).reshape(3, 1, 1)) / np.array(std).reshape(3, 1, 1)
    assert np.allclose(image, expected, atol=1e-6)
    assert image[2, 5, 0] == pytest.approx((1.0 - 0.406) / 0.225, rel=1e-6)  # red is the last channel in BGR


def test_nhwc_layout_comes_from_the_input_shape(tmp_path: Path) -> None:
    _photo(tmp_path / "photo.png")
    nhwc = _load(tmp_path, Preprocess(scale=1.0), [TensorInfo("image", "float32", (1, 32, 32, 3))],
                 {"image": [1, 32, 32, 3]})
    assert nhwc.shape == (32, 32, 3) and nhwc[0, 0, 0] == pytest.approx(255.0)


def test_preprocess_for_an_array_dataset_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 32, 32), dtype=np.float32))
    with pytest.raises(ForgeError, match="inputs.preprocess prepares images"):
        _load(tmp_path, Preprocess())


def _wav(path: Path, samples: np.ndarray, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    return path


def test_wav_files_are_scaled_and_cut_or_zero_padded(tmp_path: Path) -> None:
    tone = (np.sin(np.linspace(0, 200, 1500)) * 16384).astype(np.int16)
    _wav(tmp_path / "a_long.wav", tone)
    _wav(tmp_path / "b_short.wav", tone[:600])
    samples = load_dataset(tmp_path, [TensorInfo("audio", "float32", (1, 1000))], {"audio": [1, 1000]}, limit=None)
    long, short = samples[0]["audio"][0], samples[1]["audio"][0]
    assert long.shape == short.shape == (1000,) and long.dtype == np.float32
    assert np.allclose(long, tone[:1000] / 32768)
    assert np.allclose(short[:600], tone[:600] / 32768) and not short[600:].any()


def test_wav_fills_the_free_input_and_value_rules_fill_the_rest(tmp_path: Path) -> None:
    from pytest_inferedgeforge.model.inputs import ValueRule

    _wav(tmp_path / "a.wav", np.full(512, 8192))
    inputs = [TensorInfo("input", "float32", (1, 512)), TensorInfo("sr", "int64", ())]
    sample = load_dataset(tmp_path, inputs, {"input": [1, 512], "sr": []}, limit=None,
                          values={"sr": ValueRule(value=16000)})[0]
    assert np.allclose(sample["input"], 0.25) and int(sample["sr"]) == 16000
    with pytest.raises(ForgeError, match="give value rules"):
        load_dataset(tmp_path, [*inputs, TensorInfo("state", "float32", (2,))], {"input": [1, 512], "sr": [], "state": [2]},
                     limit=None, values={"sr": ValueRule(value=16000)})


def test_wav_samples_keep_the_models_input_order(tmp_path: Path) -> None:
    """RKNN feeds inputs by position: a waveform put after the state inputs broke its smoke run (silero-vad LSTM)."""
    from pytest_inferedgeforge.model.inputs import ValueRule

    _wav(tmp_path / "a.wav", np.full(576, 100))
    inputs = [TensorInfo("input", "float32", (1, 576)), TensorInfo("h", "float32", (1, 1, 128)),
              TensorInfo("c", "float32", (1, 1, 128))]
    sample = load_dataset(tmp_path, inputs, {"input": [1, 576], "h": [1, 1, 128], "c": [1, 1, 128]}, limit=None,
                          values={"h": ValueRule(value=0), "c": ValueRule(value=0)})[0]
    assert list(sample) == ["input", "h", "c"]


def test_stereo_wav_is_refused_with_the_conversion(tmp_path: Path) -> None:
    _wav(tmp_path / "a.wav", np.zeros(200), channels=2)
    with pytest.raises(ForgeError, match="mono 16-bit PCM"):
        load_dataset(tmp_path, [TensorInfo("audio", "float32", (1, 100))], {"audio": [1, 100]}, limit=None)


def test_speech_synthesized_by_espeak_ng_is_read(tmp_path: Path) -> None:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng is not installed: no synthesized speech to read")
    path = tmp_path / "speech.wav"
    subprocess.run([espeak, "-w", str(path), "edge inference"], check=True, capture_output=True)
    audio = load_dataset(tmp_path, [TensorInfo("audio", "float32", (1, 16000))], {"audio": [1, 16000]}, limit=None)
    assert float(np.abs(audio[0]["audio"]).max()) > 0.05


MODEL = Path(__file__).resolve().parent.parent / "pytest_inferedgeforge" / "example" / "tiny_cnn.onnx"
LETTERBOX = {"input": Preprocess(resize="letterbox", mean=[0.5], std=[0.25])}


def _photos(directory: Path, count: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True)
    for index in range(count):
        Image.fromarray(rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)).save(directory / f"{seed}_{index}.png")
    return directory


def test_calibration_and_evaluation_images_are_prepared_the_same_way(workspace: Path) -> None:
    one = _photos(workspace / "calibration", 1, seed=1)
    evaluation = workspace / "evaluation"
    shutil.copytree(one, evaluation)
    preset = load_preset("onnxruntime/cpu_int8", workspace / "presets")
    record = build(plan_build(MODEL, preset, workspace / "builds", input_dataset=evaluation, calibration_dataset=one,
                              preprocess=LETTERBOX)).record
    calibration = record.manifest.calibration
    assert calibration is not None and calibration.source == "dataset" and calibration.samples == 1
    assert record.manifest.smoke is not None and calibration.sha256 == record.manifest.smoke.inputs_sha256
    samples, _ = run_samples(record, RunSettings(dataset=evaluation, samples=1))
    assert samples_sha256(samples) == calibration.sha256  # the run prepares them as the build recorded
    assert record.manifest.preprocess == {"input": LETTERBOX["input"].model_dump(mode="json", exclude_none=True)}


def test_preprocess_is_a_build_key_part_and_absent_leaves_the_key(workspace: Path) -> None:
    preset = load_preset("onnxruntime/cpu_fp32", workspace / "presets")
    plain = fingerprint(plan_build(MODEL, preset, workspace / "builds"), {"onnxruntime": "1"})
    unset = fingerprint(plan_build(MODEL, preset, workspace / "builds", preprocess={}), {"onnxruntime": "1"})
    letterboxed = fingerprint(plan_build(MODEL, preset, workspace / "builds", preprocess=LETTERBOX), {"onnxruntime": "1"})
    assert "preprocess" not in plain.parts and unset.build_key == plain.build_key
    assert letterboxed.build_key != plain.build_key
    assert describe_change(plain.part_digests, letterboxed) == \
        "build inputs changed (input preprocessing changed); rebuilding"


def test_preprocess_for_an_unknown_input_is_refused_at_planning(workspace: Path) -> None:
    preset = load_preset("onnxruntime/cpu_fp32", workspace / "presets")
    with pytest.raises(ForgeError, match="inputs.preprocess names unknown input.*images.*inputs are input"):
        plan_build(MODEL, preset, workspace / "builds", preprocess={"images": Preprocess()})


def test_calibration_source_is_recorded_dataset_or_synthetic(workspace: Path) -> None:
    preset = load_preset("onnxruntime/cpu_int8", workspace / "presets")
    synthetic = build(plan_build(MODEL, preset, workspace / "builds")).record.manifest.calibration
    assert synthetic is not None and synthetic.source == "synthetic" and synthetic.warnings == [SYNTHETIC_WARNING]
    assert synthetic.dataset_sha256 is None and synthetic.seed == 0
    photos = _photos(workspace / "photos", 3, seed=2)
    real = build(plan_build(MODEL, preset, workspace / "other", calibration_dataset=photos)).record
    calibration = real.manifest.calibration
    assert calibration is not None and calibration.source == "dataset" and calibration.samples == 3
    assert calibration.warnings is None and calibration.named_by == "inputs" and calibration.dataset == "photos"
    assert calibration.dataset_sha256 == real.manifest.build.calibration_dataset_sha256 is not None


def test_calibrating_on_the_evaluation_files_is_a_warning(workspace: Path) -> None:
    photos = _photos(workspace / "calibration", 2, seed=3)
    evaluation = _photos(workspace / "evaluation", 2, seed=4)
    shutil.copy(photos / "3_1.png", evaluation / "copy.png")
    preset = load_preset("onnxruntime/cpu_int8", workspace / "presets")
    calibration = build(plan_build(MODEL, preset, workspace / "builds", input_dataset=evaluation,
                                   calibration_dataset=photos)).record.manifest.calibration
    assert calibration is not None and calibration.warnings is not None
    assert calibration.warnings[0].startswith("calibrated on 1 of the 3 evaluation dataset files (same sha256, "
                                              "e.g. copy.png)")


def test_cli_build_calibrates_on_the_calibration_dataset_and_rebuilds_from_its_manifest(workspace: Path, cli) -> None:
    photos = _photos(workspace / "calibration", 2, seed=5)
    code, out, err = cli("build", "--model", str(MODEL), "--preset", "onnxruntime/cpu_int8", "--output", "builds",
                         "--calibration-dataset", str(photos), "--json")
    assert code == 0, err
    manifest = json.loads(Path(json.loads(out)["manifest_path"]).read_text())
    assert manifest["calibration"]["source"] == "dataset" and manifest["calibration"]["samples"] == 2
    assert manifest["calibration"]["named_by"] == "inputs"
    rebuilt = rebuild_from_manifest(Path(json.loads(out)["manifest_path"]), output=workspace / "rebuilt")
    assert rebuilt.outcome.record.manifest.build.build_key == manifest["build"]["build_key"]


def test_cli_build_with_a_missing_calibration_dataset_is_one_error_line(workspace: Path, cli) -> None:
    code, _, err = cli("build", "--model", str(MODEL), "--preset", "onnxruntime/cpu_int8", "--output", "builds",
                       "--calibration-dataset", "nowhere")
    assert code == 1 and err.count("Error:") == 1 and "calibration dataset directory not found" in err


def test_a_bad_preprocess_key_is_one_spec_error_naming_the_field(workspace: Path) -> None:
    spec = workspace / "cnn.forge.yaml"
    spec.write_text(f"model: {MODEL}\npresets: [onnxruntime/cpu_fp32]\n"
                    "inputs: {preprocess: {input: {resise: letterbox}}}\n")
    with pytest.raises(SpecError) as failure:
        load_experiment(spec, workspace / "presets")
    assert str(failure.value) == f"{spec}: field 'inputs.preprocess.input.resise': unknown key (did you mean 'resize'?)"


def test_spec_calibration_directory_must_exist(workspace: Path) -> None:
    spec = workspace / "cnn.forge.yaml"
    spec.write_text(f"model: {MODEL}\npresets: [onnxruntime/cpu_int8]\ninputs: {{calibration: calib}}\n")
    with pytest.raises(SpecError, match="field 'inputs.calibration': directory not found"):
        load_experiment(spec, workspace / "presets")


def test_a_spec_calibrating_on_its_evaluation_files_says_so_in_the_report(pytester: pytest.Pytester,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGE_TOOLCHAINS_DIR", str(pytester.path / "no-toolchains"))
    shutil.copytree(Path(__file__).resolve().parent.parent / "presets", pytester.path / "presets")
    _photos(pytester.path / "photos", 2, seed=6)
    pytester.makefile(".forge.yaml", cnn=f"model: {MODEL}\npresets: [onnxruntime/cpu_int8]\n"
                      "benchmark: {warmup: 1, runs: 3}\n"
                      "inputs: {dataset: photos, calibration: photos, samples: 2,"
                      " preprocess: {input: {resize: letterbox, mean: [0.5], std: [0.25]}}}\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*calibration: calibrated on 2 of the 2 evaluation dataset files*"])
    manifest = json.loads(next((pytester.path).rglob("manifest.json")).read_text())
    assert manifest["calibration"]["named_by"] == "inputs" and manifest["preprocess"]["input"]["resize"] == "letterbox"
