"""A live phase line for a Forge item: what a long item is doing now (building, calibrating, a search trial, the
benchmark), written after pytest's own progress on the current terminal line and erased again.

The text goes to the terminal reporter's stream, after whatever the line already holds, and is taken back with
backspaces, so pytest's own output (the file name and its dots, or ``-v``'s node id) is never overwritten; it is
written past pytest's TerminalWriter, whose count of the current line's width (it places ``[ 40%]``) must not
see a transient text. It is
silent where a live line would be noise or garbage: under ``-q``, when the terminal is not a TTY (CI logs, files),
and on pytest-xdist workers, which have no terminal (``-n`` never sees it).
"""

from __future__ import annotations

from typing import Any

import pytest

MIN_ROOM = 12
"""Fewer free columns than this on the current line and no phase is shown (it would wrap)."""


class PhaseLine:
    """``phase(message)`` shows ``[message]`` on the item's line until the next phase or :meth:`clear`."""

    def __init__(self, writer: Any, capture: Any = None) -> None:
        """``writer``: pytest's TerminalWriter, or None for a silent line; ``capture``: its capture manager."""
        self._writer = writer
        self._capture = capture
        self._shown = 0

    @classmethod
    def for_item(cls, config: pytest.Config) -> PhaseLine:
        reporter: Any = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or not reporter.isatty or config.get_verbosity() < 0 or hasattr(config, "workerinput"):
            return cls(None)
        return cls(reporter._tw, config.pluginmanager.get_plugin("capturemanager"))

    def __call__(self, message: str) -> None:
        if self._writer is None:
            return
        self.clear()
        room = self._writer.fullwidth - self._writer.width_of_current_line - 1
        if room < MIN_ROOM:
            return
        text = f" [{' '.join(message.split())}]"
        if len(text) > room:
            text = text[: room - 4] + "...]"
        self._emit(text)
        self._shown = len(text)

    def clear(self) -> None:
        if self._writer is None or not self._shown:
            return
        back = "\b" * self._shown
        self._emit(back + " " * self._shown + back)
        self._shown = 0

    def _emit(self, text: str) -> None:
        """Write past the item's output capture, as pytest's live logging does."""
        stream = self._writer._file
        if self._capture is None:
            stream.write(text)
            stream.flush()
            return
        with self._capture.global_and_fixture_disabled():
            stream.write(text)
            stream.flush()
