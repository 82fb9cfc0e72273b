"""InferEdgeForge: build provenance for edge AI artifacts, as a pytest plugin and a CLI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pytest-inferedgeforge")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
