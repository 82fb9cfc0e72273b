"""L0: data and formats. Records, presets, specs, inputs, hashing and ONNX inspection; imports nothing above it."""
