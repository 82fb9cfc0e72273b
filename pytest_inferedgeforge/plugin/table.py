"""Cells and lines of the terminal summary table, so that it reads at any width down to 80 columns.

A figure wider than its column gives up decimals first, then is written in thousands (``12k``), the same way in
every column, so a 4-digit CV or a slow model's median never pushes the row out of line. A note longer than the
table is wrapped onto indented lines, never cut: the end of a note is often the part that says what to do.

Only the standard library is imported here (the plugin's reporter loads it in every session with Forge items).
"""

from __future__ import annotations

import textwrap
from typing import Any

NOTE_INDENT = "    "


def figure(value: Any, digits: int, width: int, unit: str = "") -> str:
    """``value`` with up to ``digits`` decimals and ``unit``, in at most ``width`` characters; ``-`` for no number."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    for decimals in range(digits, -1, -1):
        text = f"{value:.{decimals}f}{unit}"
        if len(text) <= width:
            return text
    for scale, prefix in ((1e3, "k"), (1e6, "M"), (1e9, "G")):
        text = f"{value / scale:.0f}{prefix}{unit}"
        if len(text) <= width:
            return text
    return "#" * width


def size(value: Any, width: int) -> str:
    """An artifact size in kB (below 100 kB), MB or GB, as wide as ``width`` allows."""
    if not isinstance(value, int):
        return "-"
    if value < 1e5:
        return figure(value / 1e3, 1, width, " kB")
    return figure(value / 1e6, 2, width, " MB") if value < 1e9 else figure(value / 1e9, 2, width, " GB")


def wrapped(text: str, width: int, indent: str = NOTE_INDENT) -> list[str]:
    """``text`` on lines of at most ``width`` characters: the first indented by ``indent``, the rest a little more;
    a word longer than a line (a path) is broken, not cut."""
    return textwrap.wrap(text, width=max(width, 20), initial_indent=indent,
                         subsequent_indent=indent + "  " if indent else "",
                         break_on_hyphens=False) or [indent.rstrip()]
