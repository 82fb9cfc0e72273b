"""Argument types shared by the CLI and the plugin's command-line options."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def count_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type for an integer of at least ``minimum``, so a bad count is a usage error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def positive_float(text: str) -> float:
    """An argparse type for a number above zero (seconds, thresholds)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value
