"""Forge's own version, from the installed distribution's metadata."""

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "pytest-inferedgeforge"

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
