"""Errors a user can act on.

Every failure caused by input (a preset, a spec, a model, a record) or by a
missing toolchain is a :class:`ForgeError`. The CLI prints it as one
``Error: <message>`` line and the plugin shows it without a traceback, so the
message must stand on its own: name the file, the field and the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the plugin imports this module at start-up: no pydantic until a record is read
    from pydantic import ValidationError


class ForgeError(Exception):
    """Base class: an error whose message is meant for the user."""


class PresetError(ForgeError):
    """A preset file is missing, malformed or inconsistent."""


class SpecError(ForgeError):
    """An experiment spec is malformed or refers to something that does not exist."""


class ModelError(ForgeError):
    """The source model is missing, not ONNX, or cannot be used as given."""


class ToolchainUnavailable(ForgeError):
    """A backend's toolchain cannot run on this machine; the message says precisely why."""


class RunnerError(ForgeError):
    """The artifact failed to load or to run in its runtime. Backends translate their runtime's own
    exceptions into this, so anything else escaping a run is a bug in Forge and keeps its traceback."""


class BuildFailed(ForgeError):
    """The toolchain ran and failed."""


class RecordError(ForgeError):
    """A build record (metadata, manifest, run summary) is missing or malformed."""


def first_line(error: BaseException | str, limit: int = 400) -> str:
    """The first line of an error (a toolchain's message can be pages long), cut to ``limit`` characters."""
    text = str(error).strip() or (type(error).__name__ if isinstance(error, BaseException) else "")
    return text.splitlines()[0][:limit] if text else ""


def describe_validation_error(error: ValidationError, source: str) -> str:
    """Render a pydantic error as one line: ``<source>: field 'a.b': <reason>``.

    Only the first problem is shown in full; the count of the others follows,
    because one precise line is more useful than a wall of text.
    """
    problems = error.errors()
    first = problems[0]
    location = ".".join(str(part) for part in first["loc"]) or "<root>"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return f"{source}: field '{location}': {message}{more}"
