"""rknn-toolkit2 worker. Runs inside the isolated rknn venv, so it imports nothing from Forge.

Protocol: one JSON request per stdin line, one JSON reply per line on the
original stdout. The toolkit's own chatter is moved to stderr first, so the
protocol channel stays clean.

Requests:
  {"op": "version"}
  {"op": "build", "model", "output", "config", "do_quantization", "dataset", "inputs", "input_size_list",
   "verbose_file"}; every op that converts takes "float_layers" too: int8 with those toolkit layers in float16
   through hybrid_quantization_step1/2 (see hybrid)
  {"op": "serve", "model", "config", "do_quantization", "dataset", "inputs", "input_size_list", "artifact", "target"}
  {"op": "analyse", "model", "config", "do_quantization", "dataset", "inputs", "input_size_list", "samples",
   "scratch"}: the toolkit's accuracy_analysis on the simulator, once per sample (a list of .npy paths, one per
   input); replies with each sample's error_analysis.txt and, per layer, the ratio of its widest to its narrowest
   channel range (axis 1) in the float ("golden") dump

The caller runs the worker in a scratch directory: the toolkit writes debug dumps
(``check*.onnx``) into the current directory.
      then any number of {"op": "infer", "inputs": [npy paths], "out_dir"} and finally {"op": "stop"}
"""

import hashlib
import json
import os
import re
import sys
import tempfile
import traceback

# Run with -P; also drop this file's directory, whose onnxruntime.py would shadow the real package.
sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != os.path.dirname(os.path.abspath(__file__))]
PROTOCOL = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)


def reply(payload):
    PROTOCOL.write(json.dumps(payload) + "\n")
    PROTOCOL.flush()


def versions():
    from importlib.metadata import version

    return {name: version(name) for name in ("rknn-toolkit2", "numpy", "onnx", "protobuf")}


def check(stage, code):
    if code not in (None, 0):
        raise RuntimeError(f"rknn.{stage} returned {code}")


def convert(rknn, request, calls):
    """Config, load and build (or hybrid quantization); returns the RKNN object that holds the built model."""
    config = request["config"]
    check("config", rknn.config(**config))
    calls.append({"api": "rknn.config", "args": config})
    load_args = {"model": request["model"]}
    if request.get("inputs"):
        # The resolved shapes: without them every model with a dynamic dim fails to convert.
        load_args.update(inputs=request["inputs"], input_size_list=request["input_size_list"])
    check("load_onnx", rknn.load_onnx(**load_args))
    calls.append({"api": "rknn.load_onnx", "args": load_args})
    if request.get("float_layers"):
        return hybrid(rknn, request, calls)
    build_args = {"do_quantization": bool(request["do_quantization"])}
    if request.get("dataset"):
        build_args["dataset"] = request["dataset"]
    check("build", rknn.build(**build_args))
    calls.append({"api": "rknn.build", "args": build_args})
    return rknn


def hybrid(rknn, request, calls):
    """int8 with ``float_layers`` kept in float16: hybrid_quantization_step1 writes <model>.model, .data and
    .quantization.cfg into the current (scratch) directory, the cfg's custom_quantize_layers gets the layers, and
    step2 builds from the three in a fresh RKNN object (the toolkit refuses step2 on an object that loaded a model).
    Returns the object that holds the built model."""
    from rknn.api import RKNN
    from ruamel.yaml import YAML

    step1_args = {"dataset": request["dataset"]}
    check("hybrid_quantization_step1", rknn.hybrid_quantization_step1(**step1_args))
    calls.append({"api": "rknn.hybrid_quantization_step1", "args": step1_args})
    rknn.release()
    stem = os.path.join(os.getcwd(), os.path.splitext(os.path.basename(request["model"]))[0])
    with open(stem + ".quantization.cfg", encoding="utf-8") as handle:
        text = handle.read()
    known = set(YAML(typ="safe").load(text).get("quantize_parameters") or {})
    unknown = [layer for layer in request["float_layers"] if layer not in known]
    if unknown:
        raise RuntimeError(f"float_layers {unknown} are not layers of the toolkit's quantization config "
                           f"({len(known)} layers, e.g. {sorted(known)[:3]}): name layers as diagnose reports them")
    # A textual edit: step2 refuses a cfg whose scales changed, and a YAML round trip rewrites their digits.
    layers = {layer: "float16" for layer in request["float_layers"]}
    block = "custom_quantize_layers:\n" + "".join(f"    {json.dumps(layer)}: float16\n" for layer in layers)
    text, count = re.subn(r"^custom_quantize_layers:.*\n", lambda _: block, text, count=1, flags=re.MULTILINE)
    if count != 1:
        raise RuntimeError("the toolkit's quantization config has no custom_quantize_layers line")
    edited = stem + ".forge.quantization.cfg"
    with open(edited, "w", encoding="utf-8") as handle:
        handle.write(text)
    rknn = RKNN(verbose=bool(request.get("verbose_file")))
    check("config", rknn.config(**request["config"]))
    step2_args = {"model_input": stem + ".model", "data_input": stem + ".data", "model_quantization_cfg": edited}
    check("hybrid_quantization_step2", rknn.hybrid_quantization_step2(**step2_args))
    calls.append({"api": "rknn.hybrid_quantization_step2", "args": {
        **{key: os.path.basename(value) for key, value in step2_args.items()},
        "custom_quantize_layers": layers}})
    return rknn


def sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def build(request):
    from rknn.api import RKNN

    rknn = RKNN(verbose=True, verbose_file=request.get("verbose_file"))
    calls = []
    try:
        rknn = convert(rknn, request, calls)
        check("export_rknn", rknn.export_rknn(request["output"]))
        calls.append({"api": "rknn.export_rknn", "args": {"export_path": os.path.basename(request["output"])}})
    finally:
        rknn.release()
    if not os.path.isfile(request["output"]):
        raise RuntimeError("rknn.export_rknn returned success but wrote no file")
    reply({"ok": True, "calls": calls, "versions": versions()})


def serve(request):
    import numpy as np
    from rknn.api import RKNN

    rknn = RKNN(verbose=False)
    target = request.get("target")
    exported = None
    if target:
        check("load_rknn", rknn.load_rknn(request["artifact"]))
        check("init_runtime", rknn.init_runtime(target=target))
    else:
        rknn = convert(rknn, request, [])
        with tempfile.TemporaryDirectory() as scratch:
            path = os.path.join(scratch, "model.rknn")
            check("export_rknn", rknn.export_rknn(path))
            exported = sha256(path)
        check("init_runtime", rknn.init_runtime())
    reply({"ok": True, "target": target or "simulator", "export_sha256": exported})
    for line in sys.stdin:
        message = json.loads(line)
        if message.get("op") == "stop":
            break
        try:
            arrays = [np.load(path) for path in message["inputs"]]
            outputs = rknn.inference(inputs=arrays, data_format="nchw")
            paths = []
            for index, output in enumerate(outputs):
                path = os.path.join(message["out_dir"], f"output_{index}.npy")
                np.save(path, np.asarray(output))
                paths.append(path)
            reply({"ok": True, "outputs": paths})
        except Exception as exc:
            reply({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
    rknn.release()


def channel_ratios(output_dir):
    """Per layer: widest over narrowest channel range (axis 1, rank >= 3, channels that vary) of its float dump."""
    import numpy as np

    ratios = {}
    with open(os.path.join(output_dir, "map_name_to_file.txt"), encoding="utf-8") as handle:
        rows = [line.split() for line in handle if line.strip() and not line.startswith(("layer_name", "-"))]
    for layer, file_name in (row for row in rows if len(row) == 2):
        path = os.path.join(output_dir, "golden", "npy", os.path.splitext(file_name)[0] + ".npy")
        if not os.path.isfile(path):
            continue
        values = np.load(path)
        if values.ndim < 3 or values.shape[1] < 2:
            continue
        axes = tuple(axis for axis in range(values.ndim) if axis != 1)
        ranges = values.max(axis=axes).astype(np.float64) - values.min(axis=axes)
        ranges = ranges[ranges > 0]
        if ranges.size > 1:
            ratios[layer] = float(ranges.max() / ranges.min())
    return ratios


def analyse(request):
    import shutil

    from rknn.api import RKNN

    rknn = RKNN(verbose=False)
    reports, ratios = [], {}
    try:
        rknn = convert(rknn, request, [])
        exported = os.path.join(request["scratch"], "model.rknn")
        check("export_rknn", rknn.export_rknn(exported))
        for index, inputs in enumerate(request["samples"]):
            output_dir = os.path.join(request["scratch"], f"analysis_{index}")
            check("accuracy_analysis", rknn.accuracy_analysis(inputs=inputs, output_dir=output_dir, target=None))
            with open(os.path.join(output_dir, "error_analysis.txt"), encoding="utf-8") as handle:
                reports.append(handle.read())
            for layer, ratio in channel_ratios(output_dir).items():
                ratios[layer] = max(ratio, ratios.get(layer, 0.0))
            shutil.rmtree(output_dir)  # every layer's dumps: hundreds of MB per sample for a detector
    finally:
        rknn.release()
    reply({"ok": True, "export_sha256": sha256(exported), "reports": reports, "channel_ratios": ratios,
           "versions": versions()})


def main():
    request = json.loads(sys.stdin.readline())
    try:
        if request["op"] == "version":
            import rknn.api  # noqa: F401  - proves the toolkit imports

            reply({"ok": True, "versions": versions()})
        elif request["op"] == "build":
            build(request)
        elif request["op"] == "serve":
            serve(request)
        elif request["op"] == "analyse":
            analyse(request)
        else:
            reply({"ok": False, "error": f"unknown op {request['op']}"})
    except Exception as exc:
        traceback.print_exc()
        reply({"ok": False, "error": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    main()
