"""Quantization work over built artifacts: the per-layer diagnosis of an int8 or fp16 artifact against its source
(``diagnose``), and what builds on it (the mixed-precision search). The figures come from backend capabilities
declared in backends/api.py (``Diagnosable``); the pairing, the figures and the records are engine work."""
